"""End to end, through the real CLI: `kill -9` of a run waiting for approval leaves it
`interrupted`, `workbench resume` takes it over and a second resume is refused; killing
`workbench eval` mid-candidate leaves no worker process and no temporary directory."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from workbench import control
from workbench.run_rows import read_run
from workbench.store import DB_NAME, RunStore

ROOT = Path(__file__).resolve().parents[1]


# -- kill -9 a run, see it interrupted, resume it; a second resume is refused ---------------
def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def _wait(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _pending_approval(run: Path):
    if not (run / DB_NAME).exists():
        return None
    try:
        with RunStore(run, readonly=True) as s:
            return control.pending_approvals(s)
    except sqlite3.Error:
        return None


def _owner_pid(run: Path):
    with RunStore(run, readonly=True) as s:
        return (s.owner() or {}).get("pid")


def test_kill9_shows_interrupted_resumes_and_a_second_resume_is_refused(tmp_path):
    """A run waiting for approval (so nothing is evaluated): kill -9 of the CLI alone leaves it
    `interrupted`; `workbench resume` takes it over; a concurrent second resume is refused with
    the owner named; a stop then ends the resumed session cleanly."""
    run = tmp_path / "ws" / "run"
    config = tmp_path / "approval.yaml"
    config.write_text("family: lpo\nmethod: llm\nenvs: [cartpole]\nseeds: 1\ntimesteps: 4096\n"
                      "num_envs: 4\nllm: {proposer: mutation, approval: true, generations: 2}\n")
    first = _cli("run", "--config", str(config), "--run-dir", str(run))
    resumed = None
    try:
        _wait(lambda: _pending_approval(run), 240, "the first approval request")
        assert _owner_pid(run) == first.pid
        os.kill(first.pid, signal.SIGKILL)  # the CLI only, as a crash or the OOM killer would
        first.wait()
        assert read_run(run).status == "interrupted"
        listing = subprocess.run([sys.executable, "-m", "workbench.cli", "runs", str(run.parent)],
                                 cwd=ROOT, capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "COLUMNS": "200"})
        assert "interrupted" in listing.stdout, listing.stdout + listing.stderr

        resumed = _cli("resume", str(run))
        _wait(lambda: _owner_pid(run) == resumed.pid, 240, "the resume to take the run")
        assert read_run(run).status == "running"
        second = subprocess.run([sys.executable, "-m", "workbench.cli", "resume", str(run)], cwd=ROOT,
                                capture_output=True, text=True, timeout=240)
        out = second.stdout + second.stderr
        assert second.returncode != 0, out
        assert f"PID {resumed.pid}" in out and socket.gethostname() in out, out
        assert _owner_pid(run) == resumed.pid  # the refused resume took nothing

        _wait(lambda: _pending_approval(run), 240, "the resumed run's approval request")
        with RunStore(run, readonly=True) as s:
            control.request_stop(s)
        assert resumed.wait(timeout=120) == 130, resumed.stdout.read()
        with RunStore(run, readonly=True) as s:
            assert s.run_info()["status"] == "stopped" and s.owner() is None
    finally:
        for p in (first, resumed):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


# -- end to end: killing `workbench eval` mid-candidate leaves no worker and no temp dir -----------
HANG = """
def drift(ratio, advantage, epsilon):
    # float32 stops growing at 2**24, so this loop never ends
    n = jax.lax.while_loop(lambda c: c >= 0.0, lambda c: c + 1.0, 0.0)
    return jax.nn.relu(ratio - 1) * advantage * 0 + 0 * n
"""


def _children(pid: int) -> set[int]:
    out = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def _start(pid: int) -> str | None:
    """The process's start time (clock ticks since boot): tells a PID from its reuse."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def _descendants(pid: int) -> dict[tuple[int, str], str]:
    """(pid, start time) -> command line of every live descendant."""
    found, todo = {}, [pid]
    while todo:
        for child in _children(todo.pop()):
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            start = _start(child)
            if start is not None:
                found[(child, start)] = cmd
            todo.append(child)
    return found


def _alive(proc: tuple[int, str]) -> bool:
    """The very process (same PID and start time) is alive and not a zombie."""
    pid, start = proc
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X") and fields[19] == start


def test_killing_eval_mid_candidate_leaves_no_worker_and_no_temp_dir(tmp_path):
    """SIGKILL of the `workbench eval` process alone (not its group: its workers run in their own
    sessions) while a hanging candidate is being scored: within a few seconds no process it
    started is left and the pool's private temporary directories are gone."""
    code = tmp_path / "hang.py"
    code.write_text(HANG)
    tmp = tmp_path / "tmp"  # the pool makes its private dirs here (TMPDIR), so only ours are seen
    tmp.mkdir()
    cli = subprocess.Popen([sys.executable, "-m", "workbench.cli", "eval", "--family", "lpo", "--code",
                            str(code), "--env", "cartpole", "--seeds", "1", "--timesteps", "4096",
                            "--num-envs", "4", "--time-limit", "300"], cwd=ROOT,
                           env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    seen: dict[tuple[int, str], str] = {}
    try:
        def payloads(role):  # worker processes themselves (not their jail's bootstrap)
            return [p for p, c in seen.items() if f"sandbox.worker {role}" in c and "jail" not in c]

        def job_started():  # the pool took its first pair and started their replacements
            seen.update(_descendants(cli.pid))  # in order of discovery: the first pair first
            return len(payloads("trace")) >= 2 and len(payloads("score")) >= 2
        _wait(job_started, 300, "the pool to start the candidate")
        # mid-candidate: give its tracer and scorer time to work on it (the program never ends)
        deadline = time.time() + 20
        while time.time() < deadline:
            seen.update(_descendants(cli.pid))
            time.sleep(0.2)
        assert _alive(payloads("score")[0])
        seen.update(_descendants(cli.pid))
        assert any("sandbox.worker" in c for c in seen.values())
        assert list(tmp.glob("wb-sandbox-*"))
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait()
        deadline = time.time() + 10
        while time.time() < deadline and (any(_alive(p) for p in seen) or list(tmp.glob("wb-sandbox-*"))):
            time.sleep(0.1)
        survivors = {p: seen[p][:120] for p in seen if _alive(p)}
        assert not survivors, f"processes of the killed eval survived: {survivors}"
        assert not list(tmp.glob("wb-sandbox-*")), "the pool's private dirs were left behind"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        for p in seen:
            if _alive(p):
                try:
                    os.kill(p[0], signal.SIGKILL)
                except ProcessLookupError:
                    pass
