"""Terminal summaries of runs (rich tables), read from the store only.

The table `workbench run` ends with fits 80 columns: the best candidates, ranked by the one
definition of best (`candidate_ref`), saying what their fitness was measured on; programs,
parents and per-environment returns are left to `workbench report`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .agent.finalists import HELDOUT
from .candidate_ref import HELD_OUT, best_candidate, ranked
from .run_rows import read_run
from .store import RunStore

LABEL_CHARS = 20  # a longer label is cut (the report shows it whole)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def best_table(store: RunStore, k: int = 5) -> Table:
    """The k best candidates by `candidate_ref.ranked`: held-out fitness when finalists were
    re-scored (then their search fitness beside it), else search fitness."""
    basis, rows = ranked(store, k)
    best = best_candidate(store)
    how = best.how if best else basis
    table = Table(title=f"best candidates (ranked by {how})", title_justify="left")
    heldout = basis == HELD_OUT
    cols = ["id", "kind", "label"] + (["held-out", "h-o test", "search"] if heldout
                                      else ["fitness", "meta-test"])
    for col in cols:
        table.add_column(col, no_wrap=True, justify="right" if col not in ("kind", "label") else "left")
    for c in rows:
        h = c.info.get(HELDOUT) or {}
        scores = ([h.get("fitness"), h.get("test_fitness"), c.fitness] if heldout
                  else [c.fitness, c.test_fitness])
        table.add_row(str(c.id), c.kind, escape((c.label or "")[:LABEL_CHARS]), *map(_f, scores))
    return table


def print_summary(store: RunStore, console: Console) -> None:
    outcomes: dict[str, int] = {}
    for c in store.candidates():
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
    console.print(best_table(store))
    best = best_candidate(store)
    if best is not None:
        console.print(f"best: #{best.candidate.id}, fitness {_f(best.fitness)} ({best.how})")
    console.print("candidates: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    console.print(f"details: workbench report {store.run_dir}")


def runs_table(run_dirs: Iterable[Path]) -> Table:
    """`workbench runs`: one `run_rows.RunRow` per run."""
    table = Table(title="runs")
    for col in ("run", "family", "method", "status", "best", "candidates", "cost $", "age"):
        table.add_column(col)
    for d in run_dirs:
        r = read_run(d)
        age = time.time() - (r.created or time.time())
        table.add_row(str(d), r.family, r.method, r.status, r.best_text(), str(r.candidates),
                      f"{r.cost:.2f}", f"{age / 3600:.1f} h")
    return table
