"""An isolation boundary for sandbox workers that holds even if the static screen is bypassed.

`jail_command(cmd, private_dir=...)` wraps a worker command as

    python -I -S sandbox/jail_boot.py '<json-spec>' -- <cmd...>

This module is the caller's side: it measures what the machine allows and decides every path
the jail exposes.  The bootstrap (`jail_boot.py`, run as a script, standard library only, with
the kernel wrappers in `jail_kernel.py` and the root builder in `jail_root.py`) then:

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

import json
import os
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from sandbox.jail_kernel import LANDLOCK_ABI_USED, JailError, is_within, landlock_abi
from sandbox.jail_root import (BASIC_DEVICES, GPU_DEVICE_GLOBS, NEVER_EXPOSED_UNDER,
                               SCRATCH_TMPFS_MB, STAGING_ROOT, SYSTEM_READ_ONLY)

__all__ = ["Isolation", "JailError", "build_spec", "jail_command", "landlock_abi",
           "measure_layers", "probe", "wrap"]

PROBE_TIMEOUT_S = 20.0

JAIL_SCRIPT = Path(__file__).resolve().with_name("jail_boot.py")
REPO_ROOT = JAIL_SCRIPT.parent.parent  # the repo in a source checkout; site-packages if installed

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




def _safe_to_expose(path: str) -> bool:
    """False for anything inside the repo or the host's /tmp, or containing the home dir, the
    repo or /tmp (PYTHONPATH=/root would otherwise expose ~/.ssh).  An interpreter installed
    under the home dir (pyenv: ~/.pyenv/versions/X) is fine: only that subtree is bound."""
    real = os.path.realpath(path)
    home = os.path.realpath(os.path.expanduser("~"))
    if real == "/" or real.startswith(NEVER_EXPOSED_UNDER):
        return False
    if any(is_within(real, s) for s in (*_checkout(), "/tmp")):
        return False
    return not any(is_within(s, real) for s in (*_checkout(), home, "/tmp"))


def _checked_dir(path: Path, what: str) -> str:
    """A caller-given directory, resolved; refuses ones that would undo the jail."""
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise ValueError(f"{what} {path} is not an existing directory")
    home = os.path.realpath(os.path.expanduser("~"))
    if real == "/" or real == STAGING_ROOT or real.startswith(NEVER_EXPOSED_UNDER):
        raise ValueError(f"{what} {path} may not be bound into the jail")
    if any(is_within(s, real) for s in (home, *_checkout())):
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
