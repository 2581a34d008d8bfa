"""Inputs on which a teacher is queried for distillation and symbolic regression (SPEC §5-§6).

Pure functions of a key: callers draw fresh data every step (the original re-seeded the data RNG
every epoch and so reused the same batches: SPEC §10 item 11).  A batch of synthetic optimiser
inputs is one notional tensor, so the per-tensor normalisers see the whole batch, as in the original.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .learned_optimiser import MOMENTUM_DECAYS, TensorInputs

SYNTHETIC_SGD_LR = 1e-3  # lr handed to programs on synthetic data; networks do not see it
HORIZON = 2000  # the notional training length of recurrent unrolls (SPEC §5)


def synthetic_tensor_inputs(key: jax.Array, n: int) -> TensorInputs:
    """n synthetic parameters: p ~ N(0,1), g and each momentum ~ N(0,0.5^2), dormancy clip(N(1,1),0,10),
    layer proportion in {0, .5, 1}, training and batch proportions ~ U(0,1); all actor (noise on)."""
    kp, kg, km, kd, kl, kt, kb, kn = jax.random.split(key, 8)
    train_prop = jax.random.uniform(kt, (n,))
    return TensorInputs(
        p=jax.random.normal(kp, (n,)),
        g=0.5 * jax.random.normal(kg, (n,)),
        mom=0.5 * jax.random.normal(km, (n, len(MOMENTUM_DECAYS))),
        dorm=jnp.clip(1.0 + jax.random.normal(kd, (n,)), 0.0, 10.0),
        mask=jnp.ones(()),
        layer_prop=jax.random.randint(kl, (n,), 0, 3).astype(jnp.float32) / 2.0,
        batch_prop=jax.random.uniform(kb, (n,)),
        train_prop=train_prop,
        iteration=jnp.ones(()),
        key=kn,
        sgd_lr=SYNTHETIC_SGD_LR * (1.0 - train_prop),
        recur_lr=SYNTHETIC_SGD_LR * (1.0 - train_prop),
    )


def lpo_grid(side: int = 1024, adv_scale: float = 64.0, log_ratio_scale: float = 256.0
             ) -> tuple[jax.Array, jax.Array]:
    """The deterministic (ratio, advantage) grid, flattened: A = k/adv_scale, r = exp(k/log_ratio_scale)
    for k in [-side/2, side/2).  Defaults are distillation's grid; symbolic regression uses 128 / 512."""
    k = jnp.arange(-side // 2, side // 2, dtype=jnp.float32)
    ratio, adv = jnp.meshgrid(jnp.exp(k / log_ratio_scale), k / adv_scale, indexing="ij")
    return ratio.reshape(-1), adv.reshape(-1)


def lpo_random_points(key: jax.Array, n: int, max_log_ratio: float = 2.0, max_adv: float = 8.0
                      ) -> tuple[jax.Array, jax.Array]:
    """n random (ratio, advantage) points over the grid's range, for fresh data at every step."""
    kr, ka = jax.random.split(key)
    ratio = jnp.exp(jax.random.uniform(kr, (n,), minval=-max_log_ratio, maxval=max_log_ratio))
    adv = jax.random.uniform(ka, (n,), minval=-max_adv, maxval=max_adv)
    return ratio, adv
