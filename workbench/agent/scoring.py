"""Scoring one stored program candidate in the sandbox and recording what came back.

One path for the discovery graph's `evaluate` node and the agent's `evaluate` tool, so a program
scored either way leaves the same rows: per-env evaluations, env steps in the run's cost, timings,
and the typed outcome on the candidate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.pool import SandboxPool, SandboxResult
from workbench.store import RunStore


def run_in_sandbox(store: RunStore, config: Any, pool: SandboxPool, cid: int, source: str,
                   seed: int, kind: str = "code", label: str = "") -> SandboxResult:
    """Train with `source` on the run's envs from `seed`; store per-env rows and the env steps."""
    job = {"family": config.family, "kind": kind, "source": source, "envs": config.envs,
           "test_envs": config.test_envs, "seeds": config.seeds, "seed": seed,
           "timesteps": config.timesteps, "num_envs": config.num_envs, "label": label}
    r = pool.evaluate(job, config.sandbox.time_limit_s)
    for split, envs in (("train", r.envs), ("test", r.test_envs)):
        for env, stats in envs.items():
            store.add_evaluation(cid, env, split, stats, config.seeds, seed)
    store.add_cost(env_steps=r.env_steps)
    return r


def score_program(store: RunStore, config: Any, pool: SandboxPool, cid: int, code: str,
                  label: str = "", extra_info: dict[str, Any] | None = None) -> SandboxResult:
    """Evaluate `code` for candidate `cid` (already stored, outcome pending) and finish it."""
    store.emit("evaluating", {"id": cid})
    r = run_in_sandbox(store, config, pool, cid, code, config.seed, label=label)
    info = {"timings": r.timings, "envs": r.envs, "test_envs": r.test_envs, **(extra_info or {})}
    store.finish_candidate(cid, r.outcome, r.reason, fitness=r.fitness, test_fitness=r.test_fitness,
                           info=info)
    return r


def open_pool(config: Any, spares: int | None = None) -> SandboxPool:
    """A sandbox pool with the run's limits (`sandbox` section)."""
    cs = config.sandbox
    return SandboxPool(spares=spares or cs.workers, time_limit_s=cs.time_limit_s,
                       memory_limit_mb=cs.memory_limit_mb, cpu_time_limit_s=cs.cpu_time_limit_s,
                       compile_cache_dir=sandbox_cache_dir(config))


def sandbox_cache_dir(config: Any) -> Path | None:
    """Where sandbox workers keep compiled programs (`sandbox.compile_cache`), or None."""
    return Path(config.workspace) / ".jax-cache" / "sandbox" if config.sandbox.compile_cache else None
