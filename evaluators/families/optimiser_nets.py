"""Networks and features shared by the learned-optimiser families (SPEC §2.1-2.3).

OPEN's 19 per-parameter features, the MLP head (Dense -> LayerNorm -> ReLU, twice, then Dense),
and the output rule u = o0 * 1e-3 * exp(1e-3 * o1) (+ actor-only noise o2 * 1e-3 * eps).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..learned_optimiser import (EXP_MULT, MOMENTUM_NAMES, STEP_MULT, TensorInputs,
                                 second_moment_normalise)

OPEN_FEATURE_NAMES: tuple[str, ...] = (
    ("p",) + tuple(f"sign_{m}" for m in MOMENTUM_NAMES) + tuple(f"log_{m}" for m in MOMENTUM_NAMES)
    + ("sign_g", "log_g", "t_p", "l_p", "b_p", "dorm")
)
NO_FEATURE_NAMES: tuple[str, ...] = ("p",) + MOMENTUM_NAMES + ("g",)


class MLPHead(nn.Module):
    hsize: int
    outputs: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for _ in range(2):
            x = nn.relu(nn.LayerNorm()(nn.Dense(self.hsize)(x)))
        return nn.Dense(self.outputs)(x)


def zeros_like_tree(tree: Any) -> Any:
    return jax.tree.map(jnp.zeros_like, tree)


def _tensor_axes(p: jax.Array) -> tuple[int, ...]:
    return tuple(range(p.ndim))


def _broadcast(value: jax.Array, p: jax.Array) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(value, p.dtype), p.shape)


def open_features(x: TensorInputs) -> jax.Array:
    """The 19 OPEN features of one tensor, shape p.shape + (19,); the first 15 normalised per tensor."""
    eps = 1e-13
    raw = jnp.concatenate([
        x.p[..., None], jnp.sign(x.mom), jnp.log(jnp.abs(x.mom) + eps),
        jnp.sign(x.g)[..., None], jnp.log(jnp.abs(x.g) + eps)[..., None]], axis=-1)
    raw = second_moment_normalise(raw, axis=_tensor_axes(x.p))
    const = jnp.stack([_broadcast(x.train_prop, x.p), _broadcast(x.layer_prop, x.p),
                       _broadcast(x.batch_prop, x.p), x.dorm.astype(x.p.dtype)], axis=-1)
    return jnp.concatenate([raw, const], axis=-1)


def no_features(x: TensorInputs) -> jax.Array:
    """[p, m x 6, g] normalised per tensor: shape p.shape + (8,)."""
    raw = jnp.concatenate([x.p[..., None], x.mom, x.g[..., None]], axis=-1)
    return second_moment_normalise(raw, axis=_tensor_axes(x.p))


def actor_noise(x: TensorInputs) -> jax.Array:
    """N(0, 1) noise for actor tensors, zeros for critic tensors (per-tensor key)."""
    return jax.random.normal(x.key, x.p.shape, x.p.dtype) * x.mask


def open_output(o: jax.Array, x: TensorInputs) -> jax.Array:
    update = o[..., 0] * STEP_MULT * jnp.exp(o[..., 1] * EXP_MULT)
    return update + o[..., 2] * STEP_MULT * actor_noise(x)


def no_features_output(o: jax.Array) -> jax.Array:
    return o[..., 0] * STEP_MULT * jnp.exp(o[..., 1] * EXP_MULT)


def named(features: jax.Array, names: tuple[str, ...]) -> dict[str, jax.Array]:
    return {n: features[..., i] for i, n in enumerate(names)}


def program_inputs(x: TensorInputs) -> dict[str, jax.Array]:
    """Raw (unnormalised) inputs handed to an optimiser program, each of the tensor's shape."""
    values = {"p": x.p, "g": x.g, "l_p": _broadcast(x.layer_prop, x.p),
              "b_p": _broadcast(x.batch_prop, x.p), "t_p": _broadcast(x.train_prop, x.p),
              "dorm": x.dorm.astype(x.p.dtype), "rand": actor_noise(x)}
    values.update({m: x.mom[..., i] for i, m in enumerate(MOMENTUM_NAMES)})
    return values


def zero_carry(p: jax.Array) -> jax.Array:
    return jnp.zeros_like(p)


def no_carry(p: jax.Array) -> jax.Array:
    return jnp.zeros((), p.dtype)
