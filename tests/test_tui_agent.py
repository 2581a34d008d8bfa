"""Pilot test of the TUI driving the REAL discovery agent (mutation proposer, tiny LPO run) in
approval mode, started and resumed as detached `python -m workbench.cli` processes exactly as the
app does it: approve → scored → stop while the next candidate awaits approval → resume → the same
candidate is awaited again → reject → the run finishes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from textual.widgets import DataTable, Input

from tests.tiny_runs import write_tiny_llm_config
from workbench import control
from workbench.store import RunStore
from workbench.tui.app import WorkbenchApp
from workbench.tui.launcher import ProcessLauncher
from workbench.tui.screens.new_run import NewRunScreen
from workbench.tui.screens.run_view import RunView




async def until(pilot, pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        await pilot.pause(0.2)
        if pred():
            return
    raise AssertionError(f"{what}: not reached within {timeout:.0f} s")


def log_of(run_dir: Path) -> str:
    path = run_dir / "process.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no process.log)"


def test_real_agent_approve_stop_while_awaiting_resume(tmp_path):
    cfg = tmp_path / "approve.yaml"
    write_tiny_llm_config(cfg, "approve", 2, approval=True)
    launcher = ProcessLauncher()
    app = WorkbenchApp(tmp_path / "ws", launcher=launcher, poll_interval=0.2)
    state = {}

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("n")
            app.screen.query_one("#config_file", Input).value = str(cfg)
            await pilot.click("#load")
            await until(pilot, lambda: isinstance(app.screen, NewRunScreen)
                        and app.screen.config is not None
                        and app.screen.config.llm.approval, 10, "config loaded")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, RunView), 10, "run view")
            view = app.screen
            run_dir = state["run_dir"] = view.run_dir
            where = lambda: log_of(run_dir)  # noqa: E731
            # 1. the warm start waits for approval; approve it in the Approvals tab
            await until(pilot, lambda: view._pending_id() == 1, 120,
                        f"candidate 1 awaiting approval\n{where()}")
            assert "Approvals (1)" in str(view.query_one("#tabs").get_tab("approvals").label)
            await pilot.press("4")
            await pilot.press("a")
            # 2. it is evaluated and appears scored in the candidate table
            await until(pilot, lambda: view.cands.get(1) is not None
                        and view.cands[1].outcome == "ok", 240, f"candidate 1 scored\n{where()}")
            row = view.query_one("#cands", DataTable).get_row("1")
            assert str(row[3]) == "ok" and row[4] == f"{view.cands[1].fitness:.3f}"
            # 3. the next proposal waits; stop the run while it waits
            await until(pilot, lambda: view._pending_id() == 2, 120,
                        f"candidate 2 awaiting approval\n{where()}")
            await pilot.press("x")
            await until(pilot, lambda: view.info.get("status") == "stopped", 60,
                        f"stopped\n{where()}")
            # the process exited by itself (stopped, not hung) and nothing was lost
            assert launcher.procs[0].wait(30) == 130, where()
            with RunStore(run_dir) as s:
                assert [c.outcome for c in s.candidates()] == ["ok", "pending"]
                assert control.pending_approvals(s) == [2]
                mark = s.events(0, limit=100_000)[-1]["id"]
            assert "stopped" in str(view.query_one("#status").render())
            # 4. resume: the agent waits for the same candidate again, proposes nothing new
            await pilot.press("R")
            await until(pilot, lambda: view.info.get("status") == "running", 30, "resumed")

            def awaited_again():
                with RunStore(run_dir) as s:
                    return any(e["kind"] == "approval" and e["payload"].get("id") == 2
                               for e in s.events(mark, limit=100_000))
            await until(pilot, awaited_again, 120, f"candidate 2 awaited again\n{where()}")
            assert view._pending_id() == 2
            with RunStore(run_dir) as s:
                assert len(s.candidates()) == 2 and s.candidate(2).outcome == "pending"
            # 5. reject it: the budget (2 candidates) is spent, the run finishes
            await pilot.press("j")
            await until(pilot, lambda: view.info.get("status") == "finished", 60,
                        f"finished\n{where()}")
            assert launcher.procs[1].wait(30) == 0, where()
            assert view.cands[2].outcome == "invalid"

    try:
        asyncio.run(go())
    finally:  # a failed wait must not leave a run behind, awaiting an approval forever
        for proc in launcher.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
    with RunStore(state["run_dir"]) as s:
        assert [c.outcome for c in s.candidates()] == ["ok", "invalid"]
        assert s.run_info()["status"] == "finished"
