"""One sandboxed candidate evaluation per process: `python -m sandbox.worker`.

The parent (`sandbox.pool`) starts this process ahead of time in its own session, private temp
dir and scrubbed environment (and, where permitted, its own network namespace).  It imports JAX
and the evaluators, reports `ready`, then serves exactly ONE job read as a JSON line on stdin and
answers with one JSON line on the protocol fd; then it exits, so nothing a candidate did survives.
Hard limits on CPU time and address space are applied here just before the candidate runs, so the
import of JAX does not count against them.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any, Callable

import numpy as np

NETWORK_MESSAGE = "network access is disabled inside the sandbox"


def _block_network() -> None:
    """Belt and braces on top of the network namespace: sockets cannot even be created."""
    import socket

    class _NoSocket(socket.socket):
        def __init__(self, *a: Any, **k: Any):
            raise PermissionError(NETWORK_MESSAGE)

    socket.socket = _NoSocket  # type: ignore[misc]
    socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(PermissionError(NETWORK_MESSAGE))


def _apply_limits(cpu_s: float | None, memory_mb: int | None) -> None:
    if cpu_s:
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        soft = int(spent + cpu_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class CandidateCrash(RuntimeError):
    """The candidate raised while being called on test inputs (outcome `crashed`)."""


def lpo_quick_check(fn: Callable[..., Any], kind: str) -> str | None:
    """Random-input checks of an LPO drift: shape, finite, gradient, >= 0, zero at r = 1.

    Returns None if fine, else the reason (the candidate is then `invalid`).
    """
    import jax
    import jax.numpy as jnp

    from evaluators.families.lpo import symbol_values

    def drift(ratio, advantage):
        out = fn(ratio, advantage, 0.2) if kind == "code" else fn(**symbol_values(ratio, advantage, 0.2))
        return jnp.broadcast_to(jnp.asarray(out, dtype=jnp.float32), ratio.shape)

    key_r, key_a = jax.random.split(jax.random.key(7))
    ratio = jnp.exp(jax.random.uniform(key_r, (256,), minval=-0.6, maxval=0.6))
    adv = jax.random.normal(key_a, (256,)) * 2.0
    @jax.jit
    def probe(ratio, adv):  # one compile for all checks, not one per eager op
        out = drift(ratio, adv)
        grad = jax.grad(lambda r: drift(r, adv).sum())(ratio)
        return out, grad, drift(jnp.ones_like(adv), adv)

    try:
        out, grad, at_one = jax.block_until_ready(probe(ratio, adv))
    except MemoryError:
        raise
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        if "RESOURCE_EXHAUSTED" in text or "Out of memory" in text:
            raise MemoryError(text[:500]) from None
        raise CandidateCrash(f"calling the function on arrays of shape (256,) failed: {text[:1000]}") from None
    if out.shape != ratio.shape:
        return f"output shape {out.shape} does not broadcast to the input shape {ratio.shape}"
    if not bool(jnp.all(jnp.isfinite(out))):
        return "output is not finite (NaN or inf) for ratios in [0.55, 1.8]"
    if not bool(jnp.all(jnp.isfinite(grad))):
        return "gradient with respect to ratio is not finite"
    if float(out.min()) < -1e-6:
        return f"drift must be >= 0 everywhere (minimum {float(out.min()):.3g})"
    if float(jnp.abs(at_one).max()) > 1e-5:
        return f"drift must be 0 at r = 1 (got up to {float(jnp.abs(at_one).max()):.3g})"
    return None


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Screen, check and score one candidate; every failure is a typed outcome."""
    from evaluators.envs import get_env_config
    from evaluators.families import Candidate, get_family

    from sandbox.checks import ProgramError, load_program
    from sandbox.expressions import ExpressionError, compile_expression
    from sandbox.score import score

    timings: dict[str, float] = {}
    family = get_family(job["family"])
    t0 = time.perf_counter()
    try:
        if job["kind"] == "code":
            fn = load_program(job["source"], family.code_signature)
        elif job["kind"] == "symbolic":
            if family.symbol_names is None:
                return {"outcome": "invalid", "reason": f"family {family.name!r} has no symbolic form: {family.symbolic_refusal}"}
            fn = compile_expression(job["source"], family.symbol_names)
        else:
            return {"outcome": "invalid", "reason": f"unknown kind {job['kind']!r}; use code or symbolic"}
    except ProgramError as exc:
        return {"outcome": exc.kind, "reason": str(exc), "timings": timings}
    except ExpressionError as exc:
        return {"outcome": "invalid", "reason": str(exc), "timings": timings}
    timings["screen_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if family.name == "lpo":
        try:
            problem = lpo_quick_check(fn, job["kind"])
        except CandidateCrash as exc:
            return {"outcome": "crashed", "reason": str(exc), "timings": timings}
        if problem:
            timings["checks_s"] = time.perf_counter() - t0
            return {"outcome": "invalid", "reason": problem, "timings": timings}
    timings["checks_s"] = time.perf_counter() - t0
    envs = [get_env_config(n).scaled(total_timesteps=job.get("timesteps"), num_envs=job.get("num_envs"))
            for n in job["envs"]]
    tests = [get_env_config(n).scaled(total_timesteps=job.get("timesteps"), num_envs=job.get("num_envs"))
             for n in job.get("test_envs", [])]
    cand = Candidate(kind=job["kind"], fn=fn, label=job.get("label", "candidate"))
    s = score(family, cand, {}, envs, tests, int(job.get("seeds", 1)), int(job.get("seed", 0)))
    timings["compile_s"] = s.compile_s
    timings["train_s"] = s.train_s
    curves = {k: np.asarray(v).mean(axis=0).tolist() for k, v in s.curves.items()}
    return {"outcome": s.outcome, "reason": s.reason, "fitness": s.fitness,
            "test_fitness": s.test_fitness, "envs": s.envs, "test_envs": s.test_envs,
            "env_steps": s.env_steps, "timings": timings, "curves": curves}


def _clean(obj: Any) -> Any:
    """JSON cannot carry NaN portably: NaN/inf become None."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def main() -> int:
    proto = os.fdopen(os.dup(1), "w")  # the protocol channel; candidate prints go to stderr
    os.dup2(2, 1)
    import jax  # noqa: F401 - paid before `ready`, not by the candidate
    import jax.numpy as jnp

    import evaluators.families  # noqa: F401
    import evaluators.fitness  # noqa: F401
    import sandbox.checks  # noqa: F401
    import sandbox.expressions  # noqa: F401
    jnp.zeros(1).block_until_ready()  # initialise the backend too
    proto.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    proto.flush()
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    _block_network()
    _apply_limits(job.get("cpu_time_limit_s"), job.get("memory_limit_mb"))
    try:
        result = run_job(job)
    except MemoryError as exc:
        result = {"outcome": "oom", "reason": f"out of memory: {exc}"}
    except Exception as exc:  # noqa: BLE001 - a candidate's failure, reported not raised
        text = f"{type(exc).__name__}: {exc}"[:2000]
        oom = "Out of memory" in text or "RESOURCE_EXHAUSTED" in text
        result = {"outcome": "oom" if oom else "crashed", "reason": text}
    proto.write(json.dumps(_clean(result)) + "\n")
    proto.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
