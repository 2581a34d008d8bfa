"""Pilot tests of the TUI following runs: a writing process never freezes it, the launcher's
detached processes, reattaching to a headless run, re-sending only what changed, and a failed run's
reason and log tail.  Screens and steering flows: test_tui.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from textual.widgets import Static

from tests.test_tui_fake import fake_method, finished_workspace, make_run, text_of, until
from workbench import control
from workbench.config import build_config
from workbench.store import RunStore
from workbench.tui.app import FrameGapMeter, WorkbenchApp
from workbench.tui.screens.run_view import RunView

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ws(tmp_path):
    return finished_workspace(tmp_path)


def test_ui_never_freezes_while_a_run_writes(tmp_path):
    """While a fake method process writes candidates and progress events, the UI keeps ticking
    between updates: its 50 ms timer sees the run view go through the run's intermediate states
    one by one, instead of nothing and then everything at once.

    No wall-clock threshold here: the frame gap is measured by `bench/tui_frame_gap.py` (a real
    run, against the idle app in the same process); this test only prints it."""
    run = tmp_path / "ws" / "busy"
    make_run(run).close()
    proc = subprocess.Popen([sys.executable, "-m", "tests.test_tui_fake", str(run), "1000",
                             "--delay", "0.02"], cwd=ROOT)

    class Recording(FrameGapMeter):
        """The app's meter, also noting how many candidates the view showed at every tick."""

        def __init__(self, interval):
            super().__init__(interval)
            self.shown: list[int] = []

        def tick(self):
            super().tick()
            if isinstance(app.screen, RunView):
                self.shown.append(len(app.screen.cands))

    app = WorkbenchApp(tmp_path / "ws", poll_interval=0.5)
    app.frame_gap = meter = Recording(0.05)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_run(run)
            await until(pilot, lambda: isinstance(app.screen, RunView)
                        and len(app.screen.cands) >= 1, 30)
            await pilot.pause(0.5)  # the view's first paint (imports pygments) is not a freeze
            meter.reset()
            meter.shown.clear()
            # watch while the run writes 30 more candidates (several of the view's 0.5 s polls)
            with RunStore(run) as s:
                target = len(s.candidates()) + 30
                await until(pilot, lambda: len(s.candidates()) >= target, 60)
            gap = meter.max_gap
            with RunStore(run) as s:
                control.request_stop(s)
            await until(pilot, lambda: proc.poll() is not None, 30)
            await pilot.pause(1.2)  # the view's next polls read the last writes
            with RunStore(run) as s:
                stored = {c.id: c.outcome for c in s.candidates()}
            return gap, dict(app.screen.cands), stored
    try:
        gap, shown, stored = asyncio.run(go())
    finally:
        with RunStore(run) as s:
            control.request_stop(s)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    counts = meter.shown
    steps = [b for a, b in zip(counts, counts[1:]) if b != a]
    load = os.getloadavg()[0]
    print(f"max frame gap {gap * 1000:.0f} ms, {len(steps)} view updates over {len(counts)} ticks, "
          f"{len(shown)} candidates shown, load {load:.1f} (not asserted; see bench/tui_frame_gap.py)")
    # the run kept writing and the view followed it: candidate counts only ever grew, in at least
    # three separate updates, each seen by timer ticks on both sides (the UI was never parked on
    # the run until it was done)
    assert all(b >= a for a, b in zip(counts, counts[1:])), counts
    assert len(steps) >= 3, counts
    # once the run stopped, the view shows exactly what the store holds
    assert {cid: c.outcome for cid, c in shown.items()} == stored


def test_process_launcher_detaches_and_builds_the_cli_command(tmp_path, monkeypatch):
    from workbench.tui import launcher as launcher_mod

    # resume: a real detached process in its own session, output in the run's process.log
    bogus = tmp_path / "not-a-run"
    bogus.mkdir()
    proc = launcher_mod.ProcessLauncher._spawn(["resume", str(bogus)], bogus)
    assert os.getsid(proc.pid) != os.getsid(0)
    assert proc.wait(60) == 2
    assert "not a run directory" in (bogus / launcher_mod.LOG_NAME).read_text()
    # start: the config is written into the new run directory and passed to `run`
    calls = []
    monkeypatch.setattr(launcher_mod.ProcessLauncher, "_spawn",
                        staticmethod(lambda args, run_dir: calls.append((args, run_dir))))
    cfg = build_config({"name": "x", "envs": ["cartpole"], "workspace": str(tmp_path / "ws")})
    run_dir = launcher_mod.ProcessLauncher().start(cfg)
    (args, where), = calls
    assert where == run_dir and run_dir.parent == tmp_path / "ws"
    assert args[:2] == ["run", "--config"] and args[3:] == ["--run-dir", str(run_dir)]
    assert build_config(__import__("yaml").safe_load(Path(args[2]).read_text())) == cfg


def test_reopening_reattaches_to_a_headless_run(tmp_path):
    run = tmp_path / "ws" / "headless"
    store = make_run(run, status="running")
    t = threading.Thread(target=lambda: _quiet(fake_method, RunStore(run), n=200, delay=0.02),
                         daemon=True)
    t.start()

    async def session():
        app = WorkbenchApp(tmp_path / "ws", poll_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            rows = app.screen.rows
            assert [(r.name, r.status) for r in rows] == [("headless", "running")]
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RunView) and app.screen.cands)
            n = len(app.screen.cands)
            await until(pilot, lambda: len(app.screen.cands) > n)  # live again
            await pilot.press("q")
            await pilot.pause()
            await pilot.click("#leave")
            await pilot.pause()
    asyncio.run(session())
    asyncio.run(session())  # a second UI session finds it and follows it again
    control.request_stop(store)
    t.join(10)


def _quiet(fn, store, **kw):
    try:
        fn(store, **kw)
    except control.StopRequested:
        store.set_status("stopped")


def test_run_view_resends_only_what_changed_and_freezes_the_heap(ws, monkeypatch):
    """Every changed widget costs a repaint of the screen: events that change nothing shown do
    not touch the status line or the approvals pane.  Long-lived objects are frozen out of the
    garbage collector's scans while the app runs, and handed back when it exits."""
    import gc

    updates = []
    real_update = Static.update

    def spy(self, *args, **kw):
        if self.id in ("status", "pending-code"):
            updates.append(self.id)
        return real_update(self, *args, **kw)
    monkeypatch.setattr(Static, "update", spy)
    run = ws / "done"

    async def go():
        app = WorkbenchApp(ws, poll_interval=60)  # polls only when the test calls them
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_run(run)
            await until(pilot, lambda: isinstance(app.screen, RunView) and app.screen.cands)
            await pilot.pause(0.2)
            assert gc.get_freeze_count() > 0
            view = app.screen
            with RunStore(run) as s:
                s.emit("agent", {"note": "nothing visible changes"})
                s.emit("approval_requested", {"id": 99})  # no such request in the state table
                updates.clear()
                view.poll()
                assert updates == []
                control.request_approval(s, 2)  # now something does change
                s.emit("candidate", {"id": 2})
                view.poll()
                assert "pending-code" in updates and view._pending_id() == 2
                s.set_status("stopped")
                view.poll()
                assert "status" in updates
    asyncio.run(go())
    assert gc.get_freeze_count() == 0


def screen_text(app) -> str:
    """The current screen as plain text, line by line (what a terminal would show)."""
    import io

    from rich.console import Console

    console = Console(width=app.size.width, height=app.size.height, file=io.StringIO(),
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


def test_failed_run_shows_its_reason_and_log_tail(tmp_path):
    """A real run that fails as it starts (a distillation whose teacher file is missing), started
    by the app's own launcher as a detached `workbench.cli run` process: the run view shows the
    reason `runs.execute` stored and the last lines of the run's process.log, in the Overview."""
    from workbench.tui.launcher import LOG_NAME, ProcessLauncher
    from workbench.tui.widgets.failure import FailurePanel

    gone = tmp_path / "gone.npz"
    cfg = build_config({"name": "broken", "family": "lpo", "method": "distill",
                        "envs": ["cartpole"], "seeds": 1, "timesteps": 4096, "num_envs": 4,
                        "workspace": str(tmp_path / "ws"), "distill": {"teacher": str(gone)}})
    launcher = ProcessLauncher()

    async def go():
        app = WorkbenchApp(tmp_path / "ws", launcher=launcher, poll_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            run_dir = launcher.start(cfg)
            app.open_run(run_dir)
            await until(pilot, lambda: isinstance(app.screen, RunView)
                        and app.screen.info.get("status") == "failed", 120)
            await until(pilot, lambda: launcher.procs[0].poll() is not None, 60)
            view = app.screen
            panel = view.query_one(FailurePanel)
            # the process's last words reach the panel without any further store event
            await until(pilot, lambda: "does not exist" in text_of(app, "#failure-log"))
            reason = text_of(app, "#failure-reason")
            log = text_of(app, "#failure-log")
            shown = screen_text(app)
            return run_dir, panel.display, panel.region, reason, log, shown

    run_dir, displayed, region, reason, log, shown = asyncio.run(go())
    with RunStore(run_dir) as s:
        stored = s.get_state("failure_reason")
    assert stored.startswith("TeacherError") and str(gone) in stored
    assert reason == f"failed: {stored}"
    last = (run_dir / LOG_NAME).read_text().splitlines()[-1]
    assert f"{gone} does not exist" in last and last in log
    # on screen: the panel is shown inside the 80x24 screen, with the reason and the log's end
    assert displayed and region.height >= 3 and region.bottom <= 24
    assert "failed: TeacherError: teacher file" in shown, shown
    assert last.split()[-3:] == ["best", "network", "candidate"]
    # the log's last line (the CLI's error, wrapped), all the way to its end
    assert shown.index("error: teacher file") < shown.rindex("network candidate"), shown


def test_failure_text_and_log_tail(tmp_path):
    from workbench.tui.run_view_text import failure_reason
    from workbench.tui.widgets.failure import TAIL_BYTES, log_tail

    assert failure_reason({"status": "finished"}, "ignored") == ""
    assert failure_reason({"status": "failed"}, "") == "failed (no reason recorded; see the log)"
    owner = {"pid": 4321, "host": "box", "since": 0.0, "heartbeat": 0.0}
    text = failure_reason({"status": "interrupted", "owner": owner}, None)
    assert text.startswith("interrupted:") and "PID 4321 on box" in text and "R resumes" in text
    assert log_tail(tmp_path / "none.log") is None
    big = tmp_path / "big.log"
    big.write_text("".join(f"line {i}\n" for i in range(3 * TAIL_BYTES // 8)))
    tail = log_tail(big)
    assert len(tail) == 20 and tail[-1] == f"line {3 * TAIL_BYTES // 8 - 1}"
