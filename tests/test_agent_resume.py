"""Resuming the agent: after kill -9 in the middle of an evaluation nothing recorded is lost and
only that candidate is redone; after a stop, and after finishing with a budget that is then raised."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workbench import control
from workbench.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
# one candidate in flight: these tests pin down the serial loop's resume (the concurrent one is
# tests/test_async_discovery.py)
SETTINGS = ["--set", "llm.generations=4", "--set", "timesteps=8192", "--set", "seeds=1",
            "--set", "sandbox.time_limit_s=60", "--set", "sandbox.concurrency=1"]


def _cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, **kw)


def test_sigkill_mid_evaluation_then_resume(tmp_path):
    run_dir = tmp_path / "run"
    proc = _cli("run", "--config", "configs/quickstart.yaml", "--run-dir", str(run_dir), *SETTINGS)
    victim = None
    deadline = time.time() + 240
    try:
        while time.time() < deadline and victim is None:
            time.sleep(0.2)
            if not (run_dir / "run.sqlite").exists():
                continue
            store = RunStore(run_dir)
            evs = [e for e in store.events() if e["kind"] == "evaluating"]
            if len(evs) >= 2 and store.candidate(evs[-1]["payload"]["id"]).outcome == "pending":
                victim = evs[-1]["payload"]["id"]
            store.close()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its sandbox workers, all at once
        proc.wait()
    assert victim is not None, "never caught a candidate in evaluation"
    store = RunStore(run_dir)
    before = {r.id: (r.outcome, r.fitness) for r in store.candidates()}
    assert before[victim][0] == "pending"
    assert before[1][0] == "ok"  # the warm start was recorded before the kill
    store.close()

    assert _cli("resume", str(run_dir)).wait(timeout=300) == 0
    store = RunStore(run_dir)
    rows = store.candidates()
    assert len(rows) == 4 and all(r.outcome != "pending" for r in rows)
    for cid, (outcome, fitness) in before.items():
        if cid != victim:
            assert (store.candidate(cid).outcome, store.candidate(cid).fitness) == (outcome, fitness)
    # the victim was evaluated exactly once after the resume; nothing else twice
    evaluating = [e["payload"]["id"] for e in store.events() if e["kind"] == "evaluating"]
    assert evaluating.count(victim) == 2
    assert all(evaluating.count(c) == 1 for c in set(evaluating) - {victim})
    assert (run_dir / "agent.sqlite").exists()
    assert store.run_info()["status"] == "finished"


def test_stop_control_and_resume_with_more_budget(tmp_path):
    """A stop before anything is proposed; a resume clears it and runs to the budget; a resume of
    the finished run with a larger budget adds generations and leaves the earlier ones as they were."""
    run_dir = tmp_path / "run"
    from workbench.config import build_config
    from workbench.runs import create_run, execute, open_run

    cfg = build_config({"family": "lpo", "method": "llm", "envs": ["cartpole"], "seeds": 1,
                        "timesteps": 4096, "num_envs": 4,
                        "llm": {"proposer": "mutation", "generations": 2},
                        "sandbox": {"time_limit_s": 60}})
    store = create_run(cfg, run_dir)
    control.request_stop(store)  # stop before anything is proposed
    assert execute(cfg, store) == "stopped" and not store.candidates()
    # resume clears the stale stop and runs to the budget; messages hold the feedback
    assert execute(cfg, store) == "finished"
    before = [(r.id, r.generation, r.source, r.outcome, r.fitness) for r in store.candidates()]
    assert len(before) == 2 and all(outcome != "pending" for *_, outcome, _ in before)
    assert sum(m["role"] == "feedback" for m in store.messages()) == 2
    store.close()

    # the finished run, resumed as `workbench resume --set llm.generations=4` does
    more, store = open_run(run_dir, ["llm.generations=4"])
    assert more.llm.generations == 4
    assert execute(more, store) == "finished"
    rows = store.candidates()
    after = [(r.id, r.generation, r.source, r.outcome, r.fitness) for r in rows]
    assert len(after) == 4 and after[:2] == before  # two more; the first two untouched
    assert [r.generation for r in rows[2:]] == [2, 3] and all(r.outcome != "pending" for r in rows)
    assert sum(m["role"] == "feedback" for m in store.messages()) == 4
    assert store.run_info()["status"] == "finished"
    store.close()
