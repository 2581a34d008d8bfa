"""Symbolic distillation (SPEC §6): regress a teacher's function onto expressions, resumably.

Every epoch draws fresh teacher data from its own key, runs one backend fit that continues the
previous one (warm start), turns the backend's Pareto front into checked expressions over the
family's named inputs (workbench/symbolic/front.py), stores the front as a JSON artefact, and stores
the best-loss and best-score expressions as `symbolic` candidates scored in RL by sandbox workers on
held-out seeds.  The epoch counter lives in the store, so `run` continues after the last finished
epoch; an expression already stored (same text) is not stored or evaluated again.

`symbolic_search` is the plain entry point without a store or RL: teacher (or data) in, front out.
The recurrent OPEN family is refused at once: an expression has no state to carry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
from tqdm import tqdm

from evaluators.envs import get_env_config
from evaluators.families import Family, get_family

from .. import control
from ..agent.scoring import open_pool
from ..config import RunConfig, SymbolicConfig
from ..errors import WorkbenchError
from ..evaluate import EvalResult, record_result, resolve_envs
from ..params_io import atomic_write_text
from ..store import RunStore
from ..symbolic.backends import Backend, search_settings, select_backend
from ..symbolic.data import RegressionData, make_data
from ..symbolic.front import Member, Rejected, build_front, front_table, select, summary_loss
from ..teachers import Teacher, record_teacher, resolve_teacher

EPOCH_KEY = "symbolic.epoch"
FRONT_KEY = "symbolic.front"
BACKEND_KEY = "symbolic.backend"
FRONT_DIR = Path("symbolic")
TEACHER_KEY = "symbolic.teacher_candidate"
TEACHER_FILE = Path("params") / "symbolic_teacher.npz"


class SymbolicRefused(WorkbenchError, ValueError):
    """The family has no symbolic form (OPEN is recurrent); raised before anything runs."""

    fix = ("distil OPEN into a network instead (method: distill), or run symbolic on lpo, open_ff "
           "or no_features")


@dataclass
class SymbolicOutcome:
    """One or more fits of `symbolic_search`: the last front, its selections and rejections."""

    backend: str
    backend_reason: str
    front: list[Member]
    selected: dict[str, Member]  # best_loss / best_score
    rejected: list[Rejected] = field(default_factory=list)
    epochs: int = 1


def refuse_if_recurrent(family: Family) -> None:
    if family.symbol_names is None:
        raise SymbolicRefused(f"symbolic distillation of {family.name!r} is not possible: "
                              f"{family.symbolic_refusal}")


def epoch_key(seed: int, epoch: int) -> jax.Array:
    return jax.random.fold_in(jax.random.key(seed), epoch)


def fit_epoch(family: Family, data: RegressionData, backend: Backend, seed: int
              ) -> tuple[list[Member], list[Rejected]]:
    equations = backend.fit(data.fit_X, data.fit_y, data.names, seed)
    return build_front(family, data, equations)


def symbolic_search(family: Family | str, teacher: Teacher | RegressionData,
                    settings: SymbolicConfig | None = None, *, epochs: int = 1, seed: int = 0,
                    clip_eps: float = 0.2, backend: Backend | None = None) -> SymbolicOutcome:
    """Distil `teacher` (or fit given data) for `epochs` fits; no store, no RL.

    With a Teacher, every epoch draws fresh data; with RegressionData, every epoch refits it."""
    family = get_family(family) if isinstance(family, str) else family
    refuse_if_recurrent(family)
    settings = settings or SymbolicConfig()
    reason = "backend given by the caller"
    if backend is None:
        backend, reason = select_backend(settings.backend, search_settings(family.name, settings))
    front: list[Member] = []
    rejected: list[Rejected] = []
    for epoch in range(epochs):
        data = teacher if isinstance(teacher, RegressionData) else make_data(
            family, teacher, epoch_key(seed, epoch), settings.points, settings.batch_size, clip_eps,
            settings.grad_loss)
        front, rejected = fit_epoch(family, data, backend, seed + epoch)
    return SymbolicOutcome(backend.name, reason, front, select(front), rejected, epochs)


# -- the resumable method --------------------------------------------------------------------------
def _job(config: RunConfig, text: str) -> dict[str, Any]:
    return {"family": config.family, "kind": "symbolic", "source": text, "envs": config.envs,
            "test_envs": config.test_envs, "seeds": config.symbolic.eval_seeds,
            "seed": config.eval_seed, "timesteps": config.timesteps, "num_envs": config.num_envs,
            "label": "symbolic"}


def _evaluate(config: RunConfig, store: RunStore, pool: Any, cid: int, text: str) -> float | None:
    r = pool.evaluate(_job(config, text))
    result = EvalResult(config.family, r.outcome, r.reason, envs=r.envs, test_envs=r.test_envs,
                        fitness=r.fitness, test_fitness=r.test_fitness)
    steps = {e.key: e.steps_per_run for e in resolve_envs([*config.envs, *config.test_envs],
                                                            config.timesteps, config.num_envs)}
    record_result(store, cid, result, config.symbolic.eval_seeds, config.eval_seed, steps)
    store.merge_info(cid, {"isolation": r.isolation})
    return r.fitness


def _source_hash(text: str) -> str:
    return hashlib.sha256(f"symbolic:{text}".encode()).hexdigest()


def _store_selected(config: RunConfig, store: RunStore, pool: Any, epoch: int,
                    selected: dict[str, Member], backend: str, teacher: Teacher) -> dict[str, Any]:
    """Add each selected expression once (deduplicated by text across epochs) and score it."""
    by_text: dict[str, list[str]] = {}
    for how, m in selected.items():
        by_text.setdefault(m.expression, []).append(how)
    report: dict[str, Any] = {}
    for text, hows in by_text.items():
        m = selected[hows[0]]
        earlier = store.find_by_hash(_source_hash(text))
        if earlier is not None and earlier.outcome != "pending":
            for how in hows:
                report[how] = {"id": earlier.id, "fitness": earlier.fitness, "duplicate": True}
            continue
        if earlier is not None:  # stored just before a kill: score that row, do not add a copy
            cid = earlier.id
        else:
            cid = store.add_candidate(
                method="symbolic", kind="symbolic", source=text, source_hash=_source_hash(text),
                label=f"symbolic {'+'.join(hows)}, epoch {epoch + 1}",
                parents=[teacher.candidate_id] if teacher.candidate_id is not None else [],
                generation=epoch + 1,
                info={"complexity": m.complexity, "loss": m.loss, "backend": backend,
                      "selection": "|".join(hows), "constraint_notes": m.notes,
                      "backend_expression": m.backend_expression, "teacher": teacher.label,
                      **({"value_loss": m.value_loss} if m.value_loss is not None else {})})
        fitness = _evaluate(config, store, pool, cid, text)
        for how in hows:
            report[how] = {"id": cid, "fitness": fitness, "duplicate": False}
    return report


def _save_front(store: RunStore, epoch: int, backend: str, front: list[Member],
                rejected: list[Rejected], selected: dict[str, Member]) -> None:
    path = store.run_dir / FRONT_DIR / f"front_epoch{epoch + 1:04d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = front_table(front)
    body = {"epoch": epoch + 1, "backend": backend, "front": table,
            "selected": {k: v.expression for k, v in selected.items()},
            "rejected": [{"backend_expression": r.backend_expression, "reason": r.reason}
                         for r in rejected]}
    atomic_write_text(path, json.dumps(body, indent=1))
    store.add_artefact(f"symbolic front, epoch {epoch + 1}", path,
                       {"epoch": epoch + 1, "backend": backend, "front_size": len(front)})
    store.set_state(FRONT_KEY, {"epoch": epoch + 1, "front": table,
                                "selected": body["selected"]})


def _lineage(store: RunStore, family: Family, teacher: Teacher) -> Teacher:
    """The teacher with a candidate id in this run, so every expression names it as its parent.

    A teacher from another run (or a file, or PPO's drift) is copied in once, as an unscored
    `role: teacher` row pointing at its origin; a resume finds that row instead of adding another.
    """
    if teacher.candidate_id is not None:
        return teacher
    cid = store.get_state(TEACHER_KEY)
    if cid is None:
        cid = record_teacher(store, teacher, family.name, "symbolic", TEACHER_FILE)
        store.finish_candidate(cid, "ok", reason="teacher of this run's expressions; "
                               "scored in its own run, not re-scored here")
        store.set_state(TEACHER_KEY, cid)
    return dataclasses.replace(teacher, candidate_id=int(cid))


def run(config: RunConfig, store: RunStore) -> None:
    family = get_family(config.family)
    refuse_if_recurrent(family)
    cfg = config.symbolic
    teacher = _lineage(store, family, resolve_teacher(cfg.teacher, family, store))
    settings = search_settings(family.name, cfg)
    backend, why = select_backend(cfg.backend, settings)
    start = int(store.get_state(EPOCH_KEY, 0) or 0)
    store.set_state(BACKEND_KEY, {"backend": backend.name, "why": why})
    store.emit("symbolic", {"backend": backend.name, "why": why, "teacher": teacher.label,
                            "resumed_at_epoch": start})
    tqdm.write(f"symbolic: backend {backend.name} ({why}); teacher: {teacher.label}"
               + (f"; resuming after epoch {start} (backend population restarts)" if start else ""))
    clip_eps = get_env_config(config.envs[0]).clip_eps if config.envs else 0.2
    bar = tqdm(total=cfg.epochs, initial=min(start, cfg.epochs), desc=f"symbolic {family.name}",
               unit="epoch", dynamic_ncols=True)
    with open_pool(config, spares=1) as pool:
        for epoch in range(start, cfg.epochs):
            data = make_data(family, teacher, epoch_key(config.seed, epoch), cfg.points,
                             cfg.batch_size, clip_eps, cfg.grad_loss)
            front, rejected = fit_epoch(family, data, backend, config.seed + epoch)
            selected = select(front)
            _save_front(store, epoch, backend.name, front, rejected, selected)
            report = _store_selected(config, store, pool, epoch, selected, backend.name, teacher)
            metrics = {"symbolic_best_loss": summary_loss(front), "symbolic_front_size": len(front),
                       "symbolic_rejected": len(rejected)}
            for how, r in report.items():
                if r["fitness"] is not None:
                    metrics[f"symbolic_{how}_fitness"] = r["fitness"]
            store.log_metrics(epoch + 1, metrics)
            store.set_state(EPOCH_KEY, epoch + 1)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['symbolic_best_loss']:.3g}", front=len(front))
            control.report_progress(store, epoch + 1, cfg.epochs, "epoch")
            control.checkpoint(store)
    bar.close()
