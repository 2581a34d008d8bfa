"""Scoring one candidate on chosen environments: the engine behind `workbench eval`.

Turns a user's description of a candidate (warm start, program file, expression, parameter file)
into a family `Candidate`, trains it on every environment over several seeds, and reports a typed
outcome.  Failures of the candidate (bad signature, crash, NaN) are outcomes, not exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import jax
import numpy as np

from evaluators.envs import EnvConfig, get_env_config
from evaluators.families import Candidate, Family, get_family
from sandbox.exported import through_export
from sandbox.score import score as sandbox_score

from .params_io import load_params


@dataclass
class EvalRequest:
    """Everything `workbench eval` needs; the defaults here are the only defaults."""

    family: str
    envs: Sequence[str] = ("cartpole",)
    test_envs: Sequence[str] = ()
    candidate: str = "warm-start"  # 'warm-start' | 'zero-network'
    code: str | None = None  # program source
    expr: str | None = None  # symbolic expression
    params_file: str | None = None
    seeds: int = 8
    seed: int = 0
    timesteps: int | None = None  # None: each environment's own setting
    num_envs: int | None = None
    time_limit_s: float | None = None  # sandbox wall-clock limit; None: SandboxConfig's default


@dataclass
class EvalResult:
    family: str
    outcome: str
    reason: str = ""
    envs: dict[str, dict[str, float]] = field(default_factory=dict)
    test_envs: dict[str, dict[str, float]] = field(default_factory=dict)
    fitness: float | None = None
    test_fitness: float | None = None
    curves: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    steps_per_update: dict[str, int] = field(default_factory=dict, repr=False)
    timings: dict[str, float] = field(default_factory=dict, repr=False)
    isolation: dict[str, Any] = field(default_factory=dict, repr=False)  # sandboxed candidates

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "outcome": self.outcome, "reason": self.reason,
                "envs": self.envs, "test_envs": self.test_envs, "fitness": self.fitness,
                "test_fitness": self.test_fitness, "timings": self.timings,
                "isolation": self.isolation}


def resolve_envs(names: Sequence[str], timesteps: int | None, num_envs: int | None
                 ) -> list[EnvConfig]:
    """Registry lookup plus CPU scaling; raises UnknownEnvError / ValueError with the fix."""
    return [get_env_config(n).scaled(total_timesteps=timesteps, num_envs=num_envs) for n in names]


def build_candidate(family: Family, req: EvalRequest) -> tuple[Candidate, Any]:
    """The static candidate and its parameters; raises ValueError.

    Trusted candidates only (warm start, networks): programs and expressions never run in this
    process, `evaluate_request` sends them to the sandbox."""
    if req.params_file is not None:
        params, fam_name, hsize = load_params(req.params_file)
        if fam_name != family.name:
            raise ValueError(f"{req.params_file} holds {fam_name!r} parameters, not {family.name!r}")
        expected = family.init_network(jax.random.key(0), hsize)
        if jax.tree.structure(expected) != jax.tree.structure(params) or any(
                a.shape != b.shape for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(params))):
            raise ValueError(f"{req.params_file}: parameter shapes do not match a {family.name} "
                             f"network of hidden size {hsize}")
        return family.network(hsize), params
    if req.candidate == "zero-network":
        return family.network(), family.init_network(jax.random.key(0))
    if req.candidate != "warm-start":
        raise ValueError(f"unknown --candidate {req.candidate!r}; use 'warm-start' or 'zero-network'")
    return family.warm_start(), {}


def evaluate_request(req: EvalRequest) -> EvalResult:
    """Run the request; every candidate failure comes back as an outcome with its reason."""
    family = get_family(req.family)  # unknown family: raised to the caller (a usage error)
    train_envs = resolve_envs(req.envs, req.timesteps, req.num_envs)
    test_envs = resolve_envs(req.test_envs, req.timesteps, req.num_envs)
    given = [x for x in (req.code, req.expr, req.params_file) if x is not None]
    if len(given) > 1:
        raise ValueError("give at most one of --code, --expr and --params")
    if req.code is not None or req.expr is not None:
        return _evaluate_sandboxed(family, req, train_envs + test_envs)
    try:
        candidate, meta = build_candidate(family, req)
    except ValueError as exc:
        return EvalResult(family.name, "invalid", str(exc))
    return score_candidate(family, candidate, meta, train_envs, test_envs, req.seeds, req.seed)


def _evaluate_sandboxed(family: Family, req: EvalRequest, envs: list[EnvConfig]) -> EvalResult:
    """Untrusted source never runs in this process: one sandbox worker trains it."""
    from sandbox.pool import SandboxPool

    from .config import SandboxConfig

    cfg = SandboxConfig()
    job = {"family": family.name, "kind": "code" if req.code is not None else "symbolic",
           "source": req.code if req.code is not None else req.expr, "envs": list(req.envs),
           "test_envs": list(req.test_envs), "seeds": req.seeds, "seed": req.seed,
           "timesteps": req.timesteps, "num_envs": req.num_envs}
    with SandboxPool(spares=1, time_limit_s=req.time_limit_s or cfg.time_limit_s,
                     memory_limit_mb=cfg.memory_limit_mb, cpu_time_limit_s=cfg.cpu_time_limit_s,
                     isolation=cfg.isolation) as pool:
        r = pool.evaluate(job)
    result = EvalResult(family.name, r.outcome, r.reason, envs=r.envs, test_envs=r.test_envs,
                        fitness=r.fitness, test_fitness=r.test_fitness,
                        curves={k: np.asarray([v], dtype=float) for k, v in r.curves.items()})
    result.steps_per_update = {e.key: e.num_steps * e.num_envs for e in envs}
    result.timings = r.timings
    result.isolation = r.isolation
    return result


def score_candidate(family: Family, candidate: Candidate, meta: Any, train_envs: list[EnvConfig],
                    test_envs: list[EnvConfig], seeds: int, seed: int,
                    cache: dict | None = None) -> EvalResult:
    """In-process scoring of a trusted candidate; `sandbox.score.score` is the shared core.

    Trusted programs go through the export boundary too, so that they score exactly as the same
    program would in the sandbox (see `sandbox.exported.through_export`)."""
    candidate = through_export(family, candidate, list(train_envs) + list(test_envs))
    s = sandbox_score(family, candidate, meta, train_envs, test_envs, seeds, seed, cache=cache)
    result = EvalResult(family.name, s.outcome, s.reason, envs=s.envs, test_envs=s.test_envs,
                        fitness=s.fitness, test_fitness=s.test_fitness, curves=s.curves)
    all_envs = {e.key: e for e in list(train_envs) + list(test_envs)}
    result.steps_per_update = {k: e.num_steps * e.num_envs for k, e in all_envs.items()}
    return result


def record_result(store: Any, candidate_id: int, result: EvalResult, seeds: int, seed: int,
                  steps_per_run: dict[str, int] | None = None) -> None:
    """Store an EvalResult: one evaluation row per env and split, then the candidate's outcome."""
    for split, envs in (("train", result.envs), ("test", result.test_envs)):
        for env, stats in envs.items():
            steps = (steps_per_run or {}).get(env, 0) * seeds
            store.add_evaluation(candidate_id, env, split, stats, seeds, seed, env_steps=steps)
            store.add_cost(env_steps=steps)
    store.finish_candidate(candidate_id, result.outcome, result.reason, result.fitness,
                           result.test_fitness)
