"""Snapshot tests (pytest-textual-snapshot) of the main screens at 80x24, with fixed data and times.

Update after an intended visual change with `python -m pytest tests/test_tui_snapshots.py
--snapshot-update` and review the SVGs in tests/__snapshots__/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_tui_fake import fake_method, make_run
from workbench import control
from workbench.store import RunStore
from workbench.tui.app import WorkbenchApp

T0 = 1_764_000_000.0  # fixed "now" and creation times so ages never change


def build_workspace(root: Path) -> Path:
    ws = root / "ws"
    done = make_run(ws / "lpo-llm-demo", status="running")
    fake_method(done, n=6, delay=0)
    done.add_message("user", "prefer smooth clipping")
    done.set_status("finished")
    halted = make_run(ws / "open-es-halted", method="es", status="stopped")
    pend = make_run(ws / "lpo-llm-approval", status="running", approval=True)
    cid = pend.add_candidate(method="mutation", kind="code", label="tanh clip",
                             source="def drift(r, A):\n    return jnp.tanh(r - 1.0) * A\n")
    control.request_approval(pend, cid)
    for age_h, store in ((30, done), (5, halted), (0.5, pend)):
        store._exec("UPDATE run SET created = ?, updated = ?", (T0 - age_h * 3600, T0))
        store.close()
    return ws


FAILED_LOG = """run directory: failed/lpo-llm-broken
Traceback (most recent call last):
  File "workbench/agent/graph.py", line 212, in propose
    reply = self.proposer.propose(prompt)
  File "workbench/proposers/llm.py", line 148, in propose
    raise ProposerError(f"the model server at {base} stopped answering")
workbench.errors.ProposerError: the model server at http://127.0.0.1:8000/v1 stopped answering
error: the model server at http://127.0.0.1:8000/v1 stopped answering (after 3 retries)
fix: start the server again, then `workbench resume failed/lpo-llm-broken`
"""


def build_failed_run(root: Path) -> Path:
    """A run that failed after three candidates, with its reason and a process.log, as
    `runs.execute` and the launcher leave them; in `failed/`, beside the workspace, so that the
    runs list (and its snapshots) stay as they are."""
    from workbench.tui.launcher import LOG_NAME

    run = root / "failed" / "lpo-llm-broken"
    store = make_run(run, status="running")
    fake_method(store, n=3, delay=0)
    store.set_state("failure_reason", "ProposerError: the model server at "
                    "http://127.0.0.1:8000/v1 stopped answering (after 3 retries)")
    store.set_status("failed")
    store._exec("UPDATE run SET created = ?, updated = ?", (T0 - 3600, T0))
    store.close()
    (run / LOG_NAME).write_text(FAILED_LOG)
    return run


@pytest.fixture
def ws(tmp_path, monkeypatch):
    build_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)  # the banner shows the workspace as given: "ws"
    return Path("ws")


def app_for(ws: Path, theme: str = "textual-dark") -> WorkbenchApp:
    return WorkbenchApp(ws, clock=lambda: T0, theme=theme)


def test_snapshot_runs(ws, snap_compare):
    assert snap_compare(app_for(ws), terminal_size=(80, 24))


def test_snapshot_runs_light(ws, snap_compare):
    assert snap_compare(app_for(ws, "textual-light"), terminal_size=(80, 24))


async def _open(pilot, name: str, tab: str | None = None) -> None:
    pilot.app.open_run(Path("ws") / name)
    await pilot.pause(0.2)
    if tab:
        await pilot.press(tab)
        await pilot.pause(0.2)


def test_snapshot_run_view(ws, snap_compare):
    assert snap_compare(app_for(ws), terminal_size=(80, 24),
                        run_before=lambda p: _open(p, "lpo-llm-demo"))


def test_snapshot_run_view_failed(ws, snap_compare):
    run = build_failed_run(Path("."))

    async def before(pilot):
        pilot.app.open_run(run)
        await pilot.pause(0.2)
    assert snap_compare(app_for(ws), terminal_size=(80, 24), run_before=before)


def test_snapshot_candidate(ws, snap_compare):
    async def before(pilot):
        await _open(pilot, "lpo-llm-demo")
        view = pilot.app.screen
        view.selected_id = 5
        view.show_candidate(5)
        await pilot.press("2")
        await pilot.pause(0.2)
    assert snap_compare(app_for(ws), terminal_size=(80, 24), run_before=before)


def test_snapshot_conversation(ws, snap_compare):
    assert snap_compare(app_for(ws), terminal_size=(80, 24),
                        run_before=lambda p: _open(p, "lpo-llm-demo", "3"))


def test_snapshot_approvals(ws, snap_compare):
    assert snap_compare(app_for(ws), terminal_size=(80, 24),
                        run_before=lambda p: _open(p, "lpo-llm-approval", "4"))


def test_snapshot_new_run_with_error(ws, snap_compare):
    async def before(pilot):
        await pilot.press("n")
        await pilot.pause(0.1)
        pilot.app.screen.query_one("#envs").value = "cartpole,pong"
        await pilot.pause(0.2)
    assert snap_compare(app_for(ws), terminal_size=(80, 24), run_before=before)


def test_snapshot_help(ws, snap_compare):
    assert snap_compare(app_for(ws), terminal_size=(80, 24), press=["question_mark"])
