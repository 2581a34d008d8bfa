"""Regression data for symbolic distillation: X (named columns) and y from a teacher (SPEC §6).

Every epoch draws its own data from its own key, so successive fits see fresh rows (the original
reused the same batches: SPEC §10 item 11).  The backend fits a `batch_size` subset; the rest is
held out to measure the loss of every expression on the Pareto front the same way for every backend.

- LPO: X = [log_r, r_minus_1, A] on the symbolic grid (A = k/(side/8), r = exp(k/(side/2)), i.e.
  SPEC's 128 / 512 scales at side 1024), epsilon fixed at the env's clip eps.  y = the teacher's
  drift value, or with `gradient=True` its derivative d drift / dr (the teacher's *gradient*
  targets; the original regressed a derivative onto values: SPEC §10 item 2).
- OPEN-FF / NoFeat: X = `family.symbol_inputs` of synthetic tensors (19 features + rand, or the
  8 normalised inputs), y = the teacher network's update.  Updates are ~1e-3, so y is standardised
  for the backend (`y_mean`, `y_scale`) and the expression is mapped back afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from evaluators.families import Family
from evaluators.teacher_data import lpo_grid, synthetic_tensor_inputs

from ..teachers import Teacher

LPO_COLUMNS = ("log_r", "r_minus_1", "A")
MAX_HELD_OUT = 50_000  # rows used to score front expressions (enough for a stable MSE)


@dataclass
class RegressionData:
    """Columns named like the family's symbols; `fit_*` goes to the backend, `test_*` is held out."""

    names: tuple[str, ...]
    fit_X: np.ndarray
    fit_y: np.ndarray  # standardised: (y - y_mean) / y_scale
    test: dict[str, np.ndarray]  # every family symbol the expression may use, held-out rows
    test_y: np.ndarray  # raw targets (not standardised)
    y_mean: float
    y_scale: float
    target: str  # "drift" | "drift_gradient" | "update"
    fixed: dict[str, float]  # inputs held constant (LPO: epsilon)
    test_drift: np.ndarray | None = None  # LPO: held-out drift values (the grad-loss fit's check)

    @property
    def fits_drift(self) -> bool:
        """True when the regressed function is a drift (or its gradient): a drift must be zero at
        r = 1 (Mirror Learning), so the front constrains it.  Read from the data, which the
        family's `teacher_inputs` shaped, so family-like stand-ins need nothing more."""
        return self.target in ("drift", "drift_gradient")


def _split(key: jax.Array, n: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.asarray(jax.random.permutation(key, n))
    fit = perm[:min(batch, n - 1)]
    return fit, perm[len(fit):len(fit) + MAX_HELD_OUT]


def lpo_data(family: Family, teacher: Teacher, key: jax.Array, points: int, batch: int,
             clip_eps: float, gradient: bool = False) -> RegressionData:
    side = max(8, int(math.isqrt(points)) // 2 * 2)
    ratio, adv = lpo_grid(side, adv_scale=side / 8, log_ratio_scale=side / 2)

    def drift(r):
        return family.network_drift(teacher.params, r, adv, clip_eps)
    value = np.asarray(drift(ratio), dtype=np.float64)
    # each drift depends on its own r only, so the gradient of the sum is elementwise
    y = np.asarray(jax.grad(lambda r: drift(r).sum())(ratio), dtype=np.float64) if gradient else value
    values = family.symbol_values(ratio, adv, clip_eps)
    sym = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    fit, held = _split(key, y.size, batch)
    X = np.stack([sym[c][fit] for c in LPO_COLUMNS], axis=1)
    return RegressionData(LPO_COLUMNS, X, y[fit], {k: v[held] for k, v in sym.items()}, y[held],
                          0.0, 1.0, "drift_gradient" if gradient else "drift",
                          {"epsilon": float(clip_eps)}, test_drift=value[held])


def optimiser_data(family: Family, teacher: Teacher, key: jax.Array, points: int, batch: int
                   ) -> RegressionData:
    """OPEN-FF / NoFeat: the teacher's per-parameter update on one synthetic tensor of `points`."""
    k_in, k_split = jax.random.split(key)
    x = synthetic_tensor_inputs(k_in, points)
    rule, carry_init = family.network_rule(teacher.hsize)
    update, _ = rule(teacher.params, x, carry_init(x.p))
    sym = {k: np.asarray(v, dtype=np.float64) for k, v in family.symbol_inputs(x).items()}
    y = np.asarray(update, dtype=np.float64)
    mean, scale = float(y.mean()), float(y.std()) or 1.0
    fit, held = _split(k_split, y.size, batch)
    names = tuple(family.symbol_names)
    X = np.stack([sym[c][fit] for c in names], axis=1)
    return RegressionData(names, X, (y[fit] - mean) / scale, {k: v[held] for k, v in sym.items()},
                          y[held], mean, scale, "update", {})


def make_data(family: Family, teacher: Teacher, key: jax.Array, points: int, batch: int,
              clip_eps: float = 0.2, gradient: bool = False) -> RegressionData:
    """The regression data of `family`'s teacher, shaped by what it is queried on
    (`Family.teacher_inputs`): a drift on the (r, A) grid, or an optimiser on synthetic tensors."""
    if family.teacher_inputs == "ratio_advantage":
        return lpo_data(family, teacher, key, points, batch, clip_eps, gradient)
    if gradient:
        raise ValueError("symbolic.grad_loss applies to drift families (LPO) only (d drift / dr); "
                         "set it to false")
    return optimiser_data(family, teacher, key, points, batch)


def held_out_mse(fn, data: RegressionData, target: np.ndarray | None = None) -> float:
    """MSE of a compiled expression against held-out targets (default the regressed ones; inf if
    the expression is not finite there)."""
    target = data.test_y if target is None else target
    pred = np.asarray(jnp.broadcast_to(fn(**{k: jnp.asarray(v) for k, v in data.test.items()}),
                                       target.shape), dtype=np.float64)
    if not np.all(np.isfinite(pred)):
        return math.inf
    return float(np.mean((pred - target) ** 2))
