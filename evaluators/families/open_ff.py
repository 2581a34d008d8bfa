"""OPEN feed-forward: OPEN's 19 features into an MLP, no recurrence (SPEC §2.2).

Programs see raw inputs and `lr = SGD_LR * (1 - t_p)`; networks and expressions see the
per-tensor-normalised features.  Every update kind is mean-centred (see learned_optimiser).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp

from ..envs import EnvConfig
from ..learned_optimiser import MOMENTUM_NAMES, TensorInputs, make_learned_optimiser
from .base import Algorithm, Family, ppo_drift
from .optimiser_nets import (OPEN_FEATURE_NAMES, MLPHead, actor_noise, named, no_carry,
                             open_features, open_output, program_inputs, zeros_like_tree)

OPEN_FF_SIGNATURE = ("p",) + MOMENTUM_NAMES + ("l_p", "b_p", "t_p", "dorm", "g", "rand", "lr")


def stochastic_gradient_descent(p, m_0_1, m_0_5, m_0_9, m_0_99, m_0_999, m_0_9999,
                                l_p, b_p, t_p, dorm, g, rand, lr):
    update = g * lr
    return update


def lo_algorithm(rule, carry_init, env: EnvConfig) -> Algorithm:
    init, update = make_learned_optimiser(rule, carry_init, env)
    return Algorithm(drift=ppo_drift, opt_init=init, opt_update=update)


@dataclass(frozen=True)
class OpenFFFamily(Family):
    name: str = "open_ff"
    description: str = "OPEN feed-forward learned optimiser (19 features, MLP)"
    normaliser: str = "sgd"
    code_signature: tuple[str, ...] = OPEN_FF_SIGNATURE
    symbol_names: tuple[str, ...] | None = OPEN_FEATURE_NAMES + ("rand",)
    default_hsize: int = 16
    warm_start_name: str = "SGD"

    def _head(self, hsize: int) -> MLPHead:
        return MLPHead(hsize=hsize, outputs=3)

    def init_network(self, key: jax.Array, hsize: int | None = None, zero: bool = True) -> Any:
        params = self._head(hsize or self.default_hsize).init(key, jnp.zeros((len(OPEN_FEATURE_NAMES),)))
        return zeros_like_tree(params) if zero else params

    def warm_start_fn(self) -> Callable[..., Any]:
        return stochastic_gradient_descent

    def network_rule(self, hsize: int | None = None) -> tuple[Callable, Callable]:
        """The per-tensor rule and carry initialiser of a network (distillation drives them directly)."""
        head = self._head(hsize or self.default_hsize)

        def rule(meta, x: TensorInputs, carry):
            return open_output(head.apply(meta, open_features(x)), x), carry
        return rule, no_carry

    def _network_algorithm(self, env: EnvConfig, hsize: int) -> Algorithm:
        return lo_algorithm(*self.network_rule(hsize), env)

    def _code_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        def rule(meta, x: TensorInputs, carry):
            values = program_inputs(x)
            values["lr"] = x.sgd_lr
            return fn(*(values[n] for n in OPEN_FF_SIGNATURE)), carry
        return lo_algorithm(rule, no_carry, env)

    def symbol_inputs(self, x: TensorInputs) -> dict[str, jax.Array]:
        """The named inputs of an expression: the normalised features and the actor noise."""
        values = named(open_features(x), OPEN_FEATURE_NAMES)
        values["rand"] = actor_noise(x)
        return values

    def _symbolic_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        def rule(meta, x: TensorInputs, carry):
            return fn(**self.symbol_inputs(x)), carry
        return lo_algorithm(rule, no_carry, env)


OPEN_FF = OpenFFFamily()
