"""Where a distillation teacher comes from: a stored network candidate, a parameter file, or the
family's warm start where its zero network is that warm start (`Family.zero_network_is_warm_start`;
LPO: PPO's clip drift is the zero network, so it is a valid teacher).

One resolver for `distill` and `symbolic`, so `teacher:` means the same thing in both sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

from evaluators.families import Family

from .errors import WorkbenchError
from .params_io import load_params, save_params
from .store import RunStore


class TeacherError(WorkbenchError, ValueError):
    """A teacher spec that cannot be resolved; the message says what to write instead."""


@dataclass
class Teacher:
    params: Any
    hsize: int
    kind: str  # "network" | "warm_start"
    label: str
    candidate_id: int | None = None  # set when the teacher is a candidate of *this* run (a parent)
    origin: dict[str, Any] | None = None  # {"run": dir, "candidate": id} when it lives in another run


SPEC_HELP = ("teacher: RUN_DIR, RUN_DIR:ID, RUN_DIR:best, a .npz parameter file, 'warm-start' "
             "(LPO: PPO's clip drift), or leave it empty to use this run's best network candidate")


def _best_network(store: RunStore, family: Family, where: str) -> Any:
    rows = [r for r in store.candidates() if r.kind == "network" and r.params_path]
    ok = [r for r in rows if r.outcome == "ok" and r.fitness is not None]
    if ok:
        return max(ok, key=lambda r: r.fitness)
    if rows:
        return rows[-1]
    raise TeacherError(f"{where} has no network candidate to distil; run `es` first or set {SPEC_HELP}")


def _from_row(row: Any, run_dir: Path, family: Family, same_run: bool) -> Teacher:
    params, fam, hsize = load_params(run_dir / row.params_path)
    if fam != family.name:
        raise TeacherError(f"candidate {row.id} of {run_dir} is a {fam} network, not {family.name}")
    return Teacher(params=params, hsize=hsize, kind="network",
                   label=f"candidate {row.id} of {run_dir.name}: {row.label}",
                   candidate_id=row.id if same_run else None,
                   origin=None if same_run else {"run": str(Path(run_dir).resolve()),
                                                 "candidate": row.id})


def resolve_teacher(spec: str | None, family: Family, store: RunStore) -> Teacher:
    """Resolve `spec` for `family`; relative run and file paths are taken as given (cwd)."""
    if spec in (None, ""):
        return _from_row(_best_network(store, family, "this run"), store.run_dir, family, True)
    if spec in ("warm-start", "warm_start", "ppo"):
        if not family.zero_network_is_warm_start:  # its zero network would be a do-nothing rule
            raise TeacherError(f"{family.name} has no network warm start to distil; {SPEC_HELP}")
        params = family.init_network(jax.random.key(0), family.default_hsize, zero=True)
        return Teacher(params=params, hsize=family.default_hsize, kind="warm_start",
                       label=f"{family.warm_start_name} (zero {family.name} network)")
    path, _, which = spec.partition(":")
    p = Path(path)
    if p.suffix == ".npz" and not which:
        if not p.is_file():
            raise TeacherError(f"teacher file {p} does not exist; {SPEC_HELP}")
        try:
            params, fam, hsize = load_params(p)
        except ValueError as exc:
            raise TeacherError(str(exc)) from None
        if fam != family.name:
            raise TeacherError(f"{p} holds a {fam} network, not {family.name}")
        return Teacher(params=params, hsize=hsize, kind="network", label=f"file {p.name}",
                       origin={"file": str(p.resolve())})
    if not (p / "run.sqlite").is_file():
        raise TeacherError(f"teacher {spec!r}: {p} is neither a run directory nor a .npz file; {SPEC_HELP}")
    same = p.resolve() == Path(store.run_dir).resolve()
    other = store if same else RunStore(p, readonly=True)
    try:
        if which in ("", "best"):
            row = _best_network(other, family, str(p))
        else:
            try:
                row = other.candidate(int(which))
            except (ValueError, KeyError):
                raise TeacherError(f"teacher {spec!r}: {which!r} is not a candidate id of {p}") from None
            if row.kind != "network" or not row.params_path:
                raise TeacherError(f"candidate {row.id} of {p} is a {row.kind} candidate, not a network")
        return _from_row(row, p, family, same)
    finally:
        if not same:
            other.close()


def record_teacher(store: RunStore, teacher: Teacher, family: str, method: str,
                   params_file: str | Path) -> int:
    """The teacher's candidate id in `store`, adding a copy when it lives elsewhere.

    Lineage must stay inside one store (parents are ids of the same run), so a teacher from another
    run or a file is stored here as a `role: teacher` row whose `info.origin` points back to where
    it came from; students and expressions then name it as their parent.
    """
    if teacher.candidate_id is not None:
        return teacher.candidate_id
    save_params(store.run_dir / params_file, teacher.params, family, teacher.hsize)
    return store.add_candidate(method=method, kind="network", label=f"teacher: {teacher.label}",
                               params_path=str(params_file), hsize=teacher.hsize,
                               info={"role": "teacher", "teacher_kind": teacher.kind,
                                     **({"origin": teacher.origin} if teacher.origin else {})})
