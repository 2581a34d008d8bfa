"""One row of a runs list, computed once for `workbench runs` and the TUI's runs screen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .candidate_ref import best_candidate
from .store import RunStore


@dataclass
class RunRow:
    """One line of a runs list (`workbench runs`, the TUI's runs screen)."""

    path: Path
    name: str
    family: str
    method: str
    status: str  # `interrupted`: stored as running, but its owner process is gone
    best: float | None  # the best candidate's fitness (`candidate_ref.best_candidate`)
    candidates: int
    cost: float
    created: float
    owner: dict | None = None
    best_how: str = ""  # what `best` was measured on: "held-out, 16 seeds" / "search, 2 seeds"

    def best_text(self, digits: int = 4) -> str:
        """`best` with what it was measured on, e.g. "0.8123 (held-out, 16 seeds)"; "-" if none."""
        if self.best is None:
            return "-"
        return f"{self.best:.{digits}f}" + (f" ({self.best_how})" if self.best_how else "")


def read_run(path: Path, workspace: Path | None = None) -> RunRow:
    """A run's list row, read through a read-only connection (never writes to a live run);
    `name` is the path relative to `workspace` when given."""
    with RunStore(path, readonly=True) as store:
        info = store.run_info() or {}
        best = best_candidate(store)
        n = store._all("SELECT COUNT(*) FROM candidates")[0][0]  # noqa: SLF001 - cheap count
    name = str(path)
    if workspace is not None:
        try:
            name = str(Path(path).relative_to(workspace))
        except ValueError:
            pass
    return RunRow(Path(path), name, info.get("family", "?"), info.get("method", "?"),
                  info.get("status", "?"), best.fitness if best else None, int(n),
                  float(info.get("cost_usd", 0.0)), float(info.get("created", 0.0)),
                  info.get("owner"), best.how if best else "")
