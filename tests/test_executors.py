"""The executor layer: jobs in flight at once, each in its own jailed workers, wherever they run."""

import os
import re
import threading
from pathlib import Path

import pytest

from sandbox.accelerators import Slot, scorer_slots, visible_gpus
from sandbox.executors import EXECUTORS, PoolSettings, make_executor
from sandbox.pool import SandboxPool
from tests.sandbox_jobs import PPO, lpo_job

JOB = lpo_job()
LOOSE = PPO.replace("1 - epsilon, 1 + epsilon", "1 - 2 * epsilon, 1 + 2 * epsilon")
BROKEN = "def drift(ratio, advantage, epsilon):\n    return ratio[:, None] @ jnp.ones((3, 3, 3))\n"


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_visible_gpus_from_device_nodes_and_from_the_environment(tmp_path):
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"):
        (tmp_path / name).touch()
    assert visible_gpus({}, tmp_path) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3,5"}, tmp_path) == ["3", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, tmp_path) == []
    assert visible_gpus({"JAX_PLATFORMS": "cpu"}, tmp_path) == []
    assert visible_gpus({"JAX_PLATFORMS": "cuda,cpu"}, tmp_path) == ["0", "1"]
    assert visible_gpus({}, tmp_path / "missing") == []


def test_slots_spread_over_gpus_and_share_memory_when_crowded():
    assert scorer_slots(2, []) == [Slot(None, 1.0), Slot(None, 1.0)]
    assert [s.device for s in scorer_slots(4, ["0", "1"])] == ["0", "1", "0", "1"]
    crowded = scorer_slots(4, ["0", "1"])
    assert all(abs(s.memory_fraction - 0.45) < 1e-9 for s in crowded)
    assert scorer_slots(2, ["0", "1"])[0].memory_fraction == pytest.approx(0.9)
    assert Slot(None, 1.0).env() == {}


def test_a_worker_on_a_gpu_machine_is_given_one_gpu_and_no_preallocation(monkeypatch):
    """Real worker processes, started as on a two-GPU machine: the environment each was given."""
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.setattr("sandbox.pool.visible_gpus", lambda: ["0", "1"])
    with SandboxPool(spares=2, concurrency=2, isolation="none") as pool:
        scorers = [_environ(w.proc.pid) for w in pool._idle["score"]]
        tracers = [_environ(w.proc.pid) for w in pool._idle["trace"]]
    assert sorted(e["CUDA_VISIBLE_DEVICES"] for e in scorers) == ["0", "1"]
    for env in scorers:
        assert "JAX_PLATFORMS" not in env  # the platform is the machine's, not forced to CPU
        assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
        assert float(env["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(0.9)
    for env in tracers:
        assert env["JAX_PLATFORMS"] == "cpu" and "CUDA_VISIBLE_DEVICES" not in env


def test_on_a_cpu_machine_nothing_is_pinned(monkeypatch):
    monkeypatch.setattr("sandbox.pool.visible_gpus", lambda: [])
    with SandboxPool(spares=1, isolation="none") as pool:
        env = _environ(pool._idle["score"][0].proc.pid)
    assert "CUDA_VISIBLE_DEVICES" not in env and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env
    assert env.get("JAX_PLATFORMS") == os.environ.get("JAX_PLATFORMS")  # inherited as it was


def test_unknown_executor_is_named():
    with pytest.raises(ValueError, match="unknown executor 'slurm'.*local, ray"):
        make_executor("slurm", PoolSettings())
    assert set(EXECUTORS) == {"local", "ray"}


def test_local_executor_runs_two_candidates_at_once_each_with_its_own_outcome():
    settings = PoolSettings(time_limit_s=300, spares=2)
    with make_executor("local", settings, concurrency=2) as ex:
        futures = [ex.submit({**JOB, "source": src}) for src in (PPO, BROKEN, LOOSE)]
        results = [f.result(timeout=600) for f in futures]
    assert [r.outcome for r in results] == ["ok", "crashed", "ok"]
    assert results[0].fitness != results[2].fitness
    a, b = results[0].timings, results[2].timings  # the broken one ends at once
    assert a["started_at"] < b["ended_at"] and b["started_at"] < a["ended_at"], (a, b)
    assert threading.active_count() < 20


@pytest.mark.slow
def test_a_real_local_ray_runs_discovery_in_the_jail(tmp_path):
    """`executor.kind: ray` with no address: the run starts a local Ray (CPU only), scores its
    quickstart-sized candidates in Ray actors' jailed workers, and tears Ray down at the end."""
    ray = pytest.importorskip("ray")
    from workbench.config import build_config
    from workbench.runs import create_run, execute

    cfg = build_config({"family": "lpo", "method": "llm", "envs": ["cartpole"], "seeds": 1,
                        "timesteps": 4096, "num_envs": 4, "executor": {"kind": "ray"},
                        "sandbox": {"concurrency": 2, "time_limit_s": 300},
                        "llm": {"proposer": "mutation", "generations": 4, "final_top_k": 0}})
    store = create_run(cfg, tmp_path / "run")
    try:
        assert execute(cfg, store) == "finished"
    finally:
        if ray.is_initialized():
            ray.shutdown()
    rows = store.candidates()
    assert len(rows) == 4 and all(c.outcome != "pending" for c in rows)
    scored = [c for c in rows if "isolation" in c.info]
    assert scored and all(c.info["isolation"]["score"]["net_ns"] for c in scored)
    start = rows[0]
    assert start.method == "warm_start" and start.outcome == "ok"
    with make_executor("local", PoolSettings(time_limit_s=300)) as local:
        alone = local.evaluate({**JOB, "source": start.source})
    assert alone.fitness == start.fitness  # same program, same seeds: the same score anywhere
    assert not ray.is_initialized()


def test_bad_executor_settings_name_the_field_and_the_fix():
    from workbench.agent.scoring import concurrency
    from workbench.config import ConfigError, build_config

    cases = {"sandbox.concurrency=0": "sandbox.concurrency",
             "sandbox.concurrency=many": "sandbox.concurrency",
             "executor.kind=slurm": "executor.kind",
             "executor.address=10.0.0.1:6379": "executor.kind=ray"}
    for override, named in cases.items():
        with pytest.raises(ConfigError, match=re.escape(named)):
            build_config({}, [override])
    assert concurrency(build_config({}, ["sandbox.concurrency=3"])) == 3
    auto = concurrency(build_config({}))
    assert auto == (len(visible_gpus()) or min(2, os.cpu_count()))
