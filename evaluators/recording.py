"""Inputs a teacher actually meets in a real PPO run, recorded for distillation (SPEC §5 option).

Synthetic distillation inputs are guesses at the distributions a learned algorithm sees; these
functions run PPO once with the teacher and keep what its drift or optimiser was asked about.
The PPO loop is untouched: the teacher is wrapped so that a host callback copies its inputs out.

What is kept follows `Family.teacher_inputs`:

- ratio_advantage (lpo): (ratio, advantage) pairs of every policy-loss evaluation.
- parameters (open_ff, no_features): independent rows — the inputs of RECORD_PER_TENSOR random
  parameters of every tensor at every optimiser step.
- trajectories (open, recurrent): the inputs of up to RECORD_PER_TENSOR fixed parameters of every
  tensor over the whole run, so a student can be unrolled on real gradient sequences.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .families import Family
from .families.base import Algorithm, ppo_drift
from .learned_optimiser import TensorInputs, make_learned_optimiser

RECORD_PER_TENSOR = 16  # parameters recorded from every tensor at every optimiser step
_RECORD_SALT = 0x5EED  # folded into each tensor's key, so the sampling is not the actor noise
_FIELDS = ("p", "g", "mom", "dorm", "mask", "layer_prop", "batch_prop", "train_prop")


class RecordedParameters(NamedTuple):
    """Raw optimiser inputs, one row per (parameter, step): (n,) each, mom (n, 6).

    As trajectories (`RecordedTrajectories.steps`) every field has a leading time axis: (T, C)."""

    p: np.ndarray
    g: np.ndarray
    mom: np.ndarray
    dorm: np.ndarray
    mask: np.ndarray  # 1 actor, 0 critic
    layer_prop: np.ndarray
    batch_prop: np.ndarray
    train_prop: np.ndarray


class RecordedTrajectories(NamedTuple):
    """C parameters followed over T optimiser steps; `iteration` (T,) counts steps from 1."""

    steps: RecordedParameters
    iteration: np.ndarray


def _run_teacher(env: Any, algorithm: Algorithm, teacher: Any, seed: int) -> None:
    from .ppo import make_train  # only here: distillation does not otherwise need the RL loop

    train = jax.jit(make_train(env, algorithm))
    jax.block_until_ready(train(jax.random.key(seed), teacher))


def _evenly(n: int, k: int) -> np.ndarray:
    return np.linspace(0, n - 1, min(k, n)).astype(int)


def record_lpo_inputs(family: Family, teacher: Any, teacher_hsize: int, env: Any, seed: int,
                      max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(ratio, advantage) pairs seen by the policy loss; at most `max_points`, evenly spaced."""
    chunks: list[tuple[np.ndarray, np.ndarray]] = []
    algorithm = family.algorithm(family.network(teacher_hsize), env)

    def keep(ratio, adv):
        chunks.append((np.asarray(ratio).reshape(-1), np.asarray(adv).reshape(-1)))

    def drift(meta, ratio, adv, clip_eps):
        jax.debug.callback(keep, jax.lax.stop_gradient(ratio), jax.lax.stop_gradient(adv))
        return algorithm.drift(meta, ratio, adv, clip_eps)

    _run_teacher(env, algorithm._replace(drift=drift), teacher, seed)
    ratio = np.concatenate([c[0] for c in chunks])
    adv = np.concatenate([c[1] for c in chunks])
    keep_idx = _evenly(ratio.size, max_points)
    return ratio[keep_idx], adv[keep_idx]


def _record_optimiser(family: Family, teacher: Any, teacher_hsize: int, env: Any, seed: int,
                      fixed: bool) -> list[tuple[int, int, tuple[np.ndarray, ...]]]:
    """(step, tensor id, fields) for every tensor at every optimiser step of one PPO run.

    fixed=False samples fresh random parameters each time; fixed=True follows the same
    (evenly spaced) parameters of each tensor throughout, for trajectories."""
    rule, carry_init = family.network_rule(teacher_hsize)
    records: list[tuple[int, int, tuple[np.ndarray, ...]]] = []
    traced = [0]  # tensor ids in trace order: the optimiser traces its rule once per tensor

    def recording_rule(meta, x: TensorInputs, carry):
        tensor_id = traced[0]
        traced[0] += 1
        if fixed:
            idx = jnp.asarray(_evenly(x.p.size, RECORD_PER_TENSOR))
        else:
            idx = jax.random.randint(jax.random.fold_in(x.key, _RECORD_SALT), (RECORD_PER_TENSOR,),
                                     0, x.p.size)

        def take(a):
            return jnp.broadcast_to(a, x.p.shape).reshape(-1)[idx].astype(jnp.float32)

        def keep(step, *fields):
            records.append((int(step), tensor_id, tuple(np.asarray(f) for f in fields)))

        jax.debug.callback(keep, x.iteration, take(x.p), take(x.g),
                           x.mom.reshape(-1, x.mom.shape[-1])[idx], take(x.dorm), take(x.mask),
                           take(x.layer_prop), take(x.batch_prop), take(x.train_prop))
        return rule(meta, x, carry)

    init, update = make_learned_optimiser(recording_rule, carry_init, env)
    _run_teacher(env, Algorithm(drift=ppo_drift, opt_init=init, opt_update=update), teacher, seed)
    return records


def record_optimiser_inputs(family: Family, teacher: Any, teacher_hsize: int, env: Any, seed: int,
                            max_points: int) -> RecordedParameters:
    """Independent rows for a feed-forward optimiser; at most `max_points`, evenly spaced."""
    records = _record_optimiser(family, teacher, teacher_hsize, env, seed, fixed=False)
    rows = [np.concatenate(column) for column in zip(*(fields for _, _, fields in records))]
    keep_idx = _evenly(rows[0].shape[0], max_points)
    return RecordedParameters(*(r[keep_idx] for r in rows))


def record_trajectories(family: Family, teacher: Any, teacher_hsize: int, env: Any, seed: int,
                        max_points: int) -> RecordedTrajectories:
    """Fixed parameters followed over the whole run; at most `max_points` = T x C values per field
    (parameters are dropped, evenly, to fit — never steps, which the unrolls need)."""
    records = _record_optimiser(family, teacher, teacher_hsize, env, seed, fixed=True)
    by_tensor: dict[int, list[tuple[int, tuple[np.ndarray, ...]]]] = {}
    for step, tensor_id, fields in records:  # callbacks may arrive in any order: sort them
        by_tensor.setdefault(tensor_id, []).append((step, fields))
    columns = []
    for tensor_id in sorted(by_tensor):
        seq = sorted(by_tensor[tensor_id], key=lambda item: item[0])
        columns.append([np.stack([fields[i] for _, fields in seq]) for i in range(len(_FIELDS))])
    steps = sorted(step for step, _ in by_tensor[min(by_tensor)])
    fields = [np.concatenate([c[i] for c in columns], axis=1) for i in range(len(_FIELDS))]
    keep_cols = _evenly(fields[0].shape[1], max(1, max_points // len(steps)))
    return RecordedTrajectories(RecordedParameters(*(f[:, keep_cols] for f in fields)),
                                np.asarray(steps, np.float32))


def record_inputs(family: Family, teacher: Any, teacher_hsize: int, env: Any, seed: int,
                  max_points: int) -> Any:
    """The family's recorded inputs, shaped by `Family.teacher_inputs` (module docstring)."""
    if family.teacher_inputs == "ratio_advantage":
        return record_lpo_inputs(family, teacher, teacher_hsize, env, seed, max_points)
    if family.teacher_inputs == "trajectories":
        return record_trajectories(family, teacher, teacher_hsize, env, seed, max_points)
    return record_optimiser_inputs(family, teacher, teacher_hsize, env, seed, max_points)


__all__ = ["RecordedParameters", "RecordedTrajectories", "record_inputs",
           "record_lpo_inputs", "record_optimiser_inputs", "record_trajectories"]
