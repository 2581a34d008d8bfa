"""Pilot tests of the TUI's screens and steering flows (runs list, new run, approve / edit /
reject, stop, resume, messages, pause, sort, quit, help), driven by a fake method writing to real
run stores.  Following runs (processes, reattaching, responsiveness, failures): test_tui_live.py.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from textual.widgets import DataTable, Input, RichLog

from tests.test_tui_fake import (ThreadLauncher, fake_method, finished_workspace, make_run,
                                 text_of, until)
from workbench import control
from workbench.config import ConfigError, build_config
from workbench.store import RunStore
from workbench.tui.app import WorkbenchApp
from workbench.tui.screens.modals import ConfirmModal, HelpScreen, QuitModal
from workbench.tui.screens.new_run import NewRunScreen
from workbench.tui.screens.run_view import RunView
from workbench.tui.screens.runs import RunsScreen


@pytest.fixture
def ws(tmp_path):
    return finished_workspace(tmp_path)


def test_runs_screen_lists_runs_and_deletes_with_confirmation(ws):
    async def go():
        app = WorkbenchApp(ws, launcher=ThreadLauncher())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            names = {r.name: r for r in screen.rows}
            assert set(names) == {"done", "halted"}
            assert names["done"].candidates == 5 and names["done"].best == pytest.approx(0.7)
            assert names["done"].status == "finished"
            table = screen.query_one(DataTable)
            idx = [r.name for r in screen.rows].index("halted")
            table.move_cursor(row=idx)
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmModal)
            await pilot.press("escape")
            assert (ws / "halted").exists()
            await pilot.press("d")
            await pilot.click("#yes")
            await pilot.pause()
            assert not (ws / "halted").exists()
            assert [r.name for r in app.screen.rows] == ["done"]
    asyncio.run(go())


def test_new_run_validates_like_the_cli(tmp_path):
    async def go():
        app = WorkbenchApp(tmp_path / "ws", launcher=ThreadLauncher())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            screen = app.screen
            assert isinstance(screen, NewRunScreen)
            assert "valid" in text_of(app, "#errors")
            screen.query_one("#envs", Input).value = "cartpole,notanenv"
            await pilot.pause()
            with pytest.raises(ConfigError) as cli_err:
                build_config({"envs": ["cartpole", "notanenv"]})
            shown = text_of(app, "#errors")
            assert str(cli_err.value).splitlines()[0][:60] in shown
            screen.query_one("#envs", Input).value = "cartpole"
            screen.query_one("#seeds", Input).value = "0"
            await pilot.pause()
            assert "seeds" in text_of(app, "#errors") and screen.config is None
            await pilot.press("ctrl+s")
            assert isinstance(app.screen, NewRunScreen)  # refused while invalid
            screen.query_one("#seeds", Input).value = "2"
            await pilot.pause()
            assert screen.config is not None and screen.config.seeds == 2
    asyncio.run(go())


def test_new_run_loads_a_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: fromfile\nfamily: open\nmethod: es\nenvs: [cartpole]\n"
                   "es: {popsize: 4, generations: 3}\n")
    async def go():
        app = WorkbenchApp(tmp_path / "ws", launcher=ThreadLauncher())
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            await pilot.press("ctrl+o")  # nothing to load yet: the path box takes the focus
            box = app.screen.query_one("#config_file", Input)
            assert app.focused is box and "type the path" in text_of(app, "#errors")
            await pilot.press(*str(cfg), "enter")  # typed, enter loads it
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, NewRunScreen)
            assert screen.config.name == "fromfile" and screen.config.family == "open"
            assert screen.config.es.popsize == 4  # fields not on the form are kept
            app.screen.query_one("#config_file", Input).value = str(tmp_path / "missing.yaml")
            await pilot.click("#load")
            await pilot.pause()
            assert "cannot load" in text_of(app, "#errors")
    asyncio.run(go())


def test_flow_new_run_live_approve_stop_resume(tmp_path):
    launcher = ThreadLauncher(approval=True, n=4, delay=0.02)

    async def go():
        app = WorkbenchApp(tmp_path / "ws", launcher=launcher, poll_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("n")
            app.screen.query_one("#name", Input).value = "flow"
            await pilot.pause()
            await pilot.press("ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, RunView))
            view = app.screen
            assert launcher.configs[0].name == "flow"
            # live: the first proposal arrives and waits for approval
            await until(pilot, lambda: view.query_one("#pending", DataTable).row_count == 1)
            await pilot.press("4")
            await pilot.press("a")
            await until(pilot, lambda: any(c.outcome == "ok" for c in view.cands.values()))
            # second proposal: edit it
            await until(pilot, lambda: view.query_one("#pending", DataTable).row_count == 1
                        and view._pending_id() == 2)
            await pilot.press("e")
            editor = app.screen.query_one("#editor")
            editor.text = ("def drift(ratio, advantage, epsilon):\n"
                           "    return 0.5 * (ratio - 1.0) ** 2\n")
            await pilot.press("ctrl+s")
            await until(pilot, lambda: view.cands.get(2) is not None
                        and view.cands[2].outcome == "ok")
            assert view.store.candidate(2).source.endswith("0.5 * (ratio - 1.0) ** 2\n")
            # third: stop while it waits for approval
            await until(pilot, lambda: view._pending_id() == 3)
            await pilot.press("x")
            await until(pilot, lambda: view.info.get("status") == "stopped")
            assert "stopped" in text_of(app, "#status")
            # resume: the same candidate is still pending; reject it, the run finishes
            await pilot.press("R")
            await until(pilot, lambda: view.info.get("status") == "running")
            await until(pilot, lambda: view._pending_id() == 3)
            await pilot.press("j")
            await until(pilot, lambda: view._pending_id() == 4)
            await pilot.press("a")
            await until(pilot, lambda: view.info.get("status") == "finished")
            outcomes = [view.cands[i].outcome for i in sorted(view.cands)]
            assert outcomes == ["ok", "ok", "invalid", "ok"]
            assert "rejected" in view.cands[3].reason
            # the table shows the outcome, the plot has points, the candidate tab a diff
            table = view.query_one("#cands", DataTable)
            assert table.row_count == 4
            assert view.query_one("#plot").data.series[0].points
            await pilot.press("1")
            table.move_cursor(row=table.get_row_index("2"))
            await pilot.pause()
            assert view.selected_id == 2
            assert "+    return 0.5 * (ratio - 1.0) ** 2" in view.diff_text
    asyncio.run(go())


def test_message_pause_sort_and_diff(tmp_path):
    run = tmp_path / "ws" / "live"
    store = make_run(run, status="running")
    stop = threading.Event()

    def method():
        s = RunStore(run)
        try:
            fake_method(s, n=500, delay=0.05)
        except control.StopRequested:
            s.set_status("stopped")
    t = threading.Thread(target=method, daemon=True)
    t.start()

    async def go():
        app = WorkbenchApp(tmp_path / "ws", launcher=ThreadLauncher(), poll_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_run(run)
            await until(pilot, lambda: isinstance(app.screen, RunView)
                        and len(app.screen.cands) >= 2)
            view = app.screen
            await pilot.press("m")
            await pilot.press(*"use tanh")
            await pilot.press("enter")
            log = view.query_one("#log", RichLog)
            await until(pilot, lambda: any("noted: use tanh" in str(line.text)
                                           for line in log.lines))
            assert view.query_one("#chat", Input).value == ""
            view.query_one("#cands").focus()
            await pilot.press("p")
            await until(pilot, lambda: "PAUSED" in text_of(app, "#status"))
            n = len(store.candidates())
            await pilot.pause(0.4)
            assert len(store.candidates()) <= n + 1
            await pilot.press("p")
            await until(pilot, lambda: len(store.candidates()) >= n + 2)
            view.sort_by = "id"
            await pilot.press("s")
            assert view.sort_by == "fitness"
            table = view.query_one("#cands", DataTable)
            first = int(table.coordinate_to_cell_key((0, 0)).row_key.value)
            best = max((c for c in view.cands.values() if c.fitness is not None),
                       key=lambda c: c.fitness)
            assert first == best.id
            view.show_candidate(2)
            assert "-    return 1.0 * jnp.maximum(0.0, (ratio - 1.0) * advantage)" in view.diff_text
            assert "+    return 1.1 * jnp.maximum(0.0, (ratio - 1.0) * advantage)" in view.diff_text
            await pilot.press("x")
            t.join(10)
            await until(pilot, lambda: view.info.get("status") == "stopped")
    asyncio.run(go())
    stop.set()


def test_quit_with_run_in_flight_asks_stop_or_leave(tmp_path):
    run = tmp_path / "ws" / "live"
    make_run(run, status="running").close()

    async def go(choice):
        app = WorkbenchApp(tmp_path / "ws", launcher=ThreadLauncher())
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_run(run)
            await pilot.pause()
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitModal)
            await pilot.click(f"#{choice}")
            await pilot.pause()
        return app

    app = asyncio.run(go("leave"))
    assert "headless" in app.return_value
    with RunStore(run) as s:
        assert not control.stop_requested(s)
    app = asyncio.run(go("stop"))
    with RunStore(run) as s:
        assert control.stop_requested(s)


def test_quit_without_runs_exits_at_once(ws):
    async def go():
        app = WorkbenchApp(ws)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("q")
            await pilot.pause()
            assert not isinstance(app.screen, QuitModal)
        return app
    app = asyncio.run(go())
    assert app.return_value is None


def test_help_theme_and_command_palette(ws):
    async def go():
        app = WorkbenchApp(ws)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)
            assert app.current_theme.dark
            await pilot.press("t")
            assert not app.current_theme.dark
            await pilot.press("ctrl+p")
            await pilot.pause()
            assert type(app.screen).__name__ == "CommandPalette"
            await pilot.press(*"New run")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert isinstance(app.screen, NewRunScreen)
    asyncio.run(go())


def test_status_line_says_which_best_fitness_and_over_how_many_seeds(ws):
    """Search fitness (the run's seeds) until finalists have held-out re-scores, then the best of
    those (their own seed count); the run view's status line shows it."""
    from workbench.agent.finalists import HELDOUT
    from workbench.tui.run_view_text import best_label

    run = ws / "done"
    with RunStore(run) as s:
        rows = s.candidates()
        assert best_label(rows, 2) == "best 0.700 (search, 2 seeds)"
        assert best_label(rows[:1], 1) == "best 0.500 (search, 1 seed)"
        assert best_label([], 2) == "best -"
        s.merge_info(rows[1].id, {HELDOUT: {"fitness": 0.61, "seeds": 8, "seed": 1_000_003}})
        s.merge_info(rows[3].id, {HELDOUT: {"fitness": None, "seeds": 8, "outcome": "crashed"}})
        s.emit("heldout", {"id": rows[1].id})

    async def go():
        app = WorkbenchApp(ws)
        async with app.run_test(size=(120, 24)) as pilot:
            app.open_run(run)
            await until(pilot, lambda: isinstance(app.screen, RunView) and app.screen.cands)
            await pilot.pause(0.1)
            return text_of(app, "#status")
    assert "best 0.610 (held-out, 8 seeds)" in asyncio.run(go())

