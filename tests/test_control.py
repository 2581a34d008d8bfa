"""The steering protocol of workbench/control.py against a fake method in a thread and a process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_tui_fake import fake_method, make_run
from workbench import control
from workbench.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def _wait(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _thread(store, **kw):
    box = {}

    def target():
        try:
            fake_method(store, **kw)
            box["end"] = "finished"
        except control.StopRequested:
            box["end"] = "stopped"
    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def test_checkpoint_returns_when_nothing_requested(tmp_path):
    store = make_run(tmp_path / "r")
    t0 = time.monotonic()
    control.checkpoint(store)
    assert time.monotonic() - t0 < 0.1


def test_pause_blocks_and_resume_continues(tmp_path):
    store = make_run(tmp_path / "r")
    control.request_pause(store)
    t, box = _thread(RunStore(store.run_dir), n=3, delay=0)
    time.sleep(0.3)
    assert store.candidates() == [] and t.is_alive()
    assert control.is_paused(store)
    control.request_resume(store)
    t.join(5)
    assert box["end"] == "finished" and len(store.candidates()) == 3
    kinds = [e["payload"] for e in store.events() if e["kind"] == "control"]
    assert {"honoured": "pause"} in kinds and {"honoured": "resume"} in kinds


def test_stop_is_one_shot_and_run_resumes(tmp_path):
    store = make_run(tmp_path / "r")
    t, box = _thread(RunStore(store.run_dir), n=50, delay=0.01)
    assert _wait(lambda: len(store.candidates()) >= 2)
    control.request_stop(store)
    t.join(5)
    assert box["end"] == "stopped"
    n = len(store.candidates())
    assert n < 50 and not control.stop_requested(store)
    t, box = _thread(RunStore(store.run_dir), n=n + 2, delay=0)
    t.join(5)
    assert box["end"] == "finished" and len(store.candidates()) == n + 2


def test_injected_messages_reach_the_method_once(tmp_path):
    store = make_run(tmp_path / "r")
    with pytest.raises(ValueError, match="empty"):
        control.inject_message(store, "   ")
    control.inject_message(store, "try a smaller clip")
    control.inject_message(store, "and use tanh")
    assert control.take_messages(store) == ["try a smaller clip", "and use tanh"]
    assert control.take_messages(store) == []
    assert [m["role"] for m in store.messages()] == ["user", "user"]


def test_approval_approve_edit_reject(tmp_path):
    store = make_run(tmp_path / "r")
    t, box = _thread(RunStore(store.run_dir), n=3, approval=True, delay=0)
    for decision in ("approve", "edit", "reject"):
        assert _wait(lambda: control.pending_approvals(store) != [])
        (cid,) = control.pending_approvals(store)
        if decision == "edit":
            with pytest.raises(ValueError, match="edited source"):
                control.decide(store, cid, "edit")
            control.decide(store, cid, "edit", edited_source="def drift(r, A):\n    return 0*A\n")
        else:
            control.decide(store, cid, decision)
        with pytest.raises(ValueError, match="already decided"):
            control.decide(store, cid, "approve")
    t.join(5)
    assert box["end"] == "finished"
    cands = store.candidates()
    assert cands[1].source.endswith("return 0*A\n")
    assert cands[2].outcome == "invalid" and "rejected" in cands[2].reason
    with pytest.raises(KeyError):
        control.decide(store, 999, "approve")
    with pytest.raises(ValueError, match="one of"):
        control.decide(store, cands[0].id, "maybe")


def test_stop_while_waiting_for_approval(tmp_path):
    store = make_run(tmp_path / "r")
    t, box = _thread(RunStore(store.run_dir), n=3, approval=True, delay=0)
    assert _wait(lambda: control.pending_approvals(store) != [])
    control.request_stop(store)
    t.join(5)
    assert box["end"] == "stopped"
    assert control.pending_approvals(store) == [1]  # still pending after a resume


def test_fake_method_process_is_steered_through_the_store(tmp_path):
    run = tmp_path / "r"
    make_run(run).close()
    proc = subprocess.Popen([sys.executable, "-m", "tests.test_tui_fake", str(run), "40",
                             "--delay", "0.02"], cwd=ROOT)
    store = RunStore(run)
    try:
        assert _wait(lambda: len(store.candidates()) >= 1, 30)
        control.inject_message(store, "hello from the test")
        assert _wait(lambda: any(m["content"] == "noted: hello from the test"
                                 for m in store.messages()), 10)
        control.request_stop(store)
        assert proc.wait(10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert store.run_info()["status"] == "stopped"
