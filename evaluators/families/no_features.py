"""No-Features learned optimiser: an MLP over [p, six momenta, g] only (SPEC §2.3).

Expressions see the same per-tensor-normalised inputs as the network they are distilled from (the
original fed them raw values at evaluation: SPEC §10 item 3).  Programs see raw values and
`lr = SGD_LR * (1 - t_p)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

from ..envs import EnvConfig
from ..learned_optimiser import MOMENTUM_NAMES, TensorInputs
from .base import Algorithm, Family
from .open_ff import lo_algorithm
from .optimiser_nets import (NO_FEATURE_NAMES, MLPHead, named, no_carry, no_features,
                             no_features_output, program_inputs, zeros_like_tree)

NO_FEATURES_SIGNATURE = ("p",) + MOMENTUM_NAMES + ("g", "lr")


def stochastic_gradient_descent(p, m_0_1, m_0_5, m_0_9, m_0_99, m_0_999, m_0_9999, g, lr):
    update = g * lr
    return update


@dataclass(frozen=True)
class NoFeaturesFamily(Family):
    name: str = "no_features"
    description: str = "learned optimiser without OPEN's features (p, momenta, g)"
    normaliser: str = "sgd"
    code_signature: tuple[str, ...] = NO_FEATURES_SIGNATURE
    symbol_names: tuple[str, ...] | None = NO_FEATURE_NAMES
    default_hsize: int = 16
    warm_start_name: str = "SGD"

    def _head(self, hsize: int) -> MLPHead:
        return MLPHead(hsize=hsize, outputs=2)

    def init_network(self, key: jax.Array, hsize: int | None = None, zero: bool = True) -> Any:
        params = self._head(hsize or self.default_hsize).init(key, jnp.zeros((len(NO_FEATURE_NAMES),)))
        return zeros_like_tree(params) if zero else params

    def warm_start_fn(self) -> Callable[..., Any]:
        return stochastic_gradient_descent

    def network_rule(self, hsize: int | None = None) -> tuple[Callable, Callable]:
        """The per-tensor rule and carry initialiser of a network (distillation drives them directly)."""
        head = self._head(hsize or self.default_hsize)

        def rule(meta, x: TensorInputs, carry):
            return no_features_output(head.apply(meta, no_features(x))), carry
        return rule, no_carry

    def _network_algorithm(self, env: EnvConfig, hsize: int) -> Algorithm:
        return lo_algorithm(*self.network_rule(hsize), env)

    def _code_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        def rule(meta, x: TensorInputs, carry):
            values = program_inputs(x)
            values["lr"] = x.sgd_lr
            return fn(*(values[n] for n in NO_FEATURES_SIGNATURE)), carry
        return lo_algorithm(rule, no_carry, env)

    def symbol_inputs(self, x: TensorInputs) -> dict[str, jax.Array]:
        """The named inputs of an expression: the same normalised features as the network's."""
        return named(no_features(x), NO_FEATURE_NAMES)

    def _symbolic_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        def rule(meta, x: TensorInputs, carry):
            return fn(**self.symbol_inputs(x)), carry
        return lo_algorithm(rule, no_carry, env)


NO_FEATURES = NoFeaturesFamily()
