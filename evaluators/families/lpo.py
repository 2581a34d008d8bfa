"""LPO: a learned drift function inside PPO's Mirror-Learning objective (SPEC §2.4).

One rule for every candidate kind: the raw drift is clamped with relu, and a network is a residual
on top of PPO's clip drift, so a zero network *is* PPO.  The original subtracted an offset of 1e-4
(black-box) or 1e-6 (distillation, symbolic); here there is one offset, `drift_offset`, 0 by default,
so that the zero network reproduces the PPO objective exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ..envs import EnvConfig
from .base import (Algorithm, Candidate, Family, SymbolicDefaults, TeacherInputs, make_adam,
                   ppo_clip_drift)


def ppo_clip(ratio, advantage, epsilon):
    ratio_clip = ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)
    ratio_adv = ratio_clip * advantage
    drift = jax.nn.relu(ratio_adv)
    return drift


def drift_features(ratio: jax.Array, advantage: jax.Array) -> jax.Array:
    """[r-1, (r-1)^2, log r, (log r)^2] and the same four times A: 8 inputs, all 0 at r = 1."""
    rm1 = ratio - 1.0
    log_r = jnp.log(ratio)
    base = jnp.stack([rm1, rm1 ** 2, log_r, log_r ** 2], axis=-1)
    return jnp.concatenate([base, base * advantage[..., None]], axis=-1)


def drift_network(meta: Any, ratio: jax.Array, advantage: jax.Array) -> jax.Array:
    """Dense(hsize, no bias) -> tanh -> Dense(1, no bias): exactly 0 at r = 1."""
    h = jnp.tanh(drift_features(ratio, advantage) @ meta["w1"])
    return (h @ meta["w2"])[..., 0]


@dataclass(frozen=True)
class LPOFamily(Family):
    name: str = "lpo"
    description: str = "learned drift function for PPO (Mirror Learning)"
    normaliser: str = "ppo"
    code_signature: tuple[str, ...] = ("ratio", "advantage", "epsilon")
    symbol_names: tuple[str, ...] | None = ("r", "A", "epsilon", "log_r", "r_minus_1")
    default_hsize: int = 128
    warm_start_name: str = "PPO clip drift"
    drift_offset: float = 0.0
    # the drift network has no biases and tanh is odd, so w -> -w leaves it unchanged: from the
    # all-zero mean, antithetic ES pairs score identically (see Family.es_start)
    es_init: Literal["zero", "zero_output"] = "zero_output"
    teacher_inputs: TeacherInputs = "ratio_advantage"
    zero_network_is_warm_start: bool = True
    report_figure: Literal["drift"] | None = "drift"
    # SPEC §6, LPO column: a drift of (r, A) is small; 64-bit PySR and little crossover
    symbolic_defaults: SymbolicDefaults = SymbolicDefaults(
        operators=("*", "/", "max", "min", "+", "-", "square", "neg", "tanh", "abs"),
        maxsize=40, maxdepth=8, iterations=1, populations=None, precision=64,
        crossover_probability=0.01)

    def init_network(self, key: jax.Array, hsize: int | None = None, zero: bool = True) -> Any:
        hsize = hsize or self.default_hsize
        if zero:
            return {"w1": jnp.zeros((8, hsize)), "w2": jnp.zeros((hsize, 1))}
        k1, k2 = jax.random.split(key)
        init = jax.nn.initializers.lecun_normal()
        return {"w1": init(k1, (8, hsize)), "w2": init(k2, (hsize, 1))}

    def warm_start_fn(self) -> Callable[..., Any]:
        return ppo_clip

    def _zero_output_layer(self, params: Any) -> Any:
        return {**params, "w2": jnp.zeros_like(params["w2"])}

    def _finish(self, raw: jax.Array) -> jax.Array:
        return jax.nn.relu(raw - self.drift_offset)

    def _with_drift(self, env: EnvConfig, drift: Callable) -> Algorithm:
        init, update = make_adam(env)
        return Algorithm(drift=drift, opt_init=init, opt_update=update)

    def network_drift(self, meta: Any, ratio: jax.Array, advantage: jax.Array,
                      clip_eps: float) -> jax.Array:
        """A network's drift: PPO's clip drift plus the residual, clamped (distillation's target)."""
        residual = drift_network(meta, ratio, advantage)
        return self._finish(ppo_clip_drift(ratio, advantage, clip_eps) + residual)

    def _network_algorithm(self, env: EnvConfig, hsize: int) -> Algorithm:
        return self._with_drift(env, self.network_drift)

    def _code_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        def drift(meta, ratio, advantage, clip_eps):
            del meta
            return self._finish(jnp.broadcast_to(fn(ratio, advantage, clip_eps), ratio.shape))
        return self._with_drift(env, drift)

    def expression_drift(self, fn: Callable, ratio: jax.Array, advantage: jax.Array,
                         clip_eps: float) -> jax.Array:
        """A compiled expression's drift, clamped like every drift (what training applies)."""
        out = fn(**symbol_values(ratio, advantage, clip_eps))
        return self._finish(jnp.broadcast_to(out, ratio.shape))

    def symbol_values(self, ratio: jax.Array, advantage: jax.Array, clip_eps: float
                      ) -> dict[str, jax.Array]:
        """The named inputs of an expression at (r, A) (symbolic data builds its columns here)."""
        return symbol_values(ratio, advantage, clip_eps)

    def candidate_probe(self, candidate: Candidate) -> Callable[[], Any] | None:
        """Drift, its gradient in r, and the drift at r = 1 on 256 random (r, A) pairs."""
        if candidate.kind not in ("code", "symbolic") or candidate.fn is None:
            return None
        fn, kind = candidate.fn, candidate.kind

        def drift(ratio, advantage):
            out = (fn(ratio, advantage, 0.2) if kind == "code"
                   else fn(**symbol_values(ratio, advantage, 0.2)))
            return jnp.broadcast_to(jnp.asarray(out, dtype=jnp.float32), ratio.shape)

        def probe():
            key_r, key_a = jax.random.split(jax.random.key(7))
            ratio = jnp.exp(jax.random.uniform(key_r, (256,), minval=-0.6, maxval=0.6))
            adv = jax.random.normal(key_a, (256,)) * 2.0
            grad = jax.grad(lambda r: drift(r, adv).sum())(ratio)
            return drift(ratio, adv), grad, drift(jnp.ones_like(adv), adv)
        return probe

    def probe_verdict(self, outputs: Any) -> str | None:
        """Shape, finite, finite gradient, >= 0, and zero at r = 1 (Mirror Learning's drift)."""
        out, grad, at_one = (np.asarray(x) for x in outputs)
        if out.shape != (256,):
            return f"output shape {out.shape} does not broadcast to the input shape (256,)"
        if not np.all(np.isfinite(out)):
            return "output is not finite (NaN or inf) for ratios in [0.55, 1.8]"
        if not np.all(np.isfinite(grad)):
            return "gradient with respect to ratio is not finite"
        if float(out.min()) < -1e-6:
            return f"drift must be >= 0 everywhere (minimum {float(out.min()):.3g})"
        if float(np.abs(at_one).max()) > 1e-5:
            return f"drift must be 0 at r = 1 (got up to {float(np.abs(at_one).max()):.3g})"
        return None

    def _symbolic_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        def drift(meta, ratio, advantage, clip_eps):
            del meta
            return self.expression_drift(fn, ratio, advantage, clip_eps)
        return self._with_drift(env, drift)


def symbol_values(ratio: jax.Array, advantage: jax.Array, clip_eps: float) -> dict[str, jax.Array]:
    """The named inputs a symbolic LPO expression may use."""
    return {"r": ratio, "A": advantage, "epsilon": jnp.full_like(ratio, clip_eps),
            "log_r": jnp.log(ratio), "r_minus_1": ratio - 1.0}


LPO = LPOFamily()
