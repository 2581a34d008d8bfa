"""Terminal summaries of runs (rich tables), read from the store only."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from rich.console import Console
from rich.table import Table

from .agent.finalists import HELDOUT
from .store import RunStore


def _f(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def best_table(store: RunStore, k: int = 5) -> Table:
    """The best candidates by search fitness; with held-out re-scores, those beside them."""
    rows = store.best_candidates(k)
    rows += [c for c in store.candidates() if HELDOUT in c.info and c.id not in {r.id for r in rows}]
    heldout = any(HELDOUT in c.info for c in rows)
    table = Table(title="best candidates" + (" (held-out: fresh seeds, never searched on)" if heldout else ""))
    cols = ["id", "method", "kind", "label", "fitness", "meta-test"]
    cols += ["held-out", "held-out test"] if heldout else []
    for col in cols + ["parents"]:
        table.add_column(col)
    for c in rows:
        h = c.info.get(HELDOUT, {})
        extra = [_f(h.get("fitness")), _f(h.get("test_fitness"))] if heldout else []
        table.add_row(str(c.id), c.method, c.kind, (c.label or "")[:40], _f(c.fitness),
                      _f(c.test_fitness), *extra, ",".join(map(str, c.parents)))
    return table


def print_summary(store: RunStore, console: Console) -> None:
    cands = store.candidates()
    outcomes: dict[str, int] = {}
    for c in cands:
        outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
    console.print(best_table(store))
    console.print("candidates: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


def runs_table(run_dirs: Iterable[Path]) -> Table:
    table = Table(title="runs")
    for col in ("run", "family", "method", "status", "best", "candidates", "cost $", "age"):
        table.add_column(col)
    for d in run_dirs:
        with RunStore(d) as store:
            info = store.run_info() or {}
            best = store.best_candidates(1)
            n = len(store.candidates())
        age = time.time() - info.get("created", time.time())
        table.add_row(str(d), info.get("family", "?"), info.get("method", "?"),
                      info.get("status", "?"), f"{best[0].fitness:.4f}" if best else "-", str(n),
                      f"{info.get('cost_usd', 0):.2f}", f"{age / 3600:.1f} h")
    return table
