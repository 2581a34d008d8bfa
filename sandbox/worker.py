"""One sandboxed step of a candidate evaluation per process: `python -m sandbox.worker ROLE`.

Two roles, so that the fitness is computed by code the candidate could not reach:

* `trace` (untrusted): the only process in which candidate Python runs.  It screens and builds the
  program, traces the trusted scoring code abstractly with a recorder in the candidate's place, and
  answers with the candidate exported as StableHLO modules, one set per call signature
  (`sandbox.exported`).  Whatever it answers is treated as the candidate's own claim: a failure
  outcome, or modules.  It cannot answer `ok`.
* `score` (trusted): never runs candidate Python.  It verifies the modules, runs the family's
  checks and the PPO training with them, and answers with the outcome and fitness.

The parent (`sandbox.pool`) starts each process ahead of time, jailed (`sandbox.jail`), in a
private temp dir with a scrubbed environment.  A worker imports JAX and the evaluators, reports
`ready` (the scorer also names its platform, for which the tracer exports), serves exactly ONE job
read as a JSON line on stdin, answers with one JSON line on the protocol fd, and exits.  CPU-time
and memory limits are applied just before the job, so the import of JAX does not count.
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


def _die_with_parent() -> None:
    """SIGKILL this process when the process that started it dies (Linux), so that a killed CLI
    or run leaves no worker burning a core until its CPU limit."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _apply_limits(cpu_s: float | None, memory_mb: int | None) -> None:
    """CPU seconds from now, and a cap on the process's data memory.

    RLIMIT_DATA (private writable memory), not RLIMIT_AS: CUDA reserves terabytes of address space
    that it never touches, so an address-space limit makes every GPU process fail to start, while
    what a runaway program actually allocates on the host counts against the data limit."""
    if cpu_s:
        used = resource.getrusage(resource.RUSAGE_SELF)
        spent = used.ru_utime + used.ru_stime
        soft = int(spent + cpu_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 5))
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _env_configs(job: dict[str, Any], key: str) -> list[Any]:
    from evaluators.envs import get_env_config

    return [get_env_config(n).scaled(total_timesteps=job.get("timesteps"),
                                      num_envs=job.get("num_envs")) for n in job.get(key, [])]


def _is_oom(text: str) -> bool:
    """Out of memory, or an array dimension past 2**31 elements (no memory limit admits it)."""
    return any(m in text for m in ("RESOURCE_EXHAUSTED", "Out of memory", "MemoryError",
                                   "too large to convert to int32"))


# -- trace: the untrusted side -----------------------------------------------------------------

def build_function(job: dict[str, Any], family: Any) -> Callable[..., Any]:
    """The candidate's Python function (raises ProgramError / ExpressionError)."""
    from sandbox.checks import ProgramError, load_program
    from sandbox.expressions import compile_expression

    if job["kind"] == "code":
        return load_program(job["source"], family.code_signature, screen=job.get("screen", True))
    if job["kind"] == "symbolic":
        if family.symbol_names is None:
            raise ProgramError("invalid", f"family {family.name!r} has no symbolic form: "
                               f"{family.symbolic_refusal}")
        return compile_expression(job["source"], family.symbol_names)
    raise ProgramError("invalid", f"unknown kind {job['kind']!r}; use code or symbolic")


def trace_job(job: dict[str, Any]) -> dict[str, Any]:
    """Build the candidate and export every call the scorer will make of it."""
    from evaluators.families import Candidate, get_family
    from sandbox.checks import ProgramError
    from sandbox.exported import ExportError, trace_candidate
    from sandbox.expressions import ExpressionError

    timings: dict[str, float] = {}
    family = get_family(job["family"])
    t0 = time.perf_counter()
    try:
        fn = build_function(job, family)
    except ProgramError as exc:
        return {"outcome": "oom" if _is_oom(str(exc)) else exc.kind, "reason": str(exc)}
    except ExpressionError as exc:
        return {"outcome": "invalid", "reason": str(exc)}
    timings["screen_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cand = Candidate(kind=job["kind"], fn=fn, label=job.get("label", "candidate"))
    try:
        envs = _env_configs(job, "envs") + _env_configs(job, "test_envs")
        bundles = trace_candidate(family, cand, envs, job["platform"])
    except ExportError as exc:
        return {"outcome": "oom" if _is_oom(str(exc)) else "crashed", "reason": str(exc),
                "timings": timings}
    except Exception as exc:  # noqa: BLE001 - the candidate failed while being traced
        text = f"{type(exc).__name__}: {exc}"
        return {"outcome": "oom" if _is_oom(text) else "crashed",
                "reason": f"tracing the program failed: {text[:1500]}", "timings": timings}
    timings["trace_s"] = time.perf_counter() - t0
    return {"outcome": "traced", "exports": bundles, "timings": timings}


# -- score: the trusted side -------------------------------------------------------------------

def score_job(job: dict[str, Any], platform: str) -> dict[str, Any]:
    """Verify the candidate's modules, check and train it: the outcome the store records."""
    import jax

    from evaluators.families import Candidate, get_family
    from sandbox.exported import CandidateProxy, ExportError
    from sandbox.score import score

    timings: dict[str, float] = dict(job.get("trace_timings") or {})
    family = get_family(job["family"])
    t0 = time.perf_counter()
    try:
        proxy = CandidateProxy(job.get("exports") or [], platform)
    except ExportError as exc:
        return {"outcome": "invalid", "reason": f"the exported program was refused: {exc}"}
    timings["verify_s"] = time.perf_counter() - t0
    cand = Candidate(kind=job["kind"], fn=proxy, label=job.get("label", "candidate"))
    t0 = time.perf_counter()
    probe = family.candidate_probe(cand)
    if probe is not None:
        try:
            outputs = jax.block_until_ready(jax.jit(probe)())
        except Exception as exc:  # noqa: BLE001 - the candidate's function failed on test inputs
            text = f"{type(exc).__name__}: {exc}"
            if _is_oom(text):
                raise MemoryError(text[:500]) from None
            return {"outcome": "crashed", "timings": timings,
                    "reason": f"calling the function on test inputs failed: {text[:1000]}"}
        problem = family.probe_verdict(outputs)
        timings["checks_s"] = time.perf_counter() - t0
        if problem:
            return {"outcome": "invalid", "reason": problem, "timings": timings}
    timings["checks_s"] = time.perf_counter() - t0
    s = score(family, cand, {}, _env_configs(job, "envs"), _env_configs(job, "test_envs"),
              int(job.get("seeds", 1)), int(job.get("seed", 0)))
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


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else ""
    if role not in ("trace", "score"):
        print("usage: python -m sandbox.worker trace|score", file=sys.stderr)
        return 2
    _die_with_parent()
    proto = os.fdopen(os.dup(1), "w")  # the protocol channel; candidate prints go to stderr
    os.dup2(2, 1)
    import jax
    import jax.numpy as jnp

    import evaluators.families  # noqa: F401 - paid before `ready`, not by the candidate
    import evaluators.fitness  # noqa: F401
    import sandbox.exported  # noqa: F401
    if role == "trace":
        import sandbox.checks  # noqa: F401
        import sandbox.expressions  # noqa: F401
    jnp.zeros(1).block_until_ready()  # initialise the backend too
    platform = jax.default_backend()
    proto.write(json.dumps({"ready": True, "pid": os.getpid(), "role": role,
                            "platform": platform}) + "\n")
    proto.flush()
    line = sys.stdin.readline()
    if not line:
        return 0
    job = json.loads(line)
    if role == "trace":
        _block_network()
    _apply_limits(job.get("cpu_time_limit_s"), job.get("memory_limit_mb"))
    try:
        result = trace_job(job) if role == "trace" else score_job(job, platform)
    except MemoryError as exc:
        result = {"outcome": "oom", "reason": f"out of memory: {exc}"}
    except Exception as exc:  # noqa: BLE001 - a candidate's failure, reported not raised
        text = f"{type(exc).__name__}: {exc}"[:2000]
        result = {"outcome": "oom" if _is_oom(text) else "crashed", "reason": text}
    proto.write(json.dumps(_clean(result)) + "\n")
    proto.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
