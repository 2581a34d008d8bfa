"""Any evosax strategy behind the same ask/tell/checkpoint interface as our OpenES.

`es.strategy: open_es` (the default) is `open_es.OpenES`, the original's algorithm with exact
resumability.  Any other name is looked up in evosax's registry (e.g. SNES, CMA_ES, Sep_CMA_ES,
PGPE, SimpleES, and `Open_ES` for evosax's own OpenES) and driven through this adapter.  evosax
minimises, so fitness is negated here; the config's sigma/lr and their decays and floors are passed
as `std_schedule` and an Adam `optimizer` where the strategy accepts them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from workbench.es_strategy_names import OWN_STRATEGY, lookup_evosax

__all__ = ["OWN_STRATEGY", "EvosaxState", "EvosaxStrategy"]

@dataclass
class EvosaxState:
    """Checkpointable state: the evosax state's leaves plus our key, generation and histories."""

    leaves: list[np.ndarray]
    key: np.ndarray
    generation: int = 0
    sigma: float = 0.0
    lr: float = 0.0
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    best_fitness: list[float] = field(default_factory=list)
    mean_fitness: list[float] = field(default_factory=list)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {f"leaf_{i}": np.asarray(v) for i, v in enumerate(self.leaves)}
        out.update(key=self.key, generation=np.asarray(self.generation), sigma=np.asarray(self.sigma),
                   lr=np.asarray(self.lr), mean=self.mean, best_fitness=np.asarray(self.best_fitness),
                   mean_fitness=np.asarray(self.mean_fitness), strategy_kind=np.asarray("evosax"))
        return out


class EvosaxStrategy:
    """Wraps an evosax strategy class over a flat float32 vector."""

    def __init__(self, name: str, popsize: int, num_dims: int, sigma: float, lr: float,
                 lr_decay: float, lr_limit: float, sigma_decay: float, sigma_limit: float):
        cls = lookup_evosax(name)
        accepted = inspect.signature(cls.__init__).parameters
        kwargs: dict[str, Any] = {}
        lr_schedule = optax.exponential_decay(lr, 1, lr_decay, end_value=min(lr_limit, lr))
        if "optimizer" in accepted:
            kwargs["optimizer"] = optax.adam(lr_schedule)
        if "std_schedule" in accepted:
            kwargs["std_schedule"] = optax.exponential_decay(sigma, 1, sigma_decay,
                                                             end_value=min(sigma_limit, sigma))
        self.name = cls.__name__
        self.popsize = popsize
        self._lr_schedule = lr_schedule
        self._sigma = sigma
        self.es = cls(population_size=popsize, solution=jnp.zeros(num_dims, jnp.float32), **kwargs)
        params = self.es.default_params
        if hasattr(params, "std_init"):
            params = params.replace(std_init=sigma)
        self.params = params
        self._treedef = None

    def _pack(self, es_state: Any, key: jax.Array, like: EvosaxState | None, **changes: Any
              ) -> EvosaxState:
        leaves, self._treedef = jax.tree.flatten(es_state)
        gen = changes.pop("generation", like.generation if like else 0)
        mean = np.asarray(self.es.get_mean(es_state), np.float32)
        std = getattr(es_state, "std", None)
        sigma = float(np.mean(np.asarray(std))) if std is not None else self._sigma
        base = dict(best_fitness=like.best_fitness if like else [],
                    mean_fitness=like.mean_fitness if like else [])
        base.update(changes)
        return EvosaxState(leaves=[np.asarray(x) for x in leaves],
                           key=np.asarray(jax.random.key_data(key)), generation=gen, sigma=sigma,
                           lr=float(self._lr_schedule(gen)), mean=mean, **base)

    def _unpack(self, state: EvosaxState) -> tuple[Any, jax.Array]:
        if self._treedef is None:  # restoring: learn the state's structure from a fresh init
            self._init_state(np.zeros_like(state.mean), 0)
        es_state = jax.tree.unflatten(self._treedef, [jnp.asarray(x) for x in state.leaves])
        return es_state, jax.random.wrap_key_data(jnp.asarray(state.key))

    def _init_state(self, mean: np.ndarray, seed: int) -> tuple[Any, jax.Array]:
        key = jax.random.key(seed)
        key, k_init = jax.random.split(key)
        es_state = self.es.init(k_init, jnp.asarray(mean, jnp.float32), self.params)
        self._treedef = jax.tree.structure(es_state)
        return es_state, key

    def init(self, mean: np.ndarray, sigma: float, lr: float, seed: int) -> EvosaxState:
        del sigma, lr  # fixed at construction
        es_state, key = self._init_state(mean, seed)
        return self._pack(es_state, key, None)

    def ask(self, state: EvosaxState) -> tuple[np.ndarray, Any, EvosaxState, jax.Array]:
        es_state, key = self._unpack(state)
        key, k_ask, k_eval = jax.random.split(key, 3)
        population, es_state = self.es.ask(k_ask, es_state, self.params)
        new = self._pack(es_state, key, state)
        return np.asarray(population, np.float32), population, new, k_eval

    def tell(self, state: EvosaxState, population: Any, fitness: np.ndarray) -> EvosaxState:
        es_state, key = self._unpack(state)
        key, k_tell = jax.random.split(key)
        es_state, _ = self.es.tell(k_tell, population, -jnp.asarray(fitness, jnp.float32),
                                   es_state, self.params)
        return self._pack(es_state, key, state, generation=state.generation + 1,
                          best_fitness=state.best_fitness + [float(np.max(fitness))],
                          mean_fitness=state.mean_fitness + [float(np.mean(fitness))])

    def restore(self, data: dict[str, np.ndarray]) -> EvosaxState:
        n = sum(1 for k in data if k.startswith("leaf_"))
        return EvosaxState(leaves=[data[f"leaf_{i}"] for i in range(n)], key=data["key"],
                           generation=int(data["generation"]), sigma=float(data["sigma"]),
                           lr=float(data["lr"]), mean=data["mean"],
                           best_fitness=[float(x) for x in data["best_fitness"]],
                           mean_fitness=[float(x) for x in data["mean_fitness"]])
