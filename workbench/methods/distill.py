"""Black-box distillation (SPEC §5): train a student network to reproduce a teacher, resumably.

The student needs no environment samples to learn: it is fitted on fresh synthetic inputs at every
step (`evaluators.distillation`), and RL is run only to score it.  `distil` is the plain entry point
(typed settings in, typed outcome out); `run` wraps it for a run store: it resolves the teacher once
(persisting it, so a resume never picks a different one), records the teacher as a scored candidate
when it comes from elsewhere, logs losses every epoch, checkpoints the whole training state
atomically, and every `distill.eval_every` epochs stores the student as a `network` candidate scored
on meta-train and meta-test envs with held-out seeds.  A killed run resumes from its last checkpoint
and ends bit-identical to an uninterrupted one (the data of step k is drawn from `fold_in(key, k)`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from evaluators import distillation as D
from evaluators.envs import EnvConfig
from evaluators.families import Family, get_family
from evaluators.recording import record_inputs

from .. import control
from ..config import ConfigError, DistillConfig, RunConfig
from ..evaluate import record_result, resolve_envs, score_candidate
from ..params_io import load_params, save_npz, save_params
from ..store import RunStore
from ..teachers import record_teacher, resolve_teacher

CHECKPOINT = Path("checkpoints") / "distill_state.npz"
TEACHER_FILE = Path("params") / "distill_teacher.npz"
DEFAULT_CLIP_EPS = next(f.default for f in dataclasses.fields(EnvConfig) if f.name == "clip_eps")


@dataclass
class DistillState:
    """Everything training needs to continue: student, Adam state, epochs done, the run's key."""

    params: Any
    opt_state: Any
    epoch: int
    key: np.ndarray  # raw key data of the run key (data of step k: fold_in(key, k))


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    test_loss: float
    test_loss_ratio: float  # test loss / variance of the target on the test set
    lr: float

    def metrics(self) -> dict[str, float]:
        return {"train_loss": self.train_loss, "test_loss": self.test_loss,
                "test_loss_ratio": self.test_loss_ratio, "lr": self.lr}


@dataclass
class DistillOutcome:
    params: Any
    hsize: int
    target_variance: float
    history: list[EpochStats] = field(default_factory=list)

    @property
    def test_loss_ratio(self) -> float:
        return self.history[-1].test_loss_ratio if self.history else float("nan")


def _lr_at(settings: DistillConfig, step: int) -> float:
    total = settings.epochs * settings.iters
    frac = min(step / max(total, 1), 1.0)
    return settings.lr + (settings.lr_stop - settings.lr) * frac


def initial_state(family: Family, student_hsize: int, settings: DistillConfig, key: jax.Array
                  ) -> DistillState:
    """A random student (the family's non-zero init) and a fresh Adam state."""
    k_init, k_run = jax.random.split(key)
    params = family.init_network(k_init, student_hsize, zero=False)
    opt = D.make_optimiser(settings.lr, settings.lr_stop, settings.epochs * settings.iters)
    return DistillState(params, opt.init(params), 0, np.asarray(jax.random.key_data(k_run)))


def distil(family: Family, teacher_params: Any, teacher_hsize: int, student_hsize: int | None = None,
           settings: DistillConfig | None = None, key: jax.Array | None = None, *,
           clip_eps: float = DEFAULT_CLIP_EPS, state: DistillState | None = None,
           recorded: Any = None,
           on_epoch: Callable[[DistillState, EpochStats], None] | None = None) -> DistillOutcome:
    """Distil `teacher_params` into a student of `student_hsize` (default: the teacher's size).

    Continues from `state` when given (a checkpoint), else starts from a random student drawn from
    `key`.  `recorded` (from `evaluators.recording.record_inputs`) trains on inputs recorded
    from a PPO run instead of synthetic ones.  `on_epoch(state, stats)` is called after every epoch (checkpoint, log, evaluate there)."""
    settings = settings or DistillConfig()
    student_hsize = student_hsize or teacher_hsize
    if state is None:
        state = initial_state(family, student_hsize, settings,
                              jax.random.key(0) if key is None else key)
    if recorded is not None:
        task, test_task = (D.recorded_task(family, teacher_params, teacher_hsize, student_hsize,
                                           recorded, n, clip_eps, settings.seq_length)
                           for n in (settings.batch_size, settings.test_points))
    else:  # the test set is drawn from the same kind of data as training, from its own key
        task = D.make_task(family, teacher_params, teacher_hsize, student_hsize,
                           batch_size=settings.batch_size, seq_length=settings.seq_length,
                           clip_eps=clip_eps, with_grid=settings.grid)
        test_task = D.make_task(family, teacher_params, teacher_hsize, student_hsize,
                                batch_size=settings.test_points, seq_length=settings.seq_length,
                                clip_eps=clip_eps)
    test = D.make_test_set(test_task)
    variance = float(test.target_variance)
    optimiser = D.make_optimiser(settings.lr, settings.lr_stop, settings.epochs * settings.iters)
    epoch_fn = D.make_epoch(task, optimiser, settings.iters, max(variance, 1e-30))
    test_loss_fn = D.make_test_loss(test_task, test)
    run_key = jax.random.wrap_key_data(jnp.asarray(state.key))
    outcome = DistillOutcome(state.params, student_hsize, variance)
    while state.epoch < settings.epochs:
        params, opt_state, train_loss = epoch_fn(state.params, state.opt_state, run_key,
                                                 state.epoch * settings.iters)
        state = DistillState(params, opt_state, state.epoch + 1, state.key)
        test_loss = float(test_loss_fn(params))
        stats = EpochStats(state.epoch, float(train_loss), test_loss,
                           test_loss / variance if variance > 0 else float("nan"),
                           _lr_at(settings, state.epoch * settings.iters))
        outcome.history.append(stats)
        outcome.params = params
        if on_epoch is not None:
            on_epoch(state, stats)
    outcome.params = state.params
    return outcome


# -- checkpoints ----------------------------------------------------------------------------------
def save_checkpoint(run_dir: Path, state: DistillState) -> Path:
    """Atomically write the state: leaves of (params, opt_state) in tree order, epoch and key."""
    leaves = jax.tree.leaves((state.params, state.opt_state))
    return save_npz(run_dir / CHECKPOINT, {"epoch": np.asarray(state.epoch), "key": np.asarray(state.key),
                                           **{f"leaf_{i:04d}": np.asarray(x) for i, x in enumerate(leaves)}})


def load_checkpoint(run_dir: Path, template: DistillState) -> DistillState | None:
    """The saved state, shaped like `template` (a fresh state of the same student and optimiser)."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    treedef = jax.tree.structure((template.params, template.opt_state))
    with np.load(path) as data:
        names = sorted(k for k in data.files if k.startswith("leaf_"))
        leaves = [jnp.asarray(data[k]) for k in names]
        epoch, key = int(data["epoch"]), data["key"]
    expected = jax.tree.leaves((template.params, template.opt_state))
    if len(leaves) != len(expected) or any(a.shape != b.shape for a, b in zip(leaves, expected)):
        raise ConfigError(f"{path} does not match distill.hsize of this run's config; "
                          f"restore the config or delete the checkpoint to start over")
    params, opt_state = jax.tree.unflatten(treedef, leaves)
    return DistillState(params, opt_state, epoch, key)


# -- the method ----------------------------------------------------------------------------------
def _teacher(config: RunConfig, family: Family, store: RunStore, envs: tuple[list, list],
             cache: dict) -> tuple[Any, int, int | None]:
    """(params, hsize, candidate id) of the teacher, resolved once and kept in the run directory."""
    info = store.get_state("distill_teacher")
    if info is None:
        t = resolve_teacher(config.distill.teacher, family, store)
        own = t.candidate_id is None  # from elsewhere: recorded here, so the report compares both
        cid = record_teacher(store, t, family.name, "distill", TEACHER_FILE)  # writes the file then
        if not own:
            save_params(store.run_dir / TEACHER_FILE, t.params, family.name, t.hsize)
        info = {"candidate_id": cid, "hsize": t.hsize, "label": t.label, "scored": not own}
        store.set_state("distill_teacher", info)
    params, _, hsize = load_params(store.run_dir / TEACHER_FILE)
    if not info["scored"]:
        _score(config, store, family, info["candidate_id"], params, hsize, config.eval_seed, envs, cache)
        store.set_state("distill_teacher", {**info, "scored": True})
    return params, hsize, info["candidate_id"]


def _score(config, store, family, cid, params, hsize, seed, envs, cache):
    train_envs, test_envs = envs
    result = score_candidate(family, family.network(hsize), params, train_envs, test_envs,
                             config.seeds, seed, cache=cache)
    record_result(store, cid, result, config.seeds, seed,
                  {e.key: e.steps_per_run for e in train_envs + test_envs})
    return result


def _record_student(config, store, family, state, hsize, parent, stats, envs, cache) -> None:
    """Store the student of this epoch as a network candidate and score it on held-out seeds."""
    rel = Path("params") / f"distill_student_epoch{state.epoch:05d}.npz"
    save_params(store.run_dir / rel, state.params, family.name, hsize)
    # a kill between recording and finishing leaves a pending row: finish that one, not a copy
    existing = [c for c in store.candidates() if c.method == "distill" and c.generation == state.epoch
                and c.info.get("role") == "student"]
    cid = existing[0].id if existing else store.add_candidate(
        method="distill", kind="network", label=f"distilled student, epoch {state.epoch}",
        params_path=str(rel), hsize=hsize, parents=[parent] if parent else [],
        generation=state.epoch, info={"role": "student", **stats.metrics()})
    seed = config.eval_seed + state.epoch
    params = jax.tree.map(np.asarray, state.params)  # host arrays, as the teacher's (see _score)
    result = _score(config, store, family, cid, params, hsize, seed, envs, cache)
    if result.fitness is not None:
        store.log_metrics(state.epoch, {"student_eval_fitness": result.fitness,
                                        **({"student_eval_test_fitness": result.test_fitness}
                                           if result.test_fitness is not None else {})})
    store.set_state("distill_last_recorded_epoch", state.epoch)


def run(config: RunConfig, store: RunStore) -> None:
    """Start or resume the distillation of this run (see the module docstring)."""
    family = get_family(config.family)
    cfg = config.distill
    envs = (resolve_envs(config.envs, config.timesteps, config.num_envs),
            resolve_envs(config.test_envs, config.timesteps, config.num_envs))
    unrolled = family.teacher_inputs == "trajectories"  # only unrolls need seq_length steps
    if cfg.data == "recorded" and unrolled and envs[0][0].optimiser_steps < cfg.seq_length:
        raise ConfigError(f"distill.data: recorded: a PPO run of {envs[0][0].key} at these timesteps "
                          f"has {envs[0][0].optimiser_steps} optimiser steps, fewer than "
                          f"distill.seq_length = {cfg.seq_length}; raise timesteps or lower "
                          f"distill.seq_length")
    cache: dict = {}  # compiled RL evaluators, shared by the teacher and every student
    teacher, teacher_hsize, parent = _teacher(config, family, store, envs, cache)
    hsize = cfg.hsize or teacher_hsize
    fresh = initial_state(family, hsize, cfg, jax.random.key(config.seed))
    state = load_checkpoint(store.run_dir, fresh) or fresh

    def due(epoch: int) -> bool:
        return epoch % cfg.eval_every == 0 or epoch == cfg.epochs

    if state.epoch and due(state.epoch) and store.get_state("distill_last_recorded_epoch") != state.epoch:
        # a kill after the checkpoint, before its student was scored
        last = EpochStats(state.epoch, *(float("nan"),) * 3, _lr_at(cfg, state.epoch * cfg.iters))
        _record_student(config, store, family, state, hsize, parent, last, envs, cache)
    if state.epoch >= cfg.epochs:
        return
    recorded = None
    if cfg.data == "recorded":
        recorded = record_inputs(family, teacher, teacher_hsize, envs[0][0], config.seed,
                                 cfg.record_points)
    bar = tqdm(total=cfg.epochs, initial=state.epoch, desc=f"distill {config.family}", unit="epoch",
               dynamic_ncols=True)

    def on_epoch(new: DistillState, stats: EpochStats) -> None:
        store.log_metrics(stats.epoch, stats.metrics())
        save_checkpoint(store.run_dir, new)
        store.set_state("distill_epoch", new.epoch)
        bar.update(1)
        bar.set_postfix(test_ratio=f"{stats.test_loss_ratio:.2e}")
        control.report_progress(store, stats.epoch, cfg.epochs, "epoch")
        if due(stats.epoch):
            _record_student(config, store, family, new, hsize, parent, stats, envs, cache)
        control.checkpoint(store)  # pause here, or stop with the state just saved

    try:
        distil(family, teacher, teacher_hsize, hsize, cfg, state=state, recorded=recorded,
               clip_eps=envs[0][0].clip_eps if envs[0] else DEFAULT_CLIP_EPS, on_epoch=on_epoch)
    finally:
        bar.close()
