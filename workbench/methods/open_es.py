"""OpenAI-ES as used by the original (SPEC §4), as one small ask/tell class over flat vectors.

Antithetic sampling, centred-rank fitness shaping, Adam on the search mean, exponential decay of
sigma and learning rate with floors.  The state is plain numpy plus a raw JAX key, so it
checkpoints exactly and a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import jax
import jax.numpy as jnp
import numpy as np


@dataclass
class ESState:
    mean: np.ndarray
    adam_m: np.ndarray
    adam_v: np.ndarray
    adam_t: int
    sigma: float
    lr: float
    key: np.ndarray  # raw uint32 key data
    generation: int = 0
    best_fitness: list[float] = field(default_factory=list)
    mean_fitness: list[float] = field(default_factory=list)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray]) -> "ESState":
        return cls(mean=data["mean"], adam_m=data["adam_m"], adam_v=data["adam_v"],
                   adam_t=int(data["adam_t"]), sigma=float(data["sigma"]), lr=float(data["lr"]),
                   key=data["key"], generation=int(data["generation"]),
                   best_fitness=[float(x) for x in data["best_fitness"]],
                   mean_fitness=[float(x) for x in data["mean_fitness"]])


def centred_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5], higher fitness -> higher value (ties broken by order)."""
    ranks = np.empty(len(fitness))
    ranks[np.argsort(fitness, kind="stable")] = np.arange(len(fitness))
    return ranks / max(len(fitness) - 1, 1) - 0.5


class OpenES:
    """Search over a flat parameter vector; `ask` returns the population, `tell` the fitness."""

    def __init__(self, popsize: int, lr_decay: float = 0.99, lr_limit: float = 0.001,
                 sigma_decay: float = 0.99, sigma_limit: float = 0.01, b1: float = 0.9,
                 b2: float = 0.999, eps: float = 1e-8):
        if popsize % 2:
            raise ValueError(f"es.popsize must be even for antithetic sampling (got {popsize})")
        self.popsize = popsize
        self.lr_decay, self.lr_limit = lr_decay, lr_limit
        self.sigma_decay, self.sigma_limit = sigma_decay, sigma_limit
        self.b1, self.b2, self.eps = b1, b2, eps

    def restore(self, data: dict[str, np.ndarray]) -> ESState:
        return ESState.from_arrays(data)

    def init(self, mean: np.ndarray, sigma: float, lr: float, seed: int) -> ESState:
        key = np.asarray(jax.random.key_data(jax.random.key(seed)))
        zeros = np.zeros_like(mean, dtype=np.float32)
        return ESState(mean=np.asarray(mean, np.float32), adam_m=zeros, adam_v=zeros.copy(),
                       adam_t=0, sigma=float(sigma), lr=float(lr), key=key)

    def ask(self, state: ESState) -> tuple[np.ndarray, np.ndarray, ESState, jax.Array]:
        """(population, noise, state with advanced key, an evaluation key for this generation)."""
        key = jax.random.wrap_key_data(jnp.asarray(state.key))
        key, k_noise, k_eval = jax.random.split(key, 3)
        half = jax.random.normal(k_noise, (self.popsize // 2, state.mean.size), jnp.float32)
        noise = np.asarray(jnp.concatenate([half, -half]))
        population = state.mean[None, :] + np.float32(state.sigma) * noise
        new = ESState(**{**state.__dict__, "key": np.asarray(jax.random.key_data(key))})
        return population.astype(np.float32), noise, new, k_eval

    def tell(self, state: ESState, noise: np.ndarray, fitness: np.ndarray) -> ESState:
        shaped = centred_ranks(np.asarray(fitness, np.float64))
        grad = (noise.T @ shaped / (len(shaped) * state.sigma)).astype(np.float32)  # ascent
        t = state.adam_t + 1
        m = self.b1 * state.adam_m + (1 - self.b1) * grad
        v = self.b2 * state.adam_v + (1 - self.b2) * grad * grad
        m_hat = m / (1 - self.b1 ** t)
        v_hat = v / (1 - self.b2 ** t)
        mean = state.mean + np.float32(state.lr) * (m_hat / (np.sqrt(v_hat) + self.eps))
        return ESState(mean=mean.astype(np.float32), adam_m=m.astype(np.float32),
                       adam_v=v.astype(np.float32), adam_t=t,
                       sigma=max(state.sigma * self.sigma_decay, self.sigma_limit),
                       lr=max(state.lr * self.lr_decay, self.lr_limit), key=state.key,
                       generation=state.generation + 1,
                       best_fitness=state.best_fitness + [float(np.max(fitness))],
                       mean_fitness=state.mean_fitness + [float(np.mean(fitness))])
