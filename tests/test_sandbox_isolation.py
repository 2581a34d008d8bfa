"""The jail (sandbox/jail.py) checked from inside: small `python -c` scripts run jailed with the
real interpreter try to escape, and report what happened as one JSON line.  Where a check could
pass for a trivial reason, the same script is also run unjailed as a control.  The filesystem
checks are in test_sandbox_jail_fs.py; the runner and fixtures in jail_helpers.py."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sandbox import jail
from sandbox.jail import REPO_ROOT, Isolation, build_spec, jail_command, probe, wrap
from tests.jail_helpers import (PRELUDE, PROJECT_DIRS, _env, _run, isolation,  # noqa: F401 - fixtures
                                jailed_results, plain_results, private_dir, results_of, run_jailed)

NOBODY = 65534


# --- the API ---------------------------------------------------------------------------------

def test_probe_verifies_every_layer_from_inside(isolation):
    assert isolation.method == "namespaces" and isolation.reason == ""
    assert (isolation.user_ns, isolation.mount_ns, isolation.net_ns, isolation.pid_ns,
            isolation.caps_dropped) == (True,) * 5
    assert isolation.summary().startswith("user+mount+net+pid namespaces, no caps")
    assert Isolation(**isolation.to_json()) == isolation
    again = probe.__wrapped__()  # uncached: it really starts a jailed interpreter
    assert again == isolation


def test_the_jail_is_full_wherever_the_kernel_allows_every_namespace():
    """Guards the `isolation` fixture's skip (here and in test_sandbox_jail_fs.py): a regression
    that loses a layer must fail here, not skip."""
    layers = jail.measure_layers()
    if set(layers.values()) != {"ok"}:
        pytest.skip(f"this machine does not allow every namespace: {layers}")
    found = probe.__wrapped__()
    assert found.full, found.reason


def test_isolation_none_leaves_the_command_alone(private_dir):
    cmd, used = jail_command(["worker", "--x"], private_dir=private_dir, isolation="none")
    assert cmd == ["worker", "--x"]
    assert used.method == "none" and not used.full and "isolation='none'" in used.reason
    with pytest.raises(ValueError):
        jail_command(["worker"], private_dir=private_dir, isolation="some")


def test_unavailable_jail_returns_the_command_unwrapped_with_the_reason(private_dir, monkeypatch):
    broken = Isolation(True, False, True, False, False, "none", "mount proc: EPERM")
    monkeypatch.setattr(jail, "probe", lambda: broken)
    cmd, used = jail_command(["worker"], private_dir=private_dir)
    assert cmd == ["worker"]
    assert not any((used.user_ns, used.mount_ns, used.net_ns, used.pid_ns, used.caps_dropped))
    assert used.method == "none" and "mount proc: EPERM" in used.reason
    assert "no isolation" in used.summary()


def test_paths_that_would_undo_the_jail_are_refused(private_dir):
    for bad in (Path("/"), REPO_ROOT, Path.home(), Path("/proc"), Path("/tmp")):
        with pytest.raises(ValueError):
            build_spec(private_dir=private_dir, read_only=[bad])
    with pytest.raises(ValueError):
        build_spec(private_dir=private_dir / "missing")
    exposed = [p for p, _mode in build_spec(private_dir=private_dir)["mounts"]]
    assert not any(p == str(REPO_ROOT) or p.startswith(str(REPO_ROOT) + "/") for p in exposed)
    assert str(Path.home()) not in exposed and "/tmp" not in exposed


# --- network ---------------------------------------------------------------------------------

NETWORK_BODY = r"""
import socket
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else {port}
def connect(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM); s.settimeout(3)
    try: s.connect(addr)
    finally: s.close()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try: s.sendto(b"x", ("127.0.0.1", PORT))
    finally: s.close()
attempt("tcp_loopback", lambda: connect(socket.AF_INET, ("127.0.0.1", PORT)))
attempt("tcp_outside", lambda: connect(socket.AF_INET, ("192.0.2.1", 80)))
attempt("udp_loopback", udp)
results["interfaces"] = [name for _, name in socket.if_nameindex()]
"""


@pytest.fixture
def host_listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


def test_network_is_unreachable_even_host_loopback(isolation, private_dir, host_listener):
    body = NETWORK_BODY.format(port=host_listener)
    assert plain_results(body, private_dir)["tcp_loopback"] == "ok"  # control: it is listening
    inside = jailed_results(body, private_dir)
    assert inside["tcp_loopback"] != "ok" and inside["tcp_outside"] != "ok"
    assert inside["udp_loopback"] != "ok"
    assert inside["interfaces"] == ["lo"]


def test_network_namespace_alone_blocks_loopback(isolation, private_dir, host_listener):
    """The same with Landlock off: the namespace layer holds by itself (lo is down)."""
    spec = {**build_spec(private_dir=private_dir), "landlock": 0}
    script = PRELUDE + NETWORK_BODY.format(port=host_listener) + "\ndone()\n"
    inside = results_of(_run(wrap([sys.executable, "-c", script], spec), private_dir))
    assert inside["tcp_loopback"] == "ENETUNREACH" and inside["udp_loopback"] == "ENETUNREACH"
    assert inside["tcp_outside"] != "ok" and inside["interfaces"] == ["lo"]


@pytest.mark.skipif(jail.landlock_abi() < 4, reason="kernel has no Landlock network rules (ABI < 4)")
def test_landlock_layer_denies_tcp_and_signals_beyond_the_payload(isolation, private_dir):
    assert isolation.landlock >= 4
    inside = jailed_results(r"""
import socket
attempt("tcp_bind", lambda: socket.socket().bind(("127.0.0.1", 0)))
attempt("signal_init", lambda: os.kill(1, 0))
""", private_dir)
    assert inside["tcp_bind"] == "EACCES"
    if isolation.landlock >= 6:
        assert inside["signal_init"] == "EPERM"


# --- processes and privileges ----------------------------------------------------------------

def test_host_processes_cannot_be_seen_or_signalled(isolation, private_dir):
    sleeper = subprocess.Popen(["sleep", "60"])
    body = f"pid = {sleeper.pid}\n" + r"""
import signal
attempt("probe", lambda: os.kill(pid, 0))
attempt("kill", lambda: os.kill(pid, signal.SIGKILL))
attempt("kill_all", lambda: os.kill(-1, signal.SIGKILL))   # every process we may signal
results["proc_pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
results["me"] = os.getpid()
"""
    try:
        control = f"pid = {sleeper.pid}\nattempt('probe', lambda: os.kill(pid, 0))"
        assert plain_results(control, private_dir)["probe"] == "ok"
        inside = jailed_results(body, private_dir)
        assert inside["probe"] == "ESRCH" and inside["kill"] == "ESRCH"
        assert inside["proc_pids"] == [1, inside["me"]]
        time.sleep(0.2)
        assert sleeper.poll() is None, "the host process was killed from inside the jail"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_no_capabilities_no_mounts_no_privilege_games(isolation, private_dir):
    inside = jailed_results(r"""
import ctypes, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def c(result):
    if result != 0:
        raise OSError(ctypes.get_errno(), "")
attempt("mount_tmpfs", lambda: c(libc.mount(b"tmpfs", os.getcwd().encode(), b"tmpfs", 0, None)))
attempt("remount_root_rw", lambda: c(libc.mount(None, b"/", None, 0x20 | 0x1000, None)))
attempt("umount_proc", lambda: c(libc.umount2(b"/proc", 2)))
attempt("umount_usr", lambda: c(libc.umount2(b"/usr", 2)))
attempt("chroot", lambda: os.chroot("/tmp"))
attempt("setuid", lambda: os.setuid(1000))
attempt("setgid", lambda: os.setgid(1000))
attempt("nested_userns", lambda: c(libc.unshare(0x10000000)))
attempt("new_mountns", lambda: c(libc.unshare(0x00020000)))
attempt("init_memory", lambda: open("/proc/1/mem", "rb"))
attempt("sethostname", lambda: c(libc.sethostname(b"x", 1)))
status = subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True).stdout
results["exec_caps"] = {l.split(":")[0]: l.split(":")[1].strip() for l in status.splitlines()
                        if l.startswith(("Cap", "NoNewPrivs"))}
results["uid"] = os.getuid()
""", private_dir)
    for name in ("mount_tmpfs", "remount_root_rw", "umount_proc", "umount_usr", "chroot",
                 "setuid", "setgid", "nested_userns", "new_mountns", "init_memory", "sethostname"):
        assert inside[name] != "ok", name
    assert inside["nested_userns"] in ("ENOSPC", "EPERM")
    caps = inside["exec_caps"]  # an exec as uid 0 inside got nothing back
    assert inside["uid"] == 0 and caps.pop("NoNewPrivs") == "1"
    assert set(caps.values()) == {"0000000000000000"}, caps


def test_exit_status_signals_and_pipes_pass_through(isolation, private_dir):
    echo = run_jailed("import sys; data = sys.stdin.read(); print(data.upper()); "
                      "print('to stderr', file=sys.stderr); sys.exit(3)", private_dir,
                      stdin="ping\n")
    assert (echo.returncode, echo.stdout, echo.stderr) == (3, "PING\n\n", "to stderr\n")
    killed = run_jailed("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", private_dir)
    assert killed.returncode == -signal.SIGKILL
    # The CPU-time limit's SIGXCPU must arrive: the payload is not the namespace's PID 1.
    cpu = run_jailed("import resource; resource.setrlimit(resource.RLIMIT_CPU, (1, 30))\n"
                     "while True: pass", private_dir, timeout=30)
    assert cpu.returncode == -signal.SIGXCPU
    missing = _run(jail_command(["/nonexistent-binary"], private_dir=private_dir)[0], private_dir)
    assert missing.returncode == 127 and "nonexistent-binary" in missing.stderr


# --- lifetime --------------------------------------------------------------------------------

PAYLOAD_WITH_CHILD = r"""
import os, subprocess, time
child = subprocess.Popen(["sleep", "60"])
open("ready", "w").write(str(child.pid))
time.sleep(60)
"""


def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _assert_all_gone(pids: set[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = {p for p in pids if _alive(p)}
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"jail processes survived: {survivors}"


def test_the_jail_dies_when_its_parent_is_killed(isolation, private_dir):
    jailed, _ = jail_command([sys.executable, "-c", PAYLOAD_WITH_CHILD], private_dir=private_dir)
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys; subprocess.Popen(sys.argv[1:]).wait()",
                               *jailed], cwd=private_dir, env=_env(private_dir))
    try:
        _wait_for(private_dir / "ready")
        jail_pids = _descendants(parent.pid)
        assert len(jail_pids) >= 4, jail_pids  # bootstrap, init, payload, the payload's child
        parent.kill()
        parent.wait()
        _assert_all_gone(jail_pids)
    finally:
        parent.kill()
        parent.wait()


def test_the_jail_dies_when_the_bootstrap_is_killed(isolation, private_dir):
    jailed, _ = jail_command([sys.executable, "-c", PAYLOAD_WITH_CHILD], private_dir=private_dir)
    bootstrap = subprocess.Popen(jailed, cwd=private_dir, env=_env(private_dir))
    try:
        _wait_for(private_dir / "ready")
        inner = _descendants(bootstrap.pid)
        assert len(inner) >= 3, inner
        bootstrap.kill()   # only the bootstrap: the init's PDEATHSIG must take the rest
        bootstrap.wait()
        _assert_all_gone(inner)
    finally:
        bootstrap.kill()
        bootstrap.wait()


# --- what the worker needs -------------------------------------------------------------------

def test_jax_runs_inside_on_cpu(isolation, private_dir):
    done = run_jailed("import jax, jax.numpy as jnp; print(float(jnp.zeros(1).sum() + 1), "
                      "jax.devices()[0].platform)", private_dir, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1.0", "cpu"]


# --- an unprivileged user --------------------------------------------------------------------

UNPRIVILEGED_BODY = r"""
import socket, signal
ns = {n: os.readlink('/proc/self/ns/' + n) for n in ('user', 'mnt', 'net', 'pid')}
results["ns"] = ns
status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)
results["caps"] = sorted({status[k].strip() for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')})
results["uid_map"] = open('/proc/self/uid_map').read().split()
s = socket.socket(); s.settimeout(3)
attempt("tcp_loopback", lambda: s.connect(("127.0.0.1", PORT)))
attempt("write_project", lambda: write(PROJECT + "/x"))
attempt("signal_host", lambda: os.kill(HOSTPID, 0))
attempt("write_private", lambda: write("mine.txt"))
"""


def _nobody_can_reach(path: Path) -> bool:
    """Every directory above `path` is traversable by others, and `path` readable."""
    for part in [*reversed(path.parents), path]:
        mode = part.stat().st_mode
        if not mode & 0o001 or (part == path and not mode & 0o004):
            return False
    return True


def _unprivileged_wrapper(inner: list[str], private: Path, save: Path) -> list[str]:
    """As root: a private mount namespace in which uid 65534 can reach the interpreter (a tmpfs
    over the 0700 home dir with the interpreter bound back), then setpriv to nobody."""
    prefix = Path(sys.base_prefix).resolve()
    home = Path.home().resolve()
    setup = []
    if not _nobody_can_reach(prefix):
        if not (prefix.is_relative_to(home) and _nobody_can_reach(home.parent)):
            pytest.skip(f"uid {NOBODY} cannot reach the interpreter at {prefix}, which is not "
                        f"under the home dir {home} this test knows how to uncover")
        keep = home / prefix.relative_to(home).parts[0]
        setup = [f"mount --bind {shlex.quote(str(keep))} {shlex.quote(str(save))}",
                 f"mount -t tmpfs -o mode=755 tmpfs {shlex.quote(str(home))}",
                 f"mkdir {shlex.quote(str(keep))}",
                 f"mount --bind {shlex.quote(str(save))} {shlex.quote(str(keep))}"]
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", *inner]
    script = " && ".join([*setup, f"cd {shlex.quote(str(private))}", "exec " + shlex.join(drop)])
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


def test_an_unprivileged_user_gets_the_whole_jail(isolation, host_listener):
    if os.geteuid() != 0:
        pytest.skip("building the uid-65534 helper needs root (this test runs as "
                    f"uid {os.geteuid()}; as that user the other tests already are the unprivileged case)")
    for tool in ("unshare", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} (util-linux) is not installed")
    if not _nobody_can_reach(REPO_ROOT / "sandbox"):
        pytest.skip(f"uid {NOBODY} cannot read {REPO_ROOT / 'sandbox'}")
    private = Path(tempfile.mkdtemp(prefix="wb-sandbox-nobody-"))
    save = Path(tempfile.mkdtemp(prefix="wb-sandbox-save-"))
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        os.chown(private, NOBODY, NOBODY)
        body = (f"PORT = {host_listener}; PROJECT = {str(REPO_ROOT / 'sandbox')!r}; "
                f"HOSTPID = {sleeper.pid}\n" + UNPRIVILEGED_BODY)
        spec = build_spec(private_dir=private, read_only=PROJECT_DIRS)
        inner = wrap([sys.executable, "-c", PRELUDE + body + "\ndone()\n"], spec)
        done = subprocess.run(_unprivileged_wrapper(inner, private, save), env=_env(private),
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0 and "unshare failed" in done.stderr:
            pytest.skip(f"the root helper could not be built: {done.stderr.strip()}")
        inside = results_of(done)
        host = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("user", "net", "pid")}
        assert all(inside["ns"][n] != host[n] for n in host)
        assert inside["uid_map"] == ["0", str(NOBODY), "1"]
        assert inside["caps"] == ["0000000000000000"]
        assert inside["tcp_loopback"] != "ok" and inside["signal_host"] == "ESRCH"
        assert inside["write_project"] == "EROFS" and inside["write_private"] == "ok"
        assert (private / "mine.txt").stat().st_uid == NOBODY
    finally:
        sleeper.kill()
        sleeper.wait()
        shutil.rmtree(private, ignore_errors=True)
        shutil.rmtree(save, ignore_errors=True)
