"""Black-box distillation as pure JAX: per-family losses and a jitted training epoch (SPEC §5).

A *task* compares a student network with a fixed teacher on a batch of inputs drawn from a key.
Every step draws a fresh batch from `fold_in(run_key, global_step)` (the original re-seeded its data
RNG every epoch and so reused the same batches: SPEC §10 item 11), which also makes a resumed run
bit-identical: the data of step k depends on k alone.  A fixed test set, drawn once from its own
key, gives the test loss and the variance of the target, so "loss / target variance" is a
scale-free measure of fit.

Tasks, chosen by `Family.teacher_inputs` (the families using each in brackets):
- parameters (open_ff, no_features): MSE between the teacher's and the student's update on a
  batch of synthetic parameters; open_ff's target is the stochastic update, both nets seeing the
  same noise.
- trajectories (open, recurrent): teacher and student GRUs are unrolled on the same synthetic
  gradient sequence, each moving its own parameters; the loss is the MSE of the final parameters
  (backprop through a `lax.scan`).  The target variance is that of the teacher's displacement
  p_T - p_0, since both trajectories start at the same p_0.
- ratio_advantage (lpo): MSE between the gradients w.r.t. the ratio of the per-sample policy loss
  -(r A - drift), at fresh random (ratio, advantage) points (and optionally the whole grid).
  Unlike the original the loss is not divided by the number of points, which made its targets
  ~1e-6.

Instead of synthetic inputs, every family can train on inputs recorded from a real PPO run of the
teacher (`evaluators.recording`, then `recorded_task`): the synthetic distributions are guesses,
the recorded ones are what the teacher actually meets.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from .families import Family
from .learned_optimiser import TensorInputs, rolling_momentum_update
from .recording import RecordedParameters, RecordedTrajectories
from .teacher_data import (HORIZON, SYNTHETIC_SGD_LR, lpo_grid, lpo_random_points,
                           synthetic_tensor_inputs)

TEST_KEY = 50  # the fixed test set's seed (the original drew its test set with PRNGKey(50))
BATCH_PERIOD = 8  # recurrent unrolls: batch_prop = (t mod 8) / 7, as the original


class Batch(NamedTuple):
    """What a loss compares on: inputs (family-specific) and the teacher's target for them."""

    inputs: Any
    target: jax.Array


class DistillTask(NamedTuple):
    """A family's distillation problem for one teacher.

    sample(key) -> Batch draws fresh inputs and the teacher's target; predict(student, inputs) is the
    student's answer of the target's shape; scale(batch) is what the target variance is taken of
    (the target itself, except for recurrent unrolls: the teacher's displacement).
    """

    sample: Callable[[jax.Array], Batch]
    predict: Callable[[Any, Any], jax.Array]
    scale: Callable[[Batch], jax.Array]


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.mean(jnp.square(a - b))


# -- feed-forward optimisers ------------------------------------------------------------------
def _feed_forward_task(family: Family, teacher: Any, teacher_hsize: int, student_hsize: int,
                       draw: Callable[[jax.Array], TensorInputs]) -> DistillTask:
    """`draw(key)` gives one batch of per-parameter inputs, normalised as one notional tensor."""
    t_rule, carry_init = family.network_rule(teacher_hsize)
    s_rule, _ = family.network_rule(student_hsize)

    def sample(key):
        x = draw(key)
        return Batch(x, t_rule(teacher, x, carry_init(x.p))[0])

    def predict(student, x):
        return s_rule(student, x, carry_init(x.p))[0]

    return DistillTask(sample, predict, lambda b: b.target)


# -- recurrent OPEN ---------------------------------------------------------------------------
class Unroll(NamedTuple):
    """One synthetic trajectory: per-step inputs (leading axis: time) and the shared start."""

    p0: jax.Array  # (n,)
    steps: TensorInputs  # every field with a leading time axis; p is a placeholder


def _unroll_inputs(key: jax.Array, n: int, seq_length: int) -> Unroll:
    """Fresh g (and dormancy, noise) each step with the momenta rolled from g; t from a random start."""
    k0, kstart, klayer, kseq = jax.random.split(key, 4)
    x0 = synthetic_tensor_inputs(k0, n)
    start = jax.random.randint(kstart, (n,), 0, HORIZON - seq_length + 1)
    layer_prop = jax.random.randint(klayer, (n,), 0, 3).astype(jnp.float32) / 2.0

    def step(mom, i):
        xi = synthetic_tensor_inputs(jax.random.fold_in(kseq, i), n)
        mom = rolling_momentum_update(mom, xi.g)
        t = (start + i).astype(jnp.float32)
        train_prop = t / (HORIZON - 1)
        lr = SYNTHETIC_SGD_LR * (1.0 - train_prop)
        xi = xi._replace(mom=mom, layer_prop=layer_prop, train_prop=train_prop,
                         batch_prop=jnp.mod(start + i, BATCH_PERIOD).astype(jnp.float32)
                         / (BATCH_PERIOD - 1),
                         iteration=(t + 1.0).mean(), sgd_lr=lr, recur_lr=lr)
        return mom, xi

    _, steps = jax.lax.scan(step, x0.mom, jnp.arange(seq_length))
    return Unroll(x0.p, steps)


def _run_unroll(rule: Callable, carry_init: Callable, meta: Any, unroll: Unroll) -> jax.Array:
    """Apply mean-centred updates of `rule` to p_0 along the unroll; returns the final p."""

    def step(state, xi: TensorInputs):
        p, carry = state
        u, carry = rule(meta, xi._replace(p=p), carry)
        return (p - (u - jnp.mean(u)), carry), None

    (p, _), _ = jax.lax.scan(step, (unroll.p0, carry_init(unroll.p0)), unroll.steps)
    return p


def _recurrent_task(family: Family, teacher: Any, teacher_hsize: int, student_hsize: int,
                    draw: Callable[[jax.Array], Unroll]) -> DistillTask:
    t_rule, t_carry = family.network_rule(teacher_hsize)
    s_rule, s_carry = family.network_rule(student_hsize)

    def sample(key):
        unroll = draw(key)
        return Batch(unroll, _run_unroll(t_rule, t_carry, teacher, unroll))

    def predict(student, unroll):
        return _run_unroll(s_rule, s_carry, student, unroll)

    return DistillTask(sample, predict, lambda b: b.target - b.inputs.p0)


# -- LPO --------------------------------------------------------------------------------------
def lpo_loss_gradient(family: Family, meta: Any, ratio: jax.Array, adv: jax.Array,
                      clip_eps: float) -> jax.Array:
    """d/dr of the per-sample policy loss -(r A - drift(r, A)), at every point."""

    def one(r, a):
        return -(r * a - family.network_drift(meta, r, a, clip_eps))
    return jax.vmap(jax.grad(one))(ratio, adv)


def _lpo_task(family: Family, teacher: Any, batch_size: int, clip_eps: float,
              with_grid: bool) -> DistillTask:
    grid = lpo_grid() if with_grid else None

    def sample(key):
        ratio, adv = lpo_random_points(key, batch_size)
        if grid is not None:
            ratio, adv = jnp.concatenate([ratio, grid[0]]), jnp.concatenate([adv, grid[1]])
        return Batch((ratio, adv), lpo_loss_gradient(family, teacher, ratio, adv, clip_eps))

    def predict(student, inputs):
        return lpo_loss_gradient(family, student, *inputs, clip_eps)

    return DistillTask(sample, predict, lambda b: b.target)


def make_task(family: Family, teacher: Any, teacher_hsize: int, student_hsize: int, *,
              batch_size: int, seq_length: int = 100, clip_eps: float = 0.2,
              with_grid: bool = False) -> DistillTask:
    """The distillation task of `family`, shaped by what its teacher is queried on
    (`Family.teacher_inputs`), so a new family picks a task without an edit here."""
    teacher = jax.lax.stop_gradient(teacher)
    if family.teacher_inputs == "ratio_advantage":
        return _lpo_task(family, teacher, batch_size, clip_eps, with_grid)
    if family.teacher_inputs == "trajectories":
        return _recurrent_task(family, teacher, teacher_hsize, student_hsize,
                               lambda key: _unroll_inputs(key, batch_size, seq_length))
    return _feed_forward_task(family, teacher, teacher_hsize, student_hsize,
                              lambda key: synthetic_tensor_inputs(key, batch_size))


def recorded_lpo_task(family: Family, teacher: Any, ratio: jax.Array, adv: jax.Array,
                      batch_size: int, clip_eps: float) -> DistillTask:
    """LPO on (ratio, advantage) pairs recorded from PPO runs: each step resamples batch_size pairs."""
    ratio, adv = jnp.asarray(ratio, jnp.float32), jnp.asarray(adv, jnp.float32)

    def sample(key):
        idx = jax.random.randint(key, (batch_size,), 0, ratio.shape[0])
        r, a = ratio[idx], adv[idx]
        return Batch((r, a), lpo_loss_gradient(family, teacher, r, a, clip_eps))

    def predict(student, inputs):
        return lpo_loss_gradient(family, student, *inputs, clip_eps)

    return DistillTask(sample, predict, lambda b: b.target)


def recorded_optimiser_task(family: Family, teacher: Any, teacher_hsize: int, student_hsize: int,
                            recorded: RecordedParameters, batch_size: int) -> DistillTask:
    """A feed-forward optimiser on recorded parameters: each step resamples batch_size rows (with
    fresh actor noise), normalised together as one notional tensor like the synthetic batches."""
    data = {k: jnp.asarray(v, jnp.float32) for k, v in recorded._asdict().items()}
    n = data["p"].shape[0]

    def draw(key):
        k_idx, k_noise = jax.random.split(key)
        idx = jax.random.randint(k_idx, (batch_size,), 0, n)
        rows = {k: v[idx] for k, v in data.items()}
        lr = SYNTHETIC_SGD_LR * (1.0 - rows["train_prop"])
        return TensorInputs(**rows, iteration=jnp.ones(()), key=k_noise, sgd_lr=lr, recur_lr=lr)

    return _feed_forward_task(family, jax.lax.stop_gradient(teacher), teacher_hsize, student_hsize,
                              draw)


def recorded_unroll_task(family: Family, teacher: Any, teacher_hsize: int, student_hsize: int,
                         recorded: RecordedTrajectories, batch_size: int, seq_length: int
                         ) -> DistillTask:
    """Recurrent OPEN unrolled on windows of recorded trajectories: each sample takes batch_size
    recorded parameters, each from its own random start, with their real gradients and momenta;
    teacher and student start from the recorded value and move it with their own updates."""
    data = {k: jnp.asarray(v, jnp.float32) for k, v in recorded.steps._asdict().items()}
    iteration = jnp.asarray(recorded.iteration, jnp.float32)
    n_steps, n_params = data["p"].shape
    if n_steps < seq_length:
        raise ValueError(f"the recorded run has {n_steps} optimiser steps, fewer than "
                         f"distill.seq_length = {seq_length}: record a longer run (timesteps) or "
                         f"shorten distill.seq_length")

    def draw(key):
        k_param, k_start, k_noise = jax.random.split(key, 3)
        params = jax.random.randint(k_param, (batch_size,), 0, n_params)
        start = jax.random.randint(k_start, (batch_size,), 0, n_steps - seq_length + 1)
        t = start[None, :] + jnp.arange(seq_length)[:, None]  # (seq_length, batch)
        rows = {k: v[t, params[None, :]] for k, v in data.items()}
        lr = SYNTHETIC_SGD_LR * (1.0 - rows["train_prop"])
        steps = TensorInputs(**rows, iteration=jnp.mean(iteration[t], axis=1),
                             key=jax.random.split(k_noise, seq_length), sgd_lr=lr, recur_lr=lr)
        return Unroll(rows["p"][0], steps)

    return _recurrent_task(family, jax.lax.stop_gradient(teacher), teacher_hsize, student_hsize,
                           draw)


def recorded_task(family: Family, teacher: Any, teacher_hsize: int, student_hsize: int,
                  recorded: Any, batch_size: int, clip_eps: float, seq_length: int = 100
                  ) -> DistillTask:
    """The task on inputs from `evaluators.recording.record_inputs` for the same family (both
    follow `Family.teacher_inputs`, so the recorded data has the shape the task expects)."""
    if family.teacher_inputs == "ratio_advantage":
        return recorded_lpo_task(family, teacher, *recorded, batch_size, clip_eps)
    if family.teacher_inputs == "trajectories":
        return recorded_unroll_task(family, teacher, teacher_hsize, student_hsize, recorded,
                                    batch_size, seq_length)
    return recorded_optimiser_task(family, teacher, teacher_hsize, student_hsize, recorded,
                                   batch_size)


# -- training -----------------------------------------------------------------------------------
class TestSet(NamedTuple):
    batch: Batch
    target_variance: jax.Array


def make_test_set(task: DistillTask, key: jax.Array | None = None) -> TestSet:
    """The fixed test set (drawn once) and the variance of its target."""
    batch = jax.jit(task.sample)(jax.random.key(TEST_KEY) if key is None else key)
    return TestSet(batch, jnp.var(task.scale(batch)))


def make_optimiser(lr: float, lr_stop: float, total_steps: int) -> optax.GradientTransformation:
    """Adam with the learning rate annealed linearly from lr to lr_stop over all steps."""
    return optax.adam(optax.linear_schedule(lr, lr_stop, max(total_steps, 1)))


def make_epoch(task: DistillTask, optimiser: optax.GradientTransformation, iters: int,
               target_variance: float | jax.Array = 1.0
               ) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """Jitted `epoch(params, opt_state, run_key, first_step) -> (params, opt_state, mean loss)`.

    Step k of the whole run trains on `task.sample(fold_in(run_key, k))`.  The gradient is taken of
    MSE / target_variance: optimiser updates are ~1e-3, so their raw MSE (~1e-8) has gradients
    below Adam's epsilon and learning stalls; the returned loss is the raw MSE."""
    scale = jnp.asarray(target_variance, jnp.float32)

    def loss_fn(params, batch: Batch):
        return mse(task.predict(params, batch.inputs), batch.target) / scale

    def step(carry, k):
        params, opt_state, run_key = carry
        batch = task.sample(jax.random.fold_in(run_key, k))
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, run_key), loss

    @jax.jit
    def epoch(params, opt_state, run_key, first_step):
        (params, opt_state, _), losses = jax.lax.scan(
            step, (params, opt_state, run_key), first_step + jnp.arange(iters))
        return params, opt_state, jnp.mean(losses) * scale

    return epoch


def make_test_loss(task: DistillTask, test: TestSet) -> Callable[[Any], jax.Array]:
    @jax.jit
    def test_loss(params):
        return mse(task.predict(params, test.batch.inputs), test.batch.target)
    return test_loss


__all__ = ["Batch", "DistillTask", "TestSet", "make_task", "recorded_lpo_task", "make_test_set",
           "recorded_optimiser_task", "recorded_unroll_task", "recorded_task",
           "make_optimiser", "make_epoch", "make_test_loss", "lpo_loss_gradient"]
