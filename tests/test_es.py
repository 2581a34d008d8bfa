"""ES: ask/tell maths, a real end-to-end run, and kill -9 + resume ending bit-identical."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from workbench.methods.es import load_checkpoint
from workbench.methods.open_es import OpenES, centred_ranks
from workbench.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "timesteps=2048", "--set", "es.popsize=4", "--set", "es.rollouts=1", "--set", "seeds=1",
        "--set", "test_envs=[]", "--set", "es.save_every=1"]


def test_centred_ranks_and_antithetic_sampling():
    np.testing.assert_allclose(centred_ranks(np.array([3.0, -1.0, 7.0])), [0.0, -0.5, 0.5])
    es = OpenES(popsize=6)
    state = es.init(np.zeros(5, np.float32), sigma=0.1, lr=0.05, seed=0)
    pop, noise, state2, _ = es.ask(state)
    np.testing.assert_allclose(noise[:3], -noise[3:])
    np.testing.assert_allclose(pop, 0.1 * noise, rtol=1e-6)
    with pytest.raises(ValueError, match="even"):
        OpenES(popsize=5)


def test_es_climbs_a_simple_objective():
    es = OpenES(popsize=16, sigma_limit=0.01, lr_limit=0.001)
    state = es.init(np.zeros(3, np.float32), sigma=0.1, lr=0.05, seed=1)
    target = np.array([0.5, -0.3, 0.2], np.float32)
    for _ in range(150):
        pop, noise, state, _ = es.ask(state)
        state = es.tell(state, noise, -np.sum((pop - target) ** 2, axis=1))
    assert np.linalg.norm(state.mean - target) < 0.1


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def _checkpoint(run_dir):
    return load_checkpoint(run_dir, OpenES(8))  # the config's strategy: open_es


def test_kill_and_resume_is_bit_identical(tmp_path):
    common = ["--config", "configs/cpu/lpo_es.yaml", "--set", "es.generations=6", *TINY]
    full = _cli("run", *common, "--run-dir", str(tmp_path / "full"))
    assert full.wait(timeout=600) == 0, full.stdout.read()

    killed = _cli("run", *common, "--run-dir", str(tmp_path / "killed"))
    deadline = time.time() + 600
    store = None
    while time.time() < deadline:  # kill -9 once at least two generations are checkpointed
        if (tmp_path / "killed" / "run.sqlite").exists():
            store = store or RunStore(tmp_path / "killed")
            if (store.get_state("es_generation") or 0) >= 2:
                break
        if killed.poll() is not None:
            break
        time.sleep(0.05)
    assert killed.poll() is None, "the run finished before it could be killed"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert _checkpoint(tmp_path / "killed").generation < 6
    resumed = _cli("resume", str(tmp_path / "killed"))
    assert resumed.wait(timeout=600) == 0, resumed.stdout.read()

    a, b = _checkpoint(tmp_path / "full"), _checkpoint(tmp_path / "killed")
    assert a.generation == b.generation == 6
    for name in ("mean", "adam_m", "adam_v", "key"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.sigma, a.lr, a.best_fitness) == (b.sigma, b.lr, b.best_fitness)
    with RunStore(tmp_path / "full", readonly=True) as s:
        full_steps = s.run_info()["env_steps"]
    with RunStore(tmp_path / "killed") as s:
        assert s.run_info()["status"] == "finished"
        gens = [c.generation for c in s.candidates()]
        assert gens == sorted(set(gens)) and gens[-1] == 6  # each saved mean recorded once
        # generations redone after the kill are not counted twice
        assert s.run_info()["env_steps"] == full_steps


def test_eval_from_a_stored_run(tmp_path):
    run = _cli("run", "--config", "configs/cpu/lpo_es.yaml", "--set", "es.generations=1", *TINY,
               "--run-dir", str(tmp_path / "r"))
    assert run.wait(timeout=600) == 0, run.stdout.read()
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "eval", "--from", str(tmp_path / "r"),
                          "--candidate", "best", "--env", "cartpole", "--timesteps", "2048",
                          "--seeds", "2", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    import json
    data = json.loads(out.stdout)
    assert data["family"] == "lpo" and data["outcome"] == "ok" and "cartpole" in data["envs"]
    bad = subprocess.run([sys.executable, "-m", "workbench.cli", "eval", "--from", str(tmp_path / "r"),
                          "--candidate", "999"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no candidate 999" in bad.stdout
