"""Paired comparison of stored candidates on the same held-out seeds.

Two candidates trained on the same seeds share their environment randomness (common random
numbers), so the per-seed difference of final returns is far less noisy than the difference of two
independent means.  This is how a researcher checks "is B really better than A?" after a search
that selected B on a few noisy seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .candidate_ref import resolve_candidate
from .config import COMPARE_SEEDS, RunConfig
from .evaluate import EvalRequest, EvalResult, evaluate_request
from .runs import open_run


@dataclass
class Compared:
    candidate: str
    result: EvalResult
    diff_mean: float | None = None  # mean over seeds and envs of (this - reference) final return
    diff_stderr: float | None = None
    wins: str = ""


def request_for(run_dir: str | Path, which: str, **fields) -> tuple[str, EvalRequest]:
    """An EvalRequest re-creating candidate `which` (an id, 'best' or 'warm-start') of a run."""
    ref = resolve_candidate(run_dir, which)
    return ref.label, EvalRequest(family=ref.family, **ref.fields, **fields)


def compare_fields(run_dir: str | Path, envs: Sequence[str] | None = None, seeds: int | None = None,
                   seed: int | None = None, timesteps: int | None = None,
                   num_envs: int | None = None) -> dict:
    """The EvalRequest fields of a comparison: what is given, else the run's own environments and
    inner loop, `COMPARE_SEEDS` held-out seeds from the default `eval_seed`."""
    config, store = open_run(run_dir)
    store.close()
    return {"envs": list(envs or config.envs),
            "seeds": COMPARE_SEEDS if seeds is None else seeds,
            "seed": RunConfig.model_fields["eval_seed"].default if seed is None else seed,
            "timesteps": timesteps or config.timesteps, "num_envs": num_envs or config.num_envs}


def _seed_returns(result: EvalResult) -> np.ndarray:
    rows = [np.asarray(v.get("seed_returns", []), float) for _, v in sorted(result.envs.items())]
    return np.concatenate(rows) if rows else np.zeros(0)


def compare(run_dir: str | Path, candidates: Sequence[str], **fields) -> list[Compared]:
    """Evaluate each candidate on the same seeds; differences are against the first one."""
    requests = [request_for(run_dir, which, **fields) for which in candidates]  # all refs first
    out = [Compared(label, evaluate_request(req)) for label, req in requests]
    ref = _seed_returns(out[0].result)
    for c in out[1:]:
        mine = _seed_returns(c.result)
        if c.result.outcome != "ok" or mine.shape != ref.shape or not mine.size:
            continue
        d = mine - ref
        c.diff_mean = float(np.mean(d))
        c.diff_stderr = float(np.std(d, ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
        c.wins = f"{int(np.sum(d > 0))}/{int(np.sum(d < 0))}/{int(np.sum(d == 0))}"
    return out
