"""Scoring one stored program candidate in the sandbox and recording what came back.

One path for the discovery graph's `evaluate` node and the agent's `evaluate` tool, so a program
scored either way leaves the same rows: per-env evaluations, env steps in the run's cost, timings,
and the typed outcome on the candidate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sandbox.accelerators import default_concurrency, visible_gpus
from sandbox.executors import Executor, PoolSettings, make_executor
from sandbox.jail import probe
from sandbox.pool import SandboxResult
from workbench.store import RunStore


def sandbox_job(config: Any, source: str, seed: int, kind: str = "code",
                label: str = "") -> dict[str, Any]:
    """The worker job that trains `source` on the run's envs and seeds from `seed`."""
    return {"family": config.family, "kind": kind, "source": source, "envs": config.envs,
            "test_envs": config.test_envs, "seeds": config.seeds, "seed": seed,
            "timesteps": config.timesteps, "num_envs": config.num_envs, "label": label}


def record_result(store: RunStore, config: Any, cid: int, r: SandboxResult, seed: int) -> None:
    """Per-env rows and env steps of one evaluation (in the store's own thread)."""
    for split, envs in (("train", r.envs), ("test", r.test_envs)):
        for env, stats in envs.items():
            store.add_evaluation(cid, env, split, stats, config.seeds, seed)
    store.add_cost(env_steps=r.env_steps)


def run_in_sandbox(store: RunStore, config: Any, pool: Executor, cid: int, source: str,
                   seed: int, kind: str = "code", label: str = "") -> SandboxResult:
    """Train with `source` on the run's envs from `seed`; store per-env rows and the env steps."""
    r = pool.evaluate(sandbox_job(config, source, seed, kind, label), config.sandbox.time_limit_s)
    record_result(store, config, cid, r, seed)
    return r


def score_program(store: RunStore, config: Any, pool: Executor, cid: int, code: str,
                  label: str = "", extra_info: dict[str, Any] | None = None) -> SandboxResult:
    """Evaluate `code` for candidate `cid` (already stored, outcome pending) and finish it."""
    store.emit("evaluating", {"id": cid})
    r = pool.evaluate(sandbox_job(config, code, config.seed, label=label), config.sandbox.time_limit_s)
    finish_scored(store, config, cid, r, extra_info)
    return r


def finish_scored(store: RunStore, config: Any, cid: int, r: SandboxResult,
                  extra_info: dict[str, Any] | None = None) -> None:
    """Record a search evaluation of candidate `cid`: its rows, cost, and outcome, in one place."""
    record_result(store, config, cid, r, config.seed)
    info = {"timings": r.timings, "envs": r.envs, "test_envs": r.test_envs,
            "isolation": r.isolation, **(extra_info or {})}
    store.finish_candidate(cid, r.outcome, r.reason, fitness=r.fitness, test_fitness=r.test_fitness,
                           info=info)


def open_pool(config: Any, spares: int | None = None) -> Executor:
    """The run's executor (`executor` section) over sandbox workers with its limits (`sandbox`).

    With `sandbox.isolation: auto`, code a language model writes is scored only inside the full
    jail (`SandboxUnavailable` otherwise, naming the opt-out); the offline program search's edits
    of the family's own programs may run where the machine allows less, and the run says so."""
    cs = config.sandbox
    isolation = cs.isolation
    if isolation == "auto" and llm_writes_code(config):
        isolation = "full"
    cache = sandbox_cache_dir(config)
    settings = PoolSettings(time_limit_s=cs.time_limit_s, memory_limit_mb=cs.memory_limit_mb,
                            cpu_time_limit_s=cs.cpu_time_limit_s, isolation=isolation,
                            compile_cache_dir=None if cache is None else str(cache),
                            spares=spares or cs.workers)
    options: dict[str, Any] = {"concurrency": concurrency(config)}
    if config.executor.kind == "ray":
        options["address"] = config.executor.address
    pool = make_executor(config.executor.kind, settings, **options)
    if pool.isolation == "none" or not probe().full:
        why = "sandbox.isolation: none" if pool.isolation == "none" else probe().reason
        sys.stderr.write(f"warning: candidates run without the full sandbox jail "
                         f"({probe().summary() if pool.isolation != 'none' else 'no jail'}; {why})\n")
    return pool


def concurrency(config: Any) -> int:
    """`sandbox.concurrency`, with 'auto' resolved for this machine (`sandbox.accelerators`)."""
    value = config.sandbox.concurrency
    return default_concurrency(visible_gpus()) if value == "auto" else int(value)


def llm_writes_code(config: Any) -> bool:
    """True when a language model proposes the programs (rather than the offline mutation search)."""
    llm = config.llm
    return llm.loop == "tools" or llm.proposer == "llm" or (llm.proposer == "auto" and bool(llm.model or llm.models))


def sandbox_cache_dir(config: Any) -> Path | None:
    """Where sandbox workers keep compiled programs (`sandbox.compile_cache`), or None."""
    return Path(config.workspace) / ".jax-cache" / "sandbox" if config.sandbox.compile_cache else None
