"""An isolation boundary for sandbox workers that holds even if the static screen is bypassed.

`jail_command(cmd, private_dir=...)` wraps a worker command as

    python -I -S sandbox/jail.py '<json-spec>' -- <cmd...>     (also: python -m sandbox.jail ...)

The bootstrap (this file run as a script; it imports only the standard library) then:

1. unshares user, mount, network, PID, IPC and UTS namespaces and maps inner uid/gid 0 to the
   caller's own uid/gid (setgroups denied), so nothing needs privileges outside;
2. forks: the child is PID 1 of the new PID namespace (the "init"), it builds a new root on a
   tmpfs holding only read-only binds of what Python needs, the read-only project dirs the caller
   names, the writable private dir (at the same absolute path as outside) and extra writable dirs,
   a fresh read-only /proc, a minimal /dev and a private /tmp; pivot_root()s into it and detaches
   the old root; blocks nested user namespaces; drops every capability (bounding, ambient,
   inheritable, permitted, effective; SECBIT_NOROOT so an exec as uid 0 gets none back); sets
   PR_SET_NO_NEW_PRIVS; and dies with its parent (PR_SET_PDEATHSIG).  When the init dies the
   kernel kills everything left in the namespace;
3. the init forks the payload, which adds a Landlock ruleset where the kernel has one and execs
   `<cmd...>`.  The payload is NOT PID 1, because the kernel drops default-action signals such as
   SIGXCPU (the CPU-time limit) sent to a namespace's init;
4. the original process stays outside the PID namespace, watches its own parent through a pidfd
   (the whole process, unlike PR_SET_PDEATHSIG which fires when the forking *thread* exits) and
   exits with the payload's status, dying by the same signal if the payload was killed by one.

stdin, stdout and stderr pass through untouched.  The network namespace has only a loopback
interface that is down, so no connect() reaches anything, including the host's 127.0.0.1.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import re
import select
import signal
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn, Sequence

JAIL_SCRIPT = Path(__file__).resolve()
REPO_ROOT = JAIL_SCRIPT.parent.parent  # the repo in a source checkout; site-packages if installed

# --- clone(2) / unshare(2) flags -------------------------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
JAIL_NAMESPACES = (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC
                   | CLONE_NEWUTS)

# --- mount(2) / umount2(2) flags -------------------------------------------------------------
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
# statvfs f_flag bits a user namespace may not clear on a bind remount ("locked" flags).  Atime
# flags are locked too; they are preserved by passing no atime flag at all on remount.
LOCKED_STATVFS_FLAGS = ((os.ST_RDONLY, MS_RDONLY), (os.ST_NOSUID, MS_NOSUID),
                        (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC))

# --- prctl(2) --------------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7
JAIL_SECUREBITS = (SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP
                   | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED
                   | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED)
LINUX_CAPABILITY_VERSION_3 = 0x20080522
KEYCTL_JOIN_SESSION_KEYRING = 1

# --- syscall numbers (the new-style ones are the same on every architecture) -----------------
SYSCALLS = {"x86_64": {"pivot_root": 155, "keyctl": 250},
            "aarch64": {"pivot_root": 41, "keyctl": 219}}
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

# --- Landlock --------------------------------------------------------------------------------
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1
LL_FS_EXECUTE = 1 << 0
LL_FS_WRITE_FILE = 1 << 1
LL_FS_READ_FILE = 1 << 2
LL_FS_READ_DIR = 1 << 3
LL_FS_REMOVE_DIR = 1 << 4
LL_FS_REMOVE_FILE = 1 << 5
LL_FS_MAKE_CHAR = 1 << 6
LL_FS_MAKE_DIR = 1 << 7
LL_FS_MAKE_REG = 1 << 8
LL_FS_MAKE_SOCK = 1 << 9
LL_FS_MAKE_FIFO = 1 << 10
LL_FS_MAKE_BLOCK = 1 << 11
LL_FS_MAKE_SYM = 1 << 12
LL_FS_REFER = 1 << 13        # ABI 2
LL_FS_TRUNCATE = 1 << 14     # ABI 3
LL_FS_IOCTL_DEV = 1 << 15    # ABI 5
LL_NET_BIND_TCP = 1 << 0     # ABI 4
LL_NET_CONNECT_TCP = 1 << 1  # ABI 4
LL_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
LL_SCOPE_SIGNAL = 1 << 1                # ABI 6
LANDLOCK_ABI_USED = 6  # the newest ABI whose rights this file knows (7 only added audit flags)
LL_FS_READ = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR
LL_FS_DEVICES = LL_FS_READ | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV

# --- the jail's layout -----------------------------------------------------------------------
STAGING_ROOT = "/tmp"  # where the new root's tmpfs is built; covered (in the jail's mount ns only)
ROOT_TMPFS = "mode=0755,size=1m"
DEV_TMPFS = "mode=0755,size=64k"
SCRATCH_TMPFS = "mode=1777,size={mb}m"  # /tmp and /dev/shm: private, size-capped
SCRATCH_TMPFS_MB = 256
HOSTNAME = b"sandbox"
SYSTEM_READ_ONLY = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
                    "/etc/ld.so.cache", "/etc/localtime", "/sys/devices/system/cpu")
BASIC_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
GPU_DEVICE_GLOBS = ("nvidia*", "dri")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
NEVER_EXPOSED_UNDER = ("/proc", "/dev", "/sys")  # the jail builds these itself

SETUP_FAILED_EXIT = 125  # the jail itself could not be set up (message on stderr)
EXEC_FAILED_EXIT = 126
EXEC_NOT_FOUND_EXIT = 127
PROBE_TIMEOUT_S = 20.0


class JailError(RuntimeError):
    """The jail could not be built as asked; nothing was run."""


# =============================================================================================
# Public API
# =============================================================================================

@dataclass(frozen=True)
class Isolation:
    """What a worker actually ran under (recorded per candidate in the store)."""

    user_ns: bool
    mount_ns: bool
    net_ns: bool
    pid_ns: bool
    caps_dropped: bool
    method: str            # "namespaces" or "none"
    reason: str = ""       # why a layer is missing (e.g. the EPERM text from unshare)
    landlock: int = 0      # Landlock ABI of the extra ruleset applied inside the jail; 0 = none

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def full(self) -> bool:
        """Every required layer present (Landlock is an optional extra)."""
        return all((self.user_ns, self.mount_ns, self.net_ns, self.pid_ns, self.caps_dropped))

    def summary(self) -> str:
        names = [n for n, on in (("user", self.user_ns), ("mount", self.mount_ns),
                                 ("net", self.net_ns), ("pid", self.pid_ns)) if on]
        if not names and not self.caps_dropped:
            return f"no isolation ({self.reason})" if self.reason else "no isolation"
        text = "+".join(names) + " namespaces" if names else "no namespaces"
        text += ", no caps" if self.caps_dropped else ", caps kept"
        if self.landlock:
            text += f", landlock v{self.landlock}"
        return text if self.full else f"{text} (incomplete: {self.reason})"


NO_ISOLATION_DISABLED = "isolation disabled by configuration (isolation='none')"


def jail_command(cmd: list[str], *, private_dir: Path, read_only: Sequence[Path] = (),
                 writable: Sequence[Path] = (), gpu_devices: bool = False,
                 isolation: str = "full") -> tuple[list[str], Isolation]:
    """`cmd` wrapped so it runs inside the jail, and what it will run under.

    isolation="full": wrapped if this machine allows the whole jail (probe().full), else `cmd`
    unchanged and an Isolation with every layer False whose reason says what is missing; the
    caller decides whether to refuse.  isolation="none": `cmd` unchanged, method "none".
    The caller must run the result with cwd, TMPDIR and HOME set to `private_dir`.
    """
    if isolation == "none":
        return list(cmd), Isolation(False, False, False, False, False, "none", NO_ISOLATION_DISABLED)
    if isolation != "full":
        raise ValueError(f"isolation must be 'full' or 'none', not {isolation!r}")
    allowed = probe()
    if not allowed.full:
        return list(cmd), Isolation(False, False, False, False, False, "none",
                                    f"jail unavailable here: {allowed.reason}")
    spec = build_spec(private_dir=private_dir, read_only=read_only, writable=writable,
                      gpu_devices=gpu_devices)
    return wrap(cmd, spec), allowed


def build_spec(*, private_dir: Path, read_only: Sequence[Path] = (),
               writable: Sequence[Path] = (), gpu_devices: bool = False) -> dict[str, Any]:
    """The bootstrap's instructions: every path it binds, with its mode, decided here."""
    private = _checked_dir(Path(private_dir), "private_dir")
    mounts: list[list[str]] = [[p, "ro"] for p in _existing(SYSTEM_READ_ONLY)]
    mounts += [[p, "ro"] for p in python_paths()]
    mounts += [[_checked_dir(Path(p), "read_only"), "ro"] for p in read_only]
    extra_writable = [_checked_dir(Path(p), "writable") for p in writable]
    mounts += [[p, "rw"] for p in (private, *extra_writable)]
    mounts += [[p, "dev"] for p in device_paths(gpu_devices)]
    return {"mounts": mounts, "private_dir": private, "writable": [private, *extra_writable],
            "landlock": min(landlock_abi(), LANDLOCK_ABI_USED),
            "scratch_mb": SCRATCH_TMPFS_MB}


def wrap(cmd: Sequence[str], spec: dict[str, Any]) -> list[str]:
    """The bootstrap command line for `spec` (no probing: the caller knows the jail works)."""
    return [sys.executable, "-I", "-S", str(JAIL_SCRIPT), json.dumps(spec), "--", *cmd]


@lru_cache(maxsize=1)
def probe() -> Isolation:
    """What THIS machine and user allow, measured by starting one tiny jailed interpreter that
    reports its namespaces and capabilities from inside (cached; ~0.1-0.3 s)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wb-jail-probe-") as tmp:
        spec = build_spec(private_dir=Path(tmp))
        try:
            done = subprocess.run(wrap([sys.executable, "-I", "-S", "-c", _PROBE_SCRIPT], spec),
                                  cwd=tmp, env=_probe_env(tmp), stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return _partial_isolation(f"jail probe did not run: {exc}")
    if done.returncode != 0:
        text = (done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}")
        return _partial_isolation(text[-600:])
    return _isolation_seen(json.loads(done.stdout), spec["landlock"])


# =============================================================================================
# What the jail exposes (computed in the caller, which knows its own interpreter)
# =============================================================================================

def python_paths() -> list[str]:
    """Everything the interpreter needs read-only: its prefixes, executable, libpython,
    site-packages and sys.path / LD_LIBRARY_PATH entries outside the repo and the home dir."""
    import site
    import sysconfig

    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             sys.executable, os.path.realpath(sys.executable)]
    libdir, ldlib = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and ldlib:
        found.append(os.path.realpath(os.path.join(libdir, ldlib)))
    found += site.getsitepackages()
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    found += [p for p in sys.path if p and os.path.isabs(p)]
    found += [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if os.path.isabs(p)]
    return [p for p in _dedupe(found) if os.path.exists(p) and _safe_to_expose(p)]


def device_paths(gpu: bool) -> list[str]:
    """The device nodes bound into the jail's /dev: the harmless basics, plus the GPU's."""
    found = _existing(BASIC_DEVICES)
    if gpu:
        dev = Path("/dev")
        found += sorted(str(p) for pattern in GPU_DEVICE_GLOBS for p in dev.glob(pattern))
    return found


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where it has none (or it is disabled at boot)."""
    try:
        version = _libc().syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None,
                                  ctypes.c_size_t(0), ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _safe_to_expose(path: str) -> bool:
    """False for anything inside the repo or the host's /tmp, or containing the home dir, the
    repo or /tmp (PYTHONPATH=/root would otherwise expose ~/.ssh).  An interpreter installed
    under the home dir (pyenv: ~/.pyenv/versions/X) is fine: only that subtree is bound."""
    real = os.path.realpath(path)
    home = os.path.realpath(os.path.expanduser("~"))
    if real == "/" or real.startswith(NEVER_EXPOSED_UNDER):
        return False
    if any(_is_within(real, s) for s in (*_checkout(), "/tmp")):
        return False
    return not any(_is_within(s, real) for s in (*_checkout(), home, "/tmp"))


def _checked_dir(path: Path, what: str) -> str:
    """A caller-given directory, resolved; refuses ones that would undo the jail."""
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise ValueError(f"{what} {path} is not an existing directory")
    home = os.path.realpath(os.path.expanduser("~"))
    if real == "/" or real == STAGING_ROOT or real.startswith(NEVER_EXPOSED_UNDER):
        raise ValueError(f"{what} {path} may not be bound into the jail")
    if any(_is_within(s, real) for s in (home, *_checkout())):
        raise ValueError(f"{what} {path} contains the home dir or the repo root; "
                         "pass the specific directories instead")
    return real


@lru_cache(maxsize=1)
def _checkout() -> tuple[str, ...]:
    """The source checkout never exposed (its .env, runs/, ...): REPO_ROOT, unless that is one of
    this interpreter's site-packages directories (an installed package), which holds only
    installed code and is part of the Python installation the jail exposes read-only anyway."""
    import site
    import sysconfig

    sites = [*site.getsitepackages(), site.getusersitepackages(),
             sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    root = os.path.realpath(REPO_ROOT)
    return () if root in {os.path.realpath(p) for p in sites if p} else (root,)


def _existing(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]


def _dedupe(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(os.path.abspath(p) for p in items))


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


# =============================================================================================
# Probe helpers
# =============================================================================================

_PROBE_SCRIPT = r"""
import json, os
ns = {n: os.readlink('/proc/self/ns/' + n) for n in ('user', 'mnt', 'net', 'pid', 'ipc', 'uts')}
status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
caps = {k: status[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs')}
print(json.dumps({'ns': ns, 'caps': caps}))
"""


def _probe_env(tmp: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    return {**keep, "HOME": tmp, "TMPDIR": tmp}


def _host_namespaces() -> dict[str, str]:
    return {n: os.readlink(f"/proc/self/ns/{n}") for n in ("user", "mnt", "net", "pid", "ipc", "uts")}


def _isolation_seen(inside: dict[str, Any], landlock: int) -> Isolation:
    """Layers verified from inside: namespace ids differ from ours, every cap set is empty."""
    host, ns = _host_namespaces(), inside["ns"]
    caps = inside["caps"]
    no_caps = all(int(caps[k], 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
    caps_dropped = no_caps and caps["NoNewPrivs"] == "1"
    layers = {k: ns[k] != host[k] for k in ns}
    missing = [k for k, separate in layers.items() if not separate]
    reason = "" if not missing and caps_dropped else (
        f"not separate: {', '.join(missing) or '-'}; caps dropped: {caps_dropped}")
    full = not missing and caps_dropped
    return Isolation(layers["user"], layers["mnt"], layers["net"], layers["pid"], caps_dropped,
                     "namespaces" if full else "none", reason, landlock if full else 0)


def _partial_isolation(reason: str) -> Isolation:
    """When the whole jail fails: which single namespaces this user could still create."""
    layers = measure_layers()
    return Isolation(layers.get("user") == "ok", layers.get("mount") == "ok",
                     layers.get("net") == "ok", layers.get("pid") == "ok", False, "none", reason)


def measure_layers() -> dict[str, str]:
    """{layer: "ok" or the error} for each namespace on its own (in a throwaway process)."""
    import subprocess

    try:
        done = subprocess.run([sys.executable, "-I", "-S", str(JAIL_SCRIPT), "--layers"],
                              capture_output=True, timeout=PROBE_TIMEOUT_S)
        return json.loads(done.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return {"error": str(exc)}


LAYER_FLAGS = {"user": CLONE_NEWUSER, "mount": CLONE_NEWNS, "net": CLONE_NEWNET,
               "pid": CLONE_NEWPID, "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}


def _layers_report() -> dict[str, str]:
    """Each namespace tried in a forked child, with a user namespace (and without, for root)."""
    report = {}
    for name, flag in LAYER_FLAGS.items():
        tries = [flag | CLONE_NEWUSER] + ([] if flag == CLONE_NEWUSER else [flag])
        errors = [_try_unshare(f) for f in tries]
        report[name] = "ok" if "" in errors else "; ".join(errors)
    return report


def _try_unshare(flags: int) -> str:
    pid = os.fork()
    if pid == 0:
        try:
            _unshare(flags)
            os._exit(0)
        except OSError as exc:
            os._exit(min(exc.errno or 1, 255))
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "" if code == 0 else f"unshare({flags:#x}): {errno.errorcode.get(code, code)} {os.strerror(code)}"


# =============================================================================================
# Thin syscall wrappers
# =============================================================================================

@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    libc.syscall.restype = ctypes.c_long
    return libc


def _check(result: int, what: str) -> int:
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {errno.errorcode.get(code, code)} {os.strerror(code)}")
    return result


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _unshare(flags: int) -> None:
    _check(_libc().unshare(flags), f"unshare({flags:#x})")


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    _check(_libc().mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {source or ''} on {target} ({fstype or 'flags'} {flags:#x})")


def _umount2(target: str, flags: int) -> None:
    _check(_libc().umount2(_b(target), flags), f"umount2({target})")


def _prctl(option: int, arg2: int = 0) -> None:
    _check(_libc().prctl(option, arg2, 0, 0, 0), f"prctl({option}, {arg2})")


def _syscall_nr(name: str) -> int:
    table = SYSCALLS.get(platform.machine())
    if table is None:
        raise JailError(f"no syscall table for architecture {platform.machine()}")
    return table[name]


def _pivot_root(new_root: str, put_old: str) -> None:
    nr = ctypes.c_long(_syscall_nr("pivot_root"))
    _check(_libc().syscall(nr, _b(new_root), _b(put_old)), "pivot_root")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _capset_empty() -> None:
    """Effective, permitted and inheritable capability sets all emptied."""
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc().capset(ctypes.byref(header), data), "capset")


# =============================================================================================
# The bootstrap: outer process (outside the PID namespace)
# =============================================================================================

def main(argv: Sequence[str] | None = None) -> int:
    """`jail.py <json-spec> -- <cmd...>` or `jail.py --layers`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--layers"]:
        print(json.dumps(_layers_report()))
        return 0
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m sandbox.jail '<json-spec>' -- <cmd...>", file=sys.stderr)
        return SETUP_FAILED_EXIT
    return _bootstrap(json.loads(args[0]), args[2:])


def _bootstrap(spec: dict[str, Any], cmd: list[str]) -> int:
    """Unshare, map ids, fork the init, then supervise it until it (or our caller) ends."""
    caller = os.getppid()
    caller_fd = _pidfd_or_none(caller)
    if os.getppid() != caller:   # the caller died before we could watch it
        return SETUP_FAILED_EXIT
    janitor_w = _leave_janitor(caller_fd, spec.get("private_dir"))  # before unshare: outside
    uid, gid, cwd = os.getuid(), os.getgid(), os.getcwd()
    life_r, life_w = os.pipe()      # the init sees EOF here if we die before its PDEATHSIG is set
    status_r, status_w = os.pipe()  # the init reports the payload's wait status (or an error)
    try:
        _unshare(JAIL_NAMESPACES)
        _write_id_maps(uid, gid)
    except OSError as exc:
        print(f"sandbox.jail: namespaces: {exc}", file=sys.stderr)
        return SETUP_FAILED_EXIT
    if caller_fd is None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # no pidfd here: thread-level fallback
    init = os.fork()
    if init == 0:
        for fd in (life_w, status_r, caller_fd, janitor_w):
            if fd is not None:
                os.close(fd)
        _init_main(spec, cmd, cwd, life_r, status_w)
    os.close(life_r)
    os.close(status_w)
    _detach_stdio()
    return _supervise(init, caller_fd, status_r, spec.get("private_dir"), janitor_w)


def _write_id_maps(uid: int, gid: int) -> None:
    """Inner 0 is the caller's own uid/gid: nothing is gained that the caller did not have."""
    _write_proc("/proc/self/setgroups", "deny")
    _write_proc("/proc/self/uid_map", f"0 {uid} 1")
    _write_proc("/proc/self/gid_map", f"0 {gid} 1")


def _write_proc(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _pidfd_or_none(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _detach_stdio() -> None:
    """The payload owns the pipes: our copies would delay the reader's EOF."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


def _supervise(init: int, caller_fd: int | None, status_r: int,
               private_dir: str | None = None, janitor_w: int | None = None) -> int:
    """Wait for the init; if our caller dies or asks us to stop, kill the whole jail.

    When the caller dies (kill -9: it cannot clean up) the private dir is removed here too (and
    by the janitor, `_leave_janitor`, which also covers a payload that had already ended)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: _teardown(init, signum))
    init_fd = _pidfd_or_none(init)
    watched = [fd for fd in (init_fd, caller_fd) if fd is not None]
    while watched:
        ready, _, _ = select.select(watched, [], [])
        if caller_fd in ready:
            _teardown(init, signal.SIGKILL, private_dir)
        if init_fd in ready:
            break
    _, init_status = os.waitpid(init, 0)
    if janitor_w is not None:
        os.write(janitor_w, b"1")  # a normal end: the janitor keeps watching the caller
    return _outcome(_read_reports(status_r), init_status)


def _remove_tree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _leave_janitor(caller_fd: int | None, private_dir: str | None) -> int | None:
    """Fork a process that removes `private_dir` if our caller dies before it does; returns the
    write end of the pipe on which we tell it that the payload ended normally.

    Forked before the namespaces are made (a fork inside the new PID namespace fails once its
    init has died) and kept in our process group.  The caller uses the private dir until it is
    done with the worker (it reads the worker's log there), then kills the worker's process group,
    which ends the janitor too, and removes the dir itself; the janitor also leaves within a
    second of the dir's removal by anyone, and at once if we die before the payload ended (we
    were killed on purpose: the caller cleans up, or its pool's sweep does).  A caller killed
    first (kill -9) removes nothing: the janitor, watching its pidfd, removes the dir and exits."""
    if caller_fd is None or not private_dir:
        return None
    done_r, done_w = os.pipe()
    if os.fork() != 0:
        os.close(done_r)
        return done_w
    try:
        os.close(done_w)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        watched = [caller_fd, done_r]
        while os.path.isdir(private_dir):
            ready = select.select(watched, [], [], 1.0)[0]
            if caller_fd in ready:
                _remove_tree(private_dir)
                break
            if done_r in ready:
                if not os.read(done_r, 1):
                    break  # we died before the payload ended
                watched.remove(done_r)
    finally:
        os._exit(0)


def _teardown(init: int, signum: int, remove: str | None = None) -> NoReturn:
    try:
        os.kill(init, signal.SIGKILL)   # the init's death kills the whole PID namespace
        os.waitpid(init, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    if remove:  # our caller died and cannot remove the private dir it made for us
        _remove_tree(remove)
    _die_by_signal(signum)


def _read_reports(fd: int) -> list[dict[str, Any]]:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _outcome(reports: list[dict[str, Any]], init_status: int) -> int:
    """Our exit mirrors the payload's: same code, or death by the same signal."""
    for report in reports:
        if "error" in report:
            print(f"sandbox.jail: {report['error']}", file=sys.stderr)
            return int(report.get("code", SETUP_FAILED_EXIT))
    statuses = [r["status"] for r in reports if "status" in r]
    status = statuses[0] if statuses else init_status
    if os.WIFSIGNALED(status):
        _die_by_signal(os.WTERMSIG(status))
    return os.waitstatus_to_exitcode(status)


def _die_by_signal(signum: int) -> NoReturn:
    """Exit the way the payload did, so the pool's classification (SIGXCPU, SIGKILL) holds."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if signum not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be handled anyway
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signum])
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # a signal whose default action is not to terminate


# =============================================================================================
# The init (PID 1 of the new PID namespace)
# =============================================================================================

def _init_main(spec: dict[str, Any], cmd: list[str], cwd: str, life_r: int,
               status_w: int) -> NoReturn:
    """Build and enter the root, drop privileges, run the payload, report its status."""
    try:
        _die_with_parent(life_r)
        root = _build_root(spec)
        _enter_root(root)
        _sethostname()
        _new_session_keyring()
        _drop_privileges()
        _die_with_parent(life_r)
    except Exception as exc:  # noqa: BLE001 - reported to the outer process, then we exit
        _report(status_w, {"error": f"setup: {exc}", "code": SETUP_FAILED_EXIT})
        os._exit(SETUP_FAILED_EXIT)
    os.close(life_r)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as PID 1, default-action signals are dropped
    payload = os.fork()
    if payload == 0:
        _exec_payload(spec, cmd, cwd, status_w)
    _detach_stdio()
    _report(status_w, {"status": _reap_until(payload)})
    os._exit(0)


def _die_with_parent(life_r: int) -> None:
    """PDEATHSIG (re-armed after credential changes), not dumpable (so the payload cannot
    ptrace us), and out at once if the outer process already died."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_DUMPABLE, 0)
    if select.select([life_r], [], [], 0)[0]:
        os._exit(SETUP_FAILED_EXIT)


def _report(fd: int, message: dict[str, Any]) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


def _reap_until(child: int) -> int:
    """Reap every orphan (we are PID 1) until `child` itself exits; its raw wait status."""
    while True:
        pid, status = os.wait()
        if pid == child:
            return status


# --- the root --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Bind:
    path: str      # real path on the host = the same path inside
    mode: str      # "ro", "rw" or "dev"
    is_dir: bool
    fd: int        # O_PATH fd of the source, opened before anything was covered


def _build_root(spec: dict[str, Any]) -> str:
    """A tmpfs at STAGING_ROOT holding exactly what the spec names; returns its path."""
    binds, links = _plan(spec["mounts"])
    _mount(None, "/", None, MS_REC | MS_PRIVATE)   # nothing we do propagates to the host
    root = STAGING_ROOT
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, ROOT_TMPFS)
    scratch = SCRATCH_TMPFS.format(mb=int(spec.get("scratch_mb", SCRATCH_TMPFS_MB)))
    _mount_proc(root)
    _mount_tmpfs(root + "/tmp", scratch, MS_NOSUID | MS_NODEV)
    _make_dev(root, [b for b in binds if b.mode == "dev"], scratch)
    bound: list[str] = []
    for bind in sorted((b for b in binds if b.mode != "dev"), key=_depth_order):
        if not _covered(bind, bound, binds):
            _bind(root, bind, bound)
    for bind in binds:
        os.close(bind.fd)
    for where, target in links:
        _make_link(root, where, target, bound)
    _remount(root + "/dev", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return root


def _plan(mounts: list[list[str]]) -> tuple[list[_Bind], list[tuple[str, str]]]:
    """Resolve every path on the host while it is still visible: real paths to bind (rw beats
    ro for the same path), and the symlinks met on the way (/lib64 -> usr/lib64) to recreate."""
    modes: dict[str, str] = {}
    links: dict[str, str] = {}
    for path, mode in mounts:
        lexical = os.path.abspath(path)
        real = os.path.realpath(lexical)
        if not os.path.exists(real):
            raise JailError(f"{path} does not exist")
        if modes.get(real) != "rw":
            modes[real] = mode
        link = _first_symlink(lexical)
        if link:
            links[link] = os.readlink(link)
    binds = [_Bind(p, m, os.path.isdir(p), os.open(p, os.O_PATH | os.O_CLOEXEC))
             for p, m in modes.items()]
    return binds, sorted(links.items())


def _first_symlink(path: str) -> str | None:
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/" + "/".join(parts[:i])
        if os.path.islink(prefix):
            return prefix
    return None


def _depth_order(bind: _Bind) -> tuple[int, str]:
    return bind.path.count("/"), bind.path


def _covered(bind: _Bind, bound: list[str], binds: list[_Bind]) -> bool:
    """Already visible, in the same mode, through a bound ancestor directory."""
    ancestors = [b for b in binds if b.path in bound and b.is_dir and _is_within(bind.path, b.path)
                 and b.path != bind.path]
    if not ancestors:
        return False
    nearest = max(ancestors, key=lambda b: len(b.path))
    return nearest.mode == bind.mode


def _bind(root: str, bind: _Bind, bound: list[str]) -> None:
    """Bind the source (recursively) at the same path inside; read-only binds have every mount
    of their subtree remounted read-only, rw ones are only made nosuid/nodev."""
    target = root + bind.path
    _ensure(root, bind.path, bind.is_dir, bound)
    _mount(f"/proc/self/fd/{bind.fd}", target, None, MS_BIND | MS_REC)
    extra = MS_NOSUID | MS_NODEV | (MS_RDONLY if bind.mode == "ro" else 0)
    for mountpoint in _mounts_under(target):
        _remount(mountpoint, extra)
    bound.append(bind.path)


def _remount(target: str, flags: int) -> None:
    """Bind-remount with `flags` added to the locked flags the mount already has."""
    _mount(None, target, None, MS_REMOUNT | MS_BIND | flags | _locked_flags(target))


def _locked_flags(target: str) -> int:
    have = os.statvfs(target).f_flag
    return sum(ms for st, ms in LOCKED_STATVFS_FLAGS if have & st)


def _mounts_under(target: str) -> list[str]:
    """Mount points at or below `target` (a recursive bind brings the source's submounts)."""
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = _unescape(line.split(" ")[4])
            if _is_within(point, target):
                points.append(point)
    return sorted(set(points), key=len)


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _ensure(root: str, path: str, is_dir: bool, bound: list[str]) -> None:
    """Create the mount point on OUR tmpfs; refuse to create anything inside a host bind."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        inner = "/" + "/".join(parts[:i])
        here = root + inner
        if os.path.islink(here):
            raise JailError(f"{inner} is a symlink inside the jail; bind real paths only")
        if os.path.lexists(here):
            continue
        if any(_is_within(inner, b) for b in bound):
            raise JailError(f"{inner} is missing inside bound {path}; not creating it on the host")
        last = i == len(parts)
        if last and not is_dir:
            os.close(os.open(here, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        else:
            os.mkdir(here, 0o755)


def _make_link(root: str, where: str, target: str, bound: list[str]) -> None:
    if os.path.lexists(root + where):
        return
    _ensure(root, os.path.dirname(where), True, bound)
    os.symlink(target, root + where)


def _mount_tmpfs(target: str, options: str, flags: int) -> None:
    os.makedirs(target, 0o755, exist_ok=True)
    _mount("tmpfs", target, "tmpfs", flags, options)


def _mount_proc(root: str) -> None:
    """A fresh procfs: only our PID namespace's processes.  Nested user namespaces are blocked
    (max_user_namespaces=0 in ours) before the whole of /proc is made read-only, so no sysctl,
    /proc/sysrq-trigger or /proc/<pid>/mem can be written even where inner 0 is host root."""
    os.mkdir(root + "/proc", 0o555)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _write_proc(root + "/proc/sys/user/max_user_namespaces", "0")
    _remount(root + "/proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _make_dev(root: str, devices: list[_Bind], scratch: str) -> None:
    """A tmpfs /dev with only the named device nodes bound in, the usual links and /dev/shm."""
    dev = root + "/dev"
    _mount_tmpfs(dev, DEV_TMPFS, MS_NOSUID | MS_NOEXEC)
    for device in devices:
        _ensure(root, device.path, device.is_dir, [])
        _mount(f"/proc/self/fd/{device.fd}", root + device.path, None, MS_BIND | MS_REC)
        for mountpoint in _mounts_under(root + device.path):
            _remount(mountpoint, MS_NOSUID)
    for name, target in DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    _mount_tmpfs(dev + "/shm", scratch, MS_NOSUID | MS_NODEV)


def _enter_root(root: str) -> None:
    """pivot_root into the new root, detach the old one entirely, make / read-only."""
    os.chdir(root)
    _pivot_root(".", ".")          # the old root is now stacked on top of "."
    _umount2(".", MNT_DETACH)      # ... and gone
    os.chdir("/")
    _remount("/", MS_RDONLY | MS_NOSUID | MS_NODEV)


def _sethostname() -> None:
    _check(_libc().sethostname(HOSTNAME, len(HOSTNAME)), "sethostname")


def _new_session_keyring() -> None:
    """A fresh anonymous session keyring: the caller's kernel keys stay out of reach."""
    try:
        nr = _syscall_nr("keyctl")
    except JailError:
        return
    result = _libc().syscall(ctypes.c_long(nr), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None)
    if result == -1 and ctypes.get_errno() not in (errno.ENOSYS, errno.EOPNOTSUPP):
        _check(result, "keyctl(JOIN_SESSION_KEYRING)")


def _drop_privileges() -> None:
    """Securebits first (they need CAP_SETPCAP), then every capability set, then no_new_privs."""
    _prctl(PR_SET_SECUREBITS, JAIL_SECUREBITS)
    for cap in range(_last_cap() + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    _capset_empty()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


# --- the payload -----------------------------------------------------------------------------

def _exec_payload(spec: dict[str, Any], cmd: list[str], cwd: str, status_w: int) -> NoReturn:
    """Landlock (if asked), the caller's cwd, default signal dispositions, then exec."""
    try:
        if spec.get("landlock"):
            _apply_landlock(int(spec["landlock"]), spec["writable"])
        _restore_signals()
        _chdir_first(cwd, spec["private_dir"], "/")
        os.execvp(cmd[0], cmd)
    except Exception as exc:  # noqa: BLE001 - reported to the outer process, then we exit
        code = EXEC_NOT_FOUND_EXIT if isinstance(exc, FileNotFoundError) else EXEC_FAILED_EXIT
        _report(status_w, {"error": f"exec {cmd[0]}: {exc}", "code": code})
        os._exit(code)
    os._exit(EXEC_FAILED_EXIT)  # unreachable: execvp returns only by raising


def _restore_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; an exec'd program must get the defaults back."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _chdir_first(*candidates: str) -> None:
    for path in candidates:
        try:
            os.chdir(path)
            return
        except OSError:
            continue


# --- Landlock (optional extra layer) ---------------------------------------------------------

class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _landlock_fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= LL_FS_REFER
    if abi >= 3:
        rights |= LL_FS_TRUNCATE
    if abi >= 5:
        rights |= LL_FS_IOCTL_DEV
    return rights


def _apply_landlock(abi: int, writable: Sequence[str]) -> None:
    """Independent of the mount view: read/execute anywhere, write only in the writable dirs,
    /tmp and /dev/shm, devices only under /dev; no TCP bind/connect (ABI 4); no signals or
    abstract unix sockets beyond the payload's own processes (ABI 6)."""
    fs = _landlock_fs_rights(abi)
    attr = _RulesetAttr(fs, (LL_NET_BIND_TCP | LL_NET_CONNECT_TCP) if abi >= 4 else 0,
                        (LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    libc = _libc()
    ruleset = _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                                  ctypes.c_size_t(size), ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        _landlock_allow(ruleset, "/", LL_FS_READ)
        _landlock_allow(ruleset, "/dev", LL_FS_DEVICES & fs)
        for path in (*writable, "/tmp", "/dev/shm"):
            _landlock_allow(ruleset, path, fs)
        _check(libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset),
                            ctypes.c_uint32(0)), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _landlock_allow(ruleset: int, path: str, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        rule = _PathBeneathAttr(access, fd)
        _check(_libc().syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                               ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                               ctypes.c_uint32(0)), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main())
