"""Scoring one stored program candidate in the sandbox and recording what came back.

One path for the discovery graph's `evaluate` node and the agent's `evaluate` tool, so a program
scored either way leaves the same rows: per-env evaluations, env steps in the run's cost, timings,
and the typed outcome on the candidate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sandbox.jail import probe
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
    info = {"timings": r.timings, "envs": r.envs, "test_envs": r.test_envs,
            "isolation": r.isolation, **(extra_info or {})}
    store.finish_candidate(cid, r.outcome, r.reason, fitness=r.fitness, test_fitness=r.test_fitness,
                           info=info)
    return r


def open_pool(config: Any, spares: int | None = None) -> SandboxPool:
    """A sandbox pool with the run's limits (`sandbox` section).

    With `sandbox.isolation: auto`, code a language model writes is scored only inside the full
    jail (`SandboxUnavailable` otherwise, naming the opt-out); the offline program search's edits
    of the family's own programs may run where the machine allows less, and the run says so."""
    cs = config.sandbox
    isolation = cs.isolation
    if isolation == "auto" and llm_writes_code(config):
        isolation = "full"
    pool = SandboxPool(spares=spares or cs.workers, time_limit_s=cs.time_limit_s,
                       memory_limit_mb=cs.memory_limit_mb, cpu_time_limit_s=cs.cpu_time_limit_s,
                       compile_cache_dir=sandbox_cache_dir(config), isolation=isolation)
    if pool.isolation == "none" or not probe().full:
        why = "sandbox.isolation: none" if pool.isolation == "none" else probe().reason
        sys.stderr.write(f"warning: candidates run without the full sandbox jail "
                         f"({probe().summary() if pool.isolation != 'none' else 'no jail'}; {why})\n")
    return pool


def llm_writes_code(config: Any) -> bool:
    """True when a language model proposes the programs (rather than the offline mutation search)."""
    llm = config.llm
    return llm.loop == "tools" or llm.proposer == "llm" or (llm.proposer == "auto" and bool(llm.model or llm.models))


def sandbox_cache_dir(config: Any) -> Path | None:
    """Where sandbox workers keep compiled programs (`sandbox.compile_cache`), or None."""
    return Path(config.workspace) / ".jax-cache" / "sandbox" if config.sandbox.compile_cache else None
