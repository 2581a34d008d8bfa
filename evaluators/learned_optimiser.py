"""Shared machinery of the three learned-optimiser families (open, open_ff, no_features).

The original used two helpers of `learned_optimization` (the rolling-momentum accumulator and the
per-tensor second-moment normaliser).  Its only PyPI release pins a TensorFlow-era stack, so both are
implemented here from their formulas (SPEC §2) and tested against them.

A family supplies one *per-tensor rule* `rule(meta, inputs, carry) -> (update, carry)`; this module
turns it into a whole optimiser: global-norm clipping per network, momentum, the features that are
constant over a tensor (layer/batch/training proportion, dormancy, actor mask, a per-tensor key), the
one mean-centring rule, and `p <- p - u`.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

MOMENTUM_DECAYS = (0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
MOMENTUM_NAMES = ("m_0_1", "m_0_5", "m_0_9", "m_0_99", "m_0_999", "m_0_9999")
STEP_MULT = 1e-3
EXP_MULT = 1e-3


def rolling_momentum_init(params: Any) -> Any:
    """Six zero momenta per parameter, stacked on a trailing axis."""
    return jax.tree.map(lambda p: jnp.zeros(p.shape + (len(MOMENTUM_DECAYS),), p.dtype), params)


def rolling_momentum_update(moms: Any, grads: Any) -> Any:
    """m <- beta * m + (1 - beta) * g for every decay beta (learned_optimization's vec_rolling_mom)."""
    decays = jnp.asarray(MOMENTUM_DECAYS, jnp.float32)
    return jax.tree.map(lambda m, g: decays * m + (1.0 - decays) * g[..., None], moms, grads)


def second_moment_normalise(x: jax.Array, axis: tuple[int, ...], eps: float = 1e-5) -> jax.Array:
    """x / sqrt(eps + mean(x^2)) over the tensor's axes: each feature gets unit RMS per tensor."""
    return x * jax.lax.rsqrt(eps + jnp.mean(jnp.square(x), axis=axis, keepdims=True))


def clip_by_global_norm(tree: Any, max_norm: float) -> Any:
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))
    scale = jnp.minimum(1.0, max_norm / (norm + 1e-12))
    return jax.tree.map(lambda x: x * scale, tree)


def global_mean_centre(updates: Any) -> Any:
    """Subtract the single scalar mean of all updates, actor and critic together (SPEC §2)."""
    leaves = jax.tree.leaves(updates)
    total = sum(jnp.sum(u) for u in leaves)
    count = sum(u.size for u in leaves)
    mean = total / count
    return jax.tree.map(lambda u: u - mean, updates)


class TensorInputs(NamedTuple):
    """Everything a per-tensor rule may look at, for one parameter tensor."""

    p: jax.Array
    g: jax.Array
    mom: jax.Array  # p.shape + (6,)
    dorm: jax.Array  # p.shape, the dormancy of the neuron each parameter feeds
    mask: jax.Array  # scalar: 1 for actor tensors, 0 for critic tensors
    layer_prop: jax.Array  # scalar
    batch_prop: jax.Array  # scalar
    train_prop: jax.Array  # scalar
    iteration: jax.Array  # scalar, optimiser step counting from 1
    key: jax.Array
    sgd_lr: jax.Array  # the env's SGD_LR annealed: SGD_LR * (1 - train_prop)
    recur_lr: jax.Array  # the env's RECUR_LR annealed


class LOState(NamedTuple):
    moms: Any
    carry: Any
    iteration: jax.Array


class UpdateContext(NamedTuple):
    """What the PPO loop tells an optimiser at each minibatch step."""

    train_prop: jax.Array
    batch_prop: jax.Array
    activations: Any  # {"actor": {layer: (neurons,)}, "critic": {...}}
    key: jax.Array


Rule = Callable[[Any, TensorInputs, Any], tuple[jax.Array, Any]]
CarryInit = Callable[[jax.Array], Any]


def _dormancy(stats: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """ReDo-style score a_i / sum_j a_j * N per layer; its mean over a layer is 1."""
    out = {}
    for name, a in stats.items():
        a = a + 1e-11
        out[name] = a / jnp.sum(a) * a.shape[0]
    return out


def _layer_order(net: dict[str, Any]) -> list[str]:
    dense = sorted(k for k in net if k.startswith("Dense_"))
    return dense + [k for k in net if not k.startswith("Dense_")]


def _per_leaf(params: Any, activations: Any) -> tuple[Any, Any, Any]:
    """Layer proportion, actor mask and dormancy broadcast to every parameter tensor."""
    layer_props, masks, dorms = {}, {}, {}
    for net_name, net in params.items():
        order = _layer_order(net)
        dorm = _dormancy(activations[net_name])
        layer_props[net_name], masks[net_name], dorms[net_name] = {}, {}, {}
        for i, layer in enumerate(order):
            prop = jnp.asarray(i / max(len(order) - 1, 1), jnp.float32)
            mask = jnp.asarray(1.0 if net_name == "actor" else 0.0, jnp.float32)
            leaf = net[layer]
            if isinstance(leaf, dict):
                layer_props[net_name][layer] = {k: prop for k in leaf}
                masks[net_name][layer] = {k: mask for k in leaf}
                # kernels (in, out) take the dormancy of their output neuron
                dorms[net_name][layer] = {k: jnp.broadcast_to(dorm[layer], v.shape)
                                          for k, v in leaf.items()}
            else:  # log_std: a single "neuron", dormancy 1
                layer_props[net_name][layer] = prop
                masks[net_name][layer] = mask
                dorms[net_name][layer] = jnp.ones_like(leaf)
    return layer_props, masks, dorms


def make_learned_optimiser(rule: Rule, carry_init: CarryInit, env: Any
                           ) -> tuple[Callable, Callable]:
    """Build (init, update) of a learned optimiser around a per-tensor rule.

    `env` supplies max_grad_norm, sgd_lr and recur_lr.  The global mean-centring of updates is the
    one rule of every optimiser family and every candidate kind (network, code, symbolic).
    """

    def init(meta: Any, params: Any, key: jax.Array) -> LOState:
        del meta, key
        return LOState(moms=rolling_momentum_init(params),
                       carry=jax.tree.map(carry_init, params),
                       iteration=jnp.zeros((), jnp.int32))

    def update(meta: Any, grads: Any, state: LOState, params: Any, ctx: UpdateContext
               ) -> tuple[Any, LOState]:
        grads = {k: clip_by_global_norm(v, env.max_grad_norm) for k, v in grads.items()}
        moms = rolling_momentum_update(state.moms, grads)
        iteration = state.iteration + 1
        layer_props, masks, dorms = _per_leaf(params, ctx.activations)
        treedef = jax.tree.structure(params)
        keys = jax.tree.unflatten(treedef, list(jax.random.split(ctx.key, treedef.num_leaves)))
        anneal = 1.0 - ctx.train_prop

        def one(p, g, m, d, mask, lp, k, carry):
            inputs = TensorInputs(p=p, g=g, mom=m, dorm=d, mask=mask, layer_prop=lp,
                                  batch_prop=ctx.batch_prop, train_prop=ctx.train_prop,
                                  iteration=iteration.astype(jnp.float32), key=k,
                                  sgd_lr=env.sgd_lr * anneal, recur_lr=env.recur_lr * anneal)
            u, c = rule(meta, inputs, carry)
            return jnp.broadcast_to(u, p.shape), c

        carry_leaves = treedef.flatten_up_to(state.carry)
        results = [one(*args) for args in zip(
            jax.tree.leaves(params), jax.tree.leaves(grads), treedef.flatten_up_to(moms),
            jax.tree.leaves(dorms), jax.tree.leaves(masks), jax.tree.leaves(layer_props),
            jax.tree.leaves(keys), carry_leaves)]
        updates = jax.tree.unflatten(treedef, [r[0] for r in results])
        carry = jax.tree.unflatten(treedef, [r[1] for r in results])
        updates = global_mean_centre(updates)
        new_params = jax.tree.map(lambda p, u: p - u, params, updates)
        return new_params, LOState(moms=moms, carry=carry, iteration=iteration)

    return init, update
