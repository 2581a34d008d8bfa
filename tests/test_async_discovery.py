"""Discovery with two candidates in flight, through the real CLI and sandbox: evaluations overlap
in time, each candidate is recorded once, and a `kill -9` with two in flight loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.store import DB_NAME, RunStore

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ("family: lpo\nmethod: llm\nenvs: [cartpole]\nseeds: 1\ntimesteps: 4096\nnum_envs: 4\n"
          "llm: {proposer: mutation, generations: 5, final_top_k: 0}\n"
          "sandbox: {concurrency: 2, time_limit_s: 300}\n")


def _in_flight(run: Path) -> list[int]:
    """Candidates whose evaluation has started and is not recorded yet."""
    if not (run / DB_NAME).exists():
        return []
    try:
        with RunStore(run, readonly=True) as s:
            started = {e["payload"]["id"] for e in s.events() if e["kind"] == "evaluating"}
            return sorted(c.id for c in s.candidates() if c.id in started and c.outcome == "pending")
    except sqlite3.Error:
        return []


@pytest.mark.slow
def test_two_in_flight_overlap_are_scored_once_and_survive_kill9(tmp_path):
    run, config = tmp_path / "ws" / "run", tmp_path / "async.yaml"
    config.write_text(CONFIG)
    cli = [sys.executable, "-m", "workbench.cli"]
    first = subprocess.Popen([*cli, "run", "--config", str(config), "--run-dir", str(run)],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deadline = time.time() + 300
        while len(flying := _in_flight(run)) < 2:
            assert first.poll() is None and time.time() < deadline, "never two in flight"
            time.sleep(0.2)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    done = subprocess.run([*cli, "resume", str(run)], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    with RunStore(run, readonly=True) as s:
        rows = s.candidates()
        assert (s.run_info() or {}).get("status") == "finished"
        assert len(rows) == 5 and all(c.outcome != "pending" for c in rows)
        scored = [c for c in rows if "timings" in c.info]
        outcomes = [e["payload"]["id"] for e in s.events(limit=100_000) if e["kind"] == "outcome"]
        assert sorted(outcomes) == [c.id for c in rows]  # each outcome recorded exactly once
        for c in scored:  # ... and each trained program's evaluation rows once
            trained = [e for e in s.evaluations(c.id) if e["split"] == "train"]
            assert len(trained) == (1 if c.outcome == "ok" else 0), (c.id, c.outcome)
        feedback = [m for m in s.messages() if m["role"] == "feedback"]
        assert len(feedback) == 5
        for cid in flying:  # killed mid-evaluation: evaluated again after the resume, once
            assert s.candidate(cid).outcome != "pending" and "timings" in s.candidate(cid).info
        spans = sorted((c.info["timings"]["started_at"], c.info["timings"]["ended_at"])
                       for c in scored)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans  # two evaluations overlapped
