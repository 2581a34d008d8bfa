"""Crash recovery and ownership: the run lease, `interrupted` runs, read-only readers, the store's
schema version, the transactional inbox, the idempotent `propose` step and the TUI's one-key resume.

None of these evaluates anything; the end-to-end kills (`kill -9` of a run, then resume; of
`workbench eval` mid-candidate) are in test_run_resume_kill.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_tui_fake import make_run
from workbench import control
from workbench.errors import WorkbenchError
from workbench.lease import RunOwned, lease_held
from workbench.run_rows import read_run
from workbench.store import DB_NAME, SCHEMA_VERSION, RunStore, StoreVersionError
from workbench.summary import runs_table

ROOT = Path(__file__).resolve().parents[1]

# A child process that takes the run's lease and dies without releasing it (as after kill -9).
TAKE_AND_DIE = ("import os, sys; from workbench.store import RunStore; s = RunStore(sys.argv[1]); "
                "s.acquire_lease(); s.set_status('running'); print('owned', os.getpid(), flush=True); {end}")


def _dead_owner(run_dir: Path) -> int:
    """Leave `run_dir` as `kill -9` leaves it: status running, lease of a process now gone."""
    proc = subprocess.run([sys.executable, "-c", TAKE_AND_DIE.format(end="os._exit(0)"), str(run_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "owned" in proc.stdout, proc.stderr
    return int(proc.stdout.split()[1])


# -- the lease ---------------------------------------------------------------------------------
def test_a_second_owner_is_refused_naming_the_first(tmp_path):
    first = make_run(tmp_path / "run", status="running")
    first.acquire_lease()
    second = RunStore(tmp_path / "run")
    with pytest.raises(RunOwned) as err:
        second.acquire_lease()
    assert isinstance(err.value, WorkbenchError) and err.value.fix
    msg = str(err.value)
    assert f"PID {os.getpid()}" in msg and socket.gethostname() in msg and "since" in msg
    assert "\n" not in msg  # one line
    assert second.run_info()["status"] == "running"  # a live owner: not interrupted
    first.release_lease()
    second.acquire_lease()  # released on a clean exit: free again
    assert second.owner()["token"] == second._lease_token


def test_racing_acquires_have_exactly_one_winner(tmp_path):
    make_run(tmp_path / "run").close()
    stores = [RunStore(tmp_path / "run") for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    won, refused = [], []

    def race(s):
        barrier.wait()
        try:
            s.acquire_lease()
            won.append(s)
        except RunOwned:
            refused.append(s)

    threads = [threading.Thread(target=race, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(won) == 1 and len(refused) == len(stores) - 1


def test_dead_owner_shows_interrupted_and_can_be_taken_over(tmp_path):
    run = tmp_path / "ws" / "run"
    make_run(run).close()
    pid = _dead_owner(run)
    with RunStore(run, readonly=True) as reader:
        info = reader.run_info()
        assert info["stored_status"] == "running" and info["status"] == "interrupted"
        assert info["owner"]["pid"] == pid and not lease_held(info["owner"])
    assert read_run(run).status == "interrupted"
    from rich.console import Console
    console = Console(record=True, width=200)
    console.print(runs_table([run]))
    assert "interrupted" in console.export_text()
    taker = RunStore(run)
    taker.acquire_lease()  # the dead owner does not hold it
    assert taker.run_info()["status"] == "running"


def test_unreaped_killed_owner_is_not_alive(tmp_path):
    """A run killed by SIGKILL whose parent (e.g. the TUI's launcher) has not reaped it yet is a
    zombie: its PID still exists, but it owns nothing."""
    run = tmp_path / "run"
    make_run(run).close()
    proc = subprocess.Popen([sys.executable, "-c", TAKE_AND_DIE.format(end="import time; time.sleep(600)"),
                             str(run)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().split()[0] == "owned"
        with RunStore(run, readonly=True) as reader:
            assert reader.run_info()["status"] == "running"
            os.kill(proc.pid, signal.SIGKILL)
            deadline = time.time() + 10
            while reader.run_info()["status"] != "interrupted" and time.time() < deadline:
                time.sleep(0.05)
            assert reader.run_info()["status"] == "interrupted"
            assert Path(f"/proc/{proc.pid}").exists()  # still a zombie
    finally:
        proc.kill()
        proc.wait()


def test_another_hosts_lease_is_held_until_its_heartbeat_is_stale(tmp_path):
    store = make_run(tmp_path / "run", status="running")
    now = time.time()
    store._conn.execute("INSERT INTO owner VALUES (1, 't', 'elsewhere', 1, '', '', ?, ?)", (now, now))
    assert store.run_info()["status"] == "running"
    with pytest.raises(RunOwned, match="PID 1 on elsewhere"):
        store.acquire_lease()
    store._conn.execute("UPDATE owner SET heartbeat = ?", (now - 60,))
    assert store.run_info()["status"] == "interrupted"
    store.acquire_lease()


def test_execute_holds_the_lease_with_a_heartbeat_and_releases_it(tmp_path, monkeypatch):
    from workbench import runs

    monkeypatch.setattr(runs, "HEARTBEAT_S", 0.05)
    store = make_run(tmp_path / "run")
    seen = {}

    class Method:
        @staticmethod
        def run(config, s):
            first = s.owner()["heartbeat"]
            time.sleep(0.5)
            seen["owner"] = s.owner()
            seen["beat"] = s.owner()["heartbeat"] > first
            with pytest.raises(RunOwned):
                RunStore(s.run_dir).acquire_lease()

    monkeypatch.setattr(runs, "get_method", lambda name: Method)
    from workbench.config import build_config
    cfg = build_config(store.run_info()["config"])
    assert runs.execute(cfg, store) == "finished"
    assert seen["owner"]["pid"] == os.getpid() and seen["beat"]
    assert store.owner() is None  # released on the clean exit


# -- readers and the schema --------------------------------------------------------------------
def test_readers_are_read_only_and_steer_through_a_short_writer(tmp_path):
    store = make_run(tmp_path / "run", status="running")
    reader = RunStore(tmp_path / "run", readonly=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.set_state("x", 1)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.emit("x")
    before = len(store.events())
    mid = control.inject_message(reader, "hello")  # the TUI's chat box, on its read-only store
    control.request_pause(reader)
    assert control.is_paused(store) and control.take_messages(store) == ["hello"]
    assert store.messages()[-1]["id"] == mid and len(store.events()) > before
    with pytest.raises(FileNotFoundError):
        RunStore(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()  # a reader creates nothing


def test_schema_version_is_checked_and_v1_is_migrated(tmp_path):
    run = tmp_path / "run"
    make_run(run).close()
    raw = sqlite3.connect(run / DB_NAME, isolation_level=None)
    raw.execute("DROP TABLE owner")
    raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with RunStore(run, readonly=True) as old:  # readers read a v1 store as it is
        assert old.schema_version == 1 and old.owner() is None and old.run_info()["name"] == "fake"
    with RunStore(run) as migrated:  # the first writer migrates it
        assert migrated.schema_version == SCHEMA_VERSION
        migrated.acquire_lease()
        migrated.release_lease()
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    for readonly in (True, False):
        with pytest.raises(StoreVersionError, match="newer workbench") as err:
            RunStore(run, readonly=readonly)
        assert "upgrade" in err.value.fix
    raw.execute("UPDATE meta SET value = 'x' WHERE key = 'schema_version'")
    with pytest.raises(StoreVersionError, match="cannot be migrated"):
        RunStore(run)
    raw.close()


# -- the inbox -----------------------------------------------------------------------------------
def test_a_message_sent_while_the_agent_reads_its_inbox_is_not_lost(tmp_path):
    store = make_run(tmp_path / "run", status="running")
    n = 150
    sent = [f"message {i}" for i in range(n)]

    def user():  # the TUI: its own connection, writing while the agent takes
        ui = RunStore(tmp_path / "run", readonly=True)
        for text in sent:
            control.inject_message(ui, text)
        ui.close()

    t = threading.Thread(target=user)
    t.start()
    got = []
    while t.is_alive():
        got += control.take_messages(store)
    t.join()
    got += control.take_messages(store)
    assert got == sent


def test_keyed_take_survives_a_rerun_of_the_step(tmp_path):
    store = make_run(tmp_path / "run")
    control.inject_message(store, "first")
    assert control.take_messages(store, "step.7") == ["first"]
    # the step was killed before its checkpoint: re-run, it sees the same message, plus a new one
    control.inject_message(store, "second")
    assert control.take_messages(store, "step.7") == ["first", "second"]
    assert control.take_messages(store) == []


# -- propose: a kill between the model's reply and the checkpoint pays once ----------------------
class _PaidSource:
    method = "llm"

    def __init__(self):
        self.calls = 0

    def propose(self, store, generation, inbox):
        from workbench.proposers import Proposal

        self.calls += 1
        return Proposal(name=f"p{generation}", thought="t", operator="fake-model",
                        code="def drift(ratio, advantage, epsilon):\n    return 0.0 * ratio\n",
                        usage={"cost_usd": 0.25, "prompt_tokens": 10.0})


def _propose_node(tmp_path, monkeypatch):
    from workbench.agent import graph
    from workbench.config import build_config

    cfg = build_config({"family": "lpo", "method": "llm", "envs": ["cartpole"],
                        "llm": {"proposer": "mutation", "generations": 5}})
    store = make_run(tmp_path / "run", status="running")
    source = _PaidSource()
    monkeypatch.setattr(graph, "make_source", lambda config, family: source)
    node = graph.build_graph(cfg, store, pool=None).nodes["propose"].runnable
    return store, source, node


def test_kill_after_the_reply_before_the_row_pays_once(tmp_path, monkeypatch):
    store, source, node = _propose_node(tmp_path, monkeypatch)
    real = RunStore.add_candidate

    def killed(*a, **k):
        raise KeyboardInterrupt("kill -9 right after the model replied")

    monkeypatch.setattr(RunStore, "add_candidate", killed)
    with pytest.raises(KeyboardInterrupt):
        node.invoke({"generation": 3})
    assert store.run_info()["cost_usd"] == pytest.approx(0.25) and not store.candidates()
    monkeypatch.setattr(RunStore, "add_candidate", real)
    out = node.invoke({"generation": 3})  # the resumed graph re-runs `propose`
    assert source.calls == 1  # the recorded reply was reused: not asked, not paid again
    rows = store.candidates()
    assert len(rows) == 1 and out["pending"] == rows[0].id and rows[0].generation == 3
    assert store.run_info()["cost_usd"] == pytest.approx(0.25)


def test_kill_after_the_row_before_the_checkpoint_reuses_the_row(tmp_path, monkeypatch):
    store, source, node = _propose_node(tmp_path, monkeypatch)
    first = node.invoke({"generation": 0})
    again = node.invoke({"generation": 0})  # the node had returned; its checkpoint was lost
    assert first == again and source.calls == 1
    rows = store.candidates()
    assert len(rows) == 1 and rows[0].outcome == "pending" and rows[0].info["usage"]["cost_usd"] == 0.25
    assert store.run_info()["cost_usd"] == pytest.approx(0.25)
    assert sum(m["role"] == "assistant" for m in store.messages()) == 1
    node.invoke({"generation": 1})  # the next generation asks again
    assert source.calls == 2 and store.run_info()["cost_usd"] == pytest.approx(0.5)


# -- the TUI's runs screen resumes an interrupted run with one key ---------------------------------
def test_runs_screen_resumes_an_interrupted_run_with_one_key(tmp_path):
    from textual.widgets import DataTable

    from workbench.tui.app import WorkbenchApp

    ws = tmp_path / "ws"
    make_run(ws / "killed").close()
    _dead_owner(ws / "killed")

    class Launcher:
        resumed: list[Path] = []

        def start(self, config):
            raise AssertionError("nothing to start")

        def resume(self, run_dir):
            self.resumed.append(Path(run_dir))

    launcher = Launcher()

    async def go():
        app = WorkbenchApp(ws, launcher=launcher)
        async with app.run_test(size=(100, 24)) as pilot:
            await pilot.pause()
            [row] = app.screen.rows
            assert row.status == "interrupted"
            assert "interrupted" in str(app.screen.query_one(DataTable).get_row_at(0)[3])
            await pilot.press("r")
            await pilot.pause()
            assert launcher.resumed == [ws / "killed"]
    asyncio.run(go())
