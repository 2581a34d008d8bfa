"""Terminal summaries of runs (rich tables), read from the store only."""

from __future__ import annotations

import time
from dataclasses import dataclass
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


@dataclass
class RunRow:
    """One line of a runs list (`workbench runs`, the TUI's runs screen)."""

    path: Path
    name: str
    family: str
    method: str
    status: str  # `interrupted`: stored as running, but its owner process is gone
    best: float | None
    candidates: int
    cost: float
    created: float
    owner: dict | None = None


def read_run(path: Path, workspace: Path | None = None) -> RunRow:
    """A run's list row, read through a read-only connection (never writes to a live run)."""
    with RunStore(path, readonly=True) as store:
        info = store.run_info() or {}
        best = store.best_candidates(1)
        n = store._all("SELECT COUNT(*) FROM candidates")[0][0]  # noqa: SLF001 - cheap count
    name = str(path)
    if workspace is not None:
        try:
            name = str(Path(path).relative_to(workspace))
        except ValueError:
            pass
    return RunRow(Path(path), name, info.get("family", "?"), info.get("method", "?"),
                  info.get("status", "?"), best[0].fitness if best else None, int(n),
                  float(info.get("cost_usd", 0.0)), float(info.get("created", 0.0)),
                  info.get("owner"))


def runs_table(run_dirs: Iterable[Path]) -> Table:
    table = Table(title="runs")
    for col in ("run", "family", "method", "status", "best", "candidates", "cost $", "age"):
        table.add_column(col)
    for d in run_dirs:
        r = read_run(d)
        age = time.time() - (r.created or time.time())
        table.add_row(str(d), r.family, r.method, r.status,
                      "-" if r.best is None else f"{r.best:.4f}", str(r.candidates),
                      f"{r.cost:.2f}", f"{age / 3600:.1f} h")
    return table
