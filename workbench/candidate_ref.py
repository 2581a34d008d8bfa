"""Which stored candidate a user means, in one place: the run's *best* candidate (one definition,
used by `workbench run`'s summary, `workbench runs`, the TUI's runs list, `compare best`,
`eval --from` and the report) and a reference `ID | best | warm-start` resolved to a candidate.

The best candidate is the one with the highest held-out fitness when finalists were re-scored on
held-out seeds (`workbench.agent.finalists`: seeds never searched on, so no winner's curse), and
the one with the highest search fitness otherwise.  `Best.how` says which, e.g. "held-out,
16 seeds" or "search, 2 seeds", and every display of a best fitness shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .agent.finalists import HELDOUT
from .errors import CandidateNotFound
from .store import CandidateRow, RunStore

HELD_OUT, SEARCH = "held-out", "search"  # what a best fitness was measured on


@dataclass(frozen=True)
class Best:
    """A run's best candidate and the fitness it was chosen by."""

    candidate: CandidateRow
    basis: str  # HELD_OUT or SEARCH
    fitness: float | None  # meta-train fitness on those seeds
    test_fitness: float | None  # meta-test fitness on those seeds
    seeds: int | None = None
    seed: int | None = None

    @property
    def how(self) -> str:
        """What `fitness` was measured on: "held-out, 16 seeds" or "search, 2 seeds"."""
        if not self.seeds:
            return self.basis
        return f"{self.basis}, {self.seeds} seed{'s' if self.seeds != 1 else ''}"


def heldout_fitness(c: CandidateRow) -> float | None:
    return (c.info.get(HELDOUT) or {}).get("fitness")


def ranked(store: RunStore, k: int) -> tuple[str, list[CandidateRow]]:
    """The basis of the ranking (HELD_OUT when any finalist has a held-out score) and the k best
    candidates by it; ties go to the earlier candidate."""
    scored = [c for c in store.candidates_with_info(HELDOUT) if heldout_fitness(c) is not None]
    if scored:
        return HELD_OUT, sorted(scored, key=lambda c: (-heldout_fitness(c), c.id))[:k]
    return SEARCH, store.best_candidates(k)


def best_candidate(store: RunStore) -> Best | None:
    """The run's best candidate (see the module docstring), or None if none finished `ok`."""
    basis, rows = ranked(store, 1)
    if not rows:
        return None
    c = rows[0]
    if basis == HELD_OUT:
        h = c.info[HELDOUT]
        return Best(c, basis, h.get("fitness"), h.get("test_fitness"), h.get("seeds"), h.get("seed"))
    evals = [e for e in store.evaluations(c.id) if e["seed"] != (c.info.get(HELDOUT) or {}).get("seed")]
    seeds = evals[-1]["seeds"] if evals else ((store.run_info() or {}).get("config") or {}).get("seeds")
    return Best(c, basis, c.fitness, c.test_fitness, seeds, evals[-1]["seed"] if evals else None)


@dataclass(frozen=True)
class CandidateRef:
    """A resolved reference: what to call it, and the `EvalRequest` fields that re-create it."""

    label: str  # "warm start", "#7 tanh clip", "#7 tanh clip (best: held-out, 16 seeds)"
    family: str
    fields: dict[str, Any]  # one of candidate / code / expr / params_file
    config: Any  # the run's RunConfig
    best: Best | None = field(default=None, compare=False)


def candidate_fields(run_dir: str | Path, row: CandidateRow) -> dict[str, Any]:
    """The `EvalRequest` fields that score stored candidate `row` of a run again."""
    if row.kind == "code":
        return {"code": row.source}
    if row.kind == "symbolic":
        return {"expr": row.source}
    if row.kind == "network":
        return {"params_file": str(Path(run_dir) / row.params_path)}
    return {"candidate": "warm-start"}


def resolve_candidate(run_dir: str | Path, which: str, pick: str = "its id") -> CandidateRef:
    """Candidate `which` of a run: an id, 'best' (`best_candidate`) or 'warm-start' (the family's
    own).  `CandidateNotFound` says what is wrong; `pick` names how the caller's user gives an id
    (e.g. "--candidate ID")."""
    from .runs import open_run

    config, store = open_run(run_dir)
    best = None
    with store:
        if which == "warm-start":
            return CandidateRef("warm start", config.family, {"candidate": "warm-start"}, config)
        if which == "best":
            best = best_candidate(store)
            if best is None:
                raise CandidateNotFound(f"{run_dir} has no candidate with outcome ok, so no 'best'",
                                        fix=f"pick one with {pick}, or 'warm-start'")
            row = best.candidate
        elif str(which).isdigit():
            try:
                row = store.candidate(int(which))
            except KeyError as exc:
                raise CandidateNotFound(exc.args[0], fix=f"use an id of a candidate of {run_dir}, "
                                        "'best' or 'warm-start'") from None
        else:
            raise CandidateNotFound(f"candidate {which!r} is not a candidate reference",
                                    fix=f"use an id of {run_dir}, 'best' or 'warm-start'")
    label = f"#{row.id} {row.label or row.kind}" + (f" (best: {best.how})" if best else "")
    return CandidateRef(label, config.family, candidate_fields(run_dir, row), config, best)
