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

from .errors import CandidateNotFound
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
    config, store = open_run(run_dir)
    with store:
        if which == "warm-start":
            return "warm start", EvalRequest(family=config.family, candidate="warm-start", **fields)
        if which == "best":
            rows = store.best_candidates(1)
            if not rows:
                raise CandidateNotFound(f"{run_dir} has no candidate with outcome ok, so no 'best'",
                                        fix="name a candidate id, or 'warm-start'")
            row = rows[0]
        else:
            if not str(which).isdigit():
                raise CandidateNotFound(f"candidate {which!r} is not a candidate reference",
                                        fix=f"use an id of {run_dir}, 'best' or 'warm-start'")
            try:
                row = store.candidate(int(which))
            except KeyError as exc:
                raise CandidateNotFound(exc.args[0], fix=f"use an id of a candidate of {run_dir}, "
                                        "'best' or 'warm-start'") from None
    label = f"#{row.id} {row.label or row.kind}"
    if row.kind == "code":
        return label, EvalRequest(family=config.family, code=row.source, **fields)
    if row.kind == "symbolic":
        return label, EvalRequest(family=config.family, expr=row.source, **fields)
    if row.kind == "network":
        return label, EvalRequest(family=config.family, params_file=str(Path(run_dir) / row.params_path),
                                  **fields)
    return label, EvalRequest(family=config.family, candidate="warm-start", **fields)


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
