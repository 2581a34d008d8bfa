"""What every proposer reads from the run store: the archive of scored programs, the hashes already
stored, and the family's warm start as program text.  Reading them from the store is what makes a
resumed run propose from exactly what was recorded."""

from __future__ import annotations

import inspect
import textwrap

from evaluators.families import Family
from workbench.store import RunStore


def warm_start_source(family: Family) -> str:
    """The family's hand-designed warm start as program text (derived, not duplicated)."""
    return textwrap.dedent(inspect.getsource(family.warm_start_fn()))


def archive(store: RunStore) -> list[tuple[int, str, float, int]]:
    """(id, source, fitness, lineage root) of every scored program, best first."""
    rows = [r for r in store.candidates("ok") if r.source and r.fitness is not None and r.kind == "code"]
    return sorted(((r.id, r.source, float(r.fitness), int(r.info.get("lineage", r.id))) for r in rows),
                  key=lambda x: -x[2])


def known_hashes(store: RunStore) -> set[str]:
    return {r.source_hash for r in store.candidates() if r.source_hash}
