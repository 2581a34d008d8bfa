"""The jail's bootstrap: run as `python -I -S sandbox/jail_boot.py '<json-spec>' -- <cmd...>`.

Three processes: the outer one stays outside the PID namespace, watches its caller through a
pidfd and mirrors the payload's exit; the init (PID 1 inside) builds the root (`jail_root`) and
reaps orphans; the payload adds Landlock and execs the command.  See `sandbox/jail.py` for the
whole design.  Standard library only: this runs before any isolation exists.
"""

from __future__ import annotations

import errno
import json
import os
import select
import shutil
import signal
import sys
from typing import Any, NoReturn, Sequence

if __name__ == "__main__" and not __package__:
    # Run as a script under -I: our package's parent is not on sys.path.  Appended, so the
    # standard library still wins over anything else that directory holds.
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sandbox.jail_kernel import (  # noqa: E402 - after the path fix above
    CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS,
    JAIL_NAMESPACES, PR_SET_DUMPABLE, PR_SET_PDEATHSIG, apply_landlock, prctl, unshare,
    write_proc)
from sandbox.jail_root import (  # noqa: E402
    build_root, drop_privileges, enter_root, new_session_keyring, sethostname)

SETUP_FAILED_EXIT = 125  # the jail itself could not be set up (message on stderr)
EXEC_FAILED_EXIT = 126
EXEC_NOT_FOUND_EXIT = 127

LAYER_FLAGS = {"user": CLONE_NEWUSER, "mount": CLONE_NEWNS, "net": CLONE_NEWNET,
               "pid": CLONE_NEWPID, "ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}



def main(argv: Sequence[str] | None = None) -> int:
    """`jail.py <json-spec> -- <cmd...>` or `jail.py --layers`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--layers"]:
        print(json.dumps(layers_report()))
        return 0
    if len(args) < 3 or args[1] != "--":
        print("usage: python -m sandbox.jail_boot '<json-spec>' -- <cmd...>", file=sys.stderr)
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
        unshare(JAIL_NAMESPACES)
        _write_id_maps(uid, gid)
    except OSError as exc:
        print(f"sandbox.jail: namespaces: {exc}", file=sys.stderr)
        return SETUP_FAILED_EXIT
    if caller_fd is None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # no pidfd here: thread-level fallback
    init = os.fork()
    if init == 0:
        for fd in (life_w, status_r, caller_fd, janitor_w):
            if fd is not None:
                os.close(fd)
        _init_main(spec, cmd, cwd, life_r, status_w)
    os.close(life_r)
    os.close(status_w)
    _detach_stdio()
    return _supervise(init, caller_fd, status_r, janitor_w)


def _write_id_maps(uid: int, gid: int) -> None:
    """Inner 0 is the caller's own uid/gid: nothing is gained that the caller did not have."""
    write_proc("/proc/self/setgroups", "deny")
    write_proc("/proc/self/uid_map", f"0 {uid} 1")
    write_proc("/proc/self/gid_map", f"0 {gid} 1")


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
               janitor_w: int | None = None) -> int:
    """Wait for the init; if our caller dies or asks us to stop, kill the whole jail.

    A caller killed with kill -9 cannot remove the private dir it made for us: the janitor
    (`_leave_janitor`) does, whether the payload was still running or had already ended."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: _teardown(init, signum))
    init_fd = _pidfd_or_none(init)
    watched = [fd for fd in (init_fd, caller_fd) if fd is not None]
    while watched:
        ready, _, _ = select.select(watched, [], [])
        if caller_fd in ready:
            _teardown(init, signal.SIGKILL)
        if init_fd in ready:
            break
    _, init_status = os.waitpid(init, 0)
    if janitor_w is not None:
        os.write(janitor_w, b"1")  # a normal end: the janitor keeps watching the caller
    return _outcome(_read_reports(status_r), init_status)


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
                shutil.rmtree(private_dir, ignore_errors=True)
                break
            if done_r in ready:
                if not os.read(done_r, 1):
                    break  # we died before the payload ended
                watched.remove(done_r)
    finally:
        os._exit(0)


def _teardown(init: int, signum: int) -> NoReturn:
    try:
        os.kill(init, signal.SIGKILL)   # the init's death kills the whole PID namespace
        os.waitpid(init, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
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
        root = build_root(spec)
        enter_root(root)
        sethostname()
        new_session_keyring()
        drop_privileges()
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
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 0)
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


# --- the payload (a child of the init, so default-action signals reach it) -------------------

def _exec_payload(spec: dict[str, Any], cmd: list[str], cwd: str, status_w: int) -> NoReturn:
    """Landlock (if asked), the caller's cwd, default signal dispositions, then exec."""
    try:
        if spec.get("landlock"):
            apply_landlock(int(spec["landlock"]), spec["writable"])
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


# --- `--layers`: which single namespaces this user may create ---------------------------------

def layers_report() -> dict[str, str]:
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
            unshare(flags)
            os._exit(0)
        except OSError as exc:
            os._exit(min(exc.errno or 1, 255))
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return "" if code == 0 else f"unshare({flags:#x}): {errno.errorcode.get(code, code)} {os.strerror(code)}"


if __name__ == "__main__":
    sys.exit(main())
