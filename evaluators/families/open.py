"""OPEN: the recurrent learned optimiser, a per-parameter GRU feeding an MLP (SPEC §2.1).

Programs keep the original interface `f(p, m_0_1, ..., g, rand, lr, iteration, var) -> (update, var)`
with `lr = RECUR_LR * (1 - t_p)` and a per-parameter carry `var` starting at zero.  No symbolic form:
an expression has no state to carry, which is the paper's finding that symbolic distillation does
not scale to recurrent algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..envs import EnvConfig
from ..learned_optimiser import MOMENTUM_NAMES, TensorInputs
from .base import Algorithm, Family, TeacherInputs
from .open_ff import lo_algorithm
from .optimiser_nets import (OPEN_FEATURE_NAMES, MLPHead, open_features, open_output,
                             program_inputs, zero_carry, zeros_like_tree)

OPEN_SIGNATURE = (("p",) + MOMENTUM_NAMES
                  + ("l_p", "b_p", "t_p", "dorm", "g", "rand", "lr", "iteration", "var"))


def Adam(p, m_0_1, m_0_5, m_0_9, m_0_99, m_0_999, m_0_9999, l_p, b_p, t_p, dorm, g, rand, lr,
         iteration, var):
    var = (1 - 0.999) * jnp.square(g) + 0.999 * var
    var_hat = var / (1 - 0.999 ** iteration)
    m_hat = m_0_9 / (1 - 0.9 ** iteration)
    adam = m_hat / jnp.sqrt(var_hat + 1e-8)
    update = adam * lr
    return update, var


@dataclass(frozen=True)
class OpenFamily(Family):
    name: str = "open"
    description: str = "OPEN recurrent learned optimiser (GRU + MLP over 19 features)"
    normaliser: str = "ppo"
    code_signature: tuple[str, ...] = OPEN_SIGNATURE
    code_returns_carry: bool = True
    symbol_names: tuple[str, ...] | None = None
    symbolic_refusal: str = ("OPEN is recurrent: an expression cannot carry the GRU state; "
                             "distil to open_ff first, or use the code form with `var`")
    default_hsize: int = 16
    warm_start_name: str = "Adam"
    teacher_inputs: TeacherInputs = "trajectories"  # the GRU carry must be unrolled

    def _nets(self, hsize: int) -> tuple[nn.GRUCell, MLPHead]:
        return nn.GRUCell(features=hsize // 2), MLPHead(hsize=hsize, outputs=3)

    def init_network(self, key: jax.Array, hsize: int | None = None, zero: bool = True) -> Any:
        hsize = hsize or self.default_hsize
        gru, head = self._nets(hsize)
        k1, k2 = jax.random.split(key)
        carry = jnp.zeros((hsize // 2,))
        params = {"params": head.init(k1, carry),
                  "gru_params": gru.init(k2, carry, jnp.zeros((len(OPEN_FEATURE_NAMES),)))}
        return zeros_like_tree(params) if zero else params

    def warm_start_fn(self) -> Callable[..., Any]:
        return Adam

    def network_rule(self, hsize: int | None = None) -> tuple[Callable, Callable]:
        """The per-tensor rule (GRU step + head) and its zero carry; distillation unrolls these."""
        hsize = hsize or self.default_hsize
        gru, head = self._nets(hsize)

        def rule(meta, x: TensorInputs, carry):
            carry, out = gru.apply(meta["gru_params"], carry, open_features(x))
            return open_output(head.apply(meta["params"], out), x), carry

        def carry_init(p):
            return jnp.zeros(p.shape + (hsize // 2,), p.dtype)
        return rule, carry_init

    def _network_algorithm(self, env: EnvConfig, hsize: int) -> Algorithm:
        return lo_algorithm(*self.network_rule(hsize), env)

    def _code_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        def rule(meta, x: TensorInputs, var):
            values = program_inputs(x)
            values.update(lr=x.recur_lr, iteration=x.iteration, var=var)
            update, var = fn(*(values[n] for n in OPEN_SIGNATURE))
            return update, jnp.broadcast_to(var, x.p.shape).astype(x.p.dtype)
        return lo_algorithm(rule, zero_carry, env)


OPEN = OpenFamily()
