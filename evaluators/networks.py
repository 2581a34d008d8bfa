"""The agent: separate actor and critic MLPs as plain parameter dicts.

Written as functions over dicts (not flax modules) so that learned optimisers can see the layer
structure (`Dense_0`, `Dense_1`, `Dense_2`, `log_std`) and so that each layer can report its mean
|activation| per neuron, which OPEN's dormancy feature needs.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Params = dict[str, Any]

LAYERS = ("Dense_0", "Dense_1", "Dense_2")


def _activation(name: str):
    return {"tanh": jnp.tanh, "relu": jax.nn.relu}[name]


def orthogonal(key: jax.Array, n_in: int, n_out: int, scale: float) -> jax.Array:
    """The same draw as `jax.nn.initializers.orthogonal`, orthonormalised by Gram-Schmidt.

    jax's initializer calls LAPACK's QR, a custom call whose batched form (many seeds vmapped)
    splits work onto the XLA CPU thread pool from inside that pool: with 256 seeds on 2 cores the
    whole program deadlocks (jaxlib 0.10.2).  Plain matrix ops have no such call.  Each column is
    projected out twice ("twice is enough") to stay orthogonal in float32.
    """
    rows, cols = max(n_in, n_out), min(n_in, n_out)
    a = jax.random.normal(key, (rows, cols), jnp.float32)

    def column(j, q):
        v = a[:, j]
        for _ in range(2):
            v = v - q @ (q.T @ v)
        return q.at[:, j].set(v / jnp.linalg.norm(v))

    q = jax.lax.fori_loop(0, cols, column, jnp.zeros_like(a))
    return scale * (q.T if n_in < n_out else q)


def _dense_init(key: jax.Array, n_in: int, n_out: int, scale: float) -> Params:
    kernel = orthogonal(key, n_in, n_out, scale)
    return {"kernel": kernel, "bias": jnp.zeros((n_out,), jnp.float32)}


def init_mlp(key: jax.Array, n_in: int, hsize: int, n_out: int, head_scale: float) -> Params:
    k0, k1, k2 = jax.random.split(key, 3)
    return {
        "Dense_0": _dense_init(k0, n_in, hsize, float(np.sqrt(2))),
        "Dense_1": _dense_init(k1, hsize, hsize, float(np.sqrt(2))),
        "Dense_2": _dense_init(k2, hsize, n_out, head_scale),
    }


def init_agent(key: jax.Array, obs_dim: int, action_dim: int, hsize: int, continuous: bool
               ) -> Params:
    """Orthogonal(√2) hidden layers, 0.01 actor head, 1.0 critic head, zero biases."""
    ka, kc = jax.random.split(key)
    actor = init_mlp(ka, obs_dim, hsize, action_dim, 0.01)
    if continuous:
        actor["log_std"] = jnp.zeros((action_dim,), jnp.float32)
    return {"actor": actor, "critic": init_mlp(kc, obs_dim, hsize, 1, 1.0)}


def mlp_forward(params: Params, x: jax.Array, activation: str
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Returns the output and, per layer, the mean |activation| of each neuron over the batch.

    Hidden layers report post-activation values, the last layer its raw output (SPEC §2.1).
    """
    act = _activation(activation)
    stats = {}
    h = x
    for name in LAYERS[:-1]:
        h = act(h @ params[name]["kernel"] + params[name]["bias"])
        stats[name] = jnp.mean(jnp.abs(h), axis=tuple(range(h.ndim - 1)))
    out = h @ params[LAYERS[-1]]["kernel"] + params[LAYERS[-1]]["bias"]
    stats[LAYERS[-1]] = jnp.mean(jnp.abs(out), axis=tuple(range(out.ndim - 1)))
    if "log_std" in params:
        stats["log_std"] = jnp.mean(jnp.exp(params["log_std"]))[None]
    return out, stats
