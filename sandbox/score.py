"""Scoring a built candidate: the shared core of `workbench eval` and the sandbox worker.

Lives in `sandbox` (not `workbench`) because the worker process must not import the workbench;
returns plain data so the result can cross a pipe as JSON.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np

from evaluators.envs import EnvConfig
from evaluators.families import Candidate, Family
from evaluators.fitness import evaluate_population, stack_population


@dataclass
class Score:
    """Outcome of training one candidate on its envs; `outcome` is ok, crashed or nan."""

    outcome: str
    reason: str = ""
    envs: dict[str, dict[str, float]] = field(default_factory=dict)
    test_envs: dict[str, dict[str, float]] = field(default_factory=dict)
    fitness: float | None = None
    test_fitness: float | None = None
    curves: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    compile_s: float = 0.0
    train_s: float = 0.0
    env_steps: int = 0


def score(family: Family, candidate: Candidate, meta: Any, train_envs: Sequence[EnvConfig],
          test_envs: Sequence[EnvConfig], seeds: int, seed: int, cache: dict | None = None) -> Score:
    """Train the candidate on every env over `seeds` seeds; candidate failures become outcomes.

    `cache` (a dict kept by the caller) reuses compiled evaluators across repeated calls."""
    meta_pop = stack_population([meta]) if jax.tree.leaves(meta) else {}
    try:
        scores = evaluate_population(family, candidate, meta_pop, jax.random.key(seed),
                                     list(train_envs), list(test_envs), num_seeds=seeds,
                                     cache=cache)
    except MemoryError as exc:
        return Score("oom", f"out of memory while training: {exc}")
    except Exception as exc:  # the candidate's code ran inside tracing/training and failed
        tb = traceback.extract_tb(exc.__traceback__)
        last = tb[-1] if tb else None
        where = f" (at {Path(last.filename).name}:{last.lineno})" if last else ""
        text = f"{type(exc).__name__}: {exc}"
        kind = "oom" if "RESOURCE_EXHAUSTED" in text or "Out of memory" in text else "crashed"
        return Score(kind, text[:2000] + where)
    result = Score("ok")
    everything = {**scores.train, **scores.test}
    for split, envs in (("envs", scores.train), ("test_envs", scores.test)):
        for name, s in envs.items():
            getattr(result, split)[name] = s.member(0)
            result.curves[name] = s.curves[0]
    result.compile_s = float(sum(s.compile_s for s in everything.values()))
    result.train_s = float(sum(s.run_s for s in everything.values()))
    result.env_steps = int(sum(s.env_steps for s in everything.values()))
    result.fitness = float(scores.fitness[0])
    result.test_fitness = float(scores.test_fitness[0]) if scores.test else None
    if bool(scores.nan[0]):
        bad = [n for n, s in everything.items() if s.nan[0]]
        result.outcome = "nan"
        result.reason = f"training produced NaN returns on {', '.join(bad)}"
    return result
