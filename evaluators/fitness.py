"""Scoring a population of candidates: population x seeds under one jit per environment.

* Common random numbers: every population member is trained on the same seeds.
* The population axis is split over all local devices with `shard_map` (padded to a multiple of
  the device count); each device vmaps its share over members and seeds.  No host round-trip
  happens inside training.
* Fitness = final return normalised per environment by the family's baseline (SPEC §3), averaged
  over environments; a NaN return becomes `NAN_RETURN` before normalising and is flagged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from .envs import EnvConfig
from .families.base import Candidate, Family
from .ppo import make_train

NAN_RETURN = -100_000.0  # what the original substituted for a NaN final return


@dataclass
class EnvScores:
    """Results of one population on one environment (arrays are numpy, on the host)."""

    env: str
    returns: np.ndarray  # (pop, seeds) final returns, NaN where training diverged
    curves: np.ndarray  # (pop, seeds, updates)
    normalized: np.ndarray  # (pop,) mean over seeds, normalised, NaN replaced
    nan: np.ndarray  # (pop,) bool: some seed returned NaN
    compile_s: float
    run_s: float
    env_steps: int  # total environment steps of this call (all members and seeds)

    @property
    def sps(self) -> float:
        return self.env_steps / max(self.run_s, 1e-9)

    def member(self, i: int) -> dict[str, float]:
        r = self.returns[i]
        ok = r[np.isfinite(r)]
        mean = float(ok.mean()) if ok.size else float("nan")
        stderr = float(ok.std(ddof=1) / np.sqrt(ok.size)) if ok.size > 1 else 0.0
        return {"return_mean": mean, "return_stderr": stderr, "normalized": float(self.normalized[i]),
                "sps": self.sps, "compile_s": self.compile_s,
                "seed_returns": [float(x) for x in r]}  # per seed, for paired comparisons


@dataclass
class PopulationScores:
    """Per-env scores plus fitness on meta-train envs and, separately, held-out meta-test envs."""

    train: dict[str, EnvScores] = field(default_factory=dict)
    test: dict[str, EnvScores] = field(default_factory=dict)

    @staticmethod
    def _mean(envs: dict[str, EnvScores]) -> np.ndarray | None:
        if not envs:
            return None
        return np.mean(np.stack([s.normalized for s in envs.values()]), axis=0)

    @property
    def fitness(self) -> np.ndarray:
        """(pop,) meta-train fitness: mean normalised return over the training envs."""
        return self._mean(self.train)

    @property
    def test_fitness(self) -> np.ndarray | None:
        return self._mean(self.test)

    @property
    def nan(self) -> np.ndarray:
        return np.any(np.stack([s.nan for s in {**self.train, **self.test}.values()]), axis=0)


def local_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D `pop` mesh over the local devices (all of them by default, CPU included).

    Forced host devices (`--xla_force_host_platform_device_count`) once deadlocked or gave wrong
    values; the cause was LAPACK's QR in the agents' orthogonal init, now computed with plain ops
    (`networks.orthogonal`), and sharded results equal the 1-device ones (tests/test_sharding.py).
    """
    if num_devices is None:
        num_devices = jax.local_device_count()
    devices = jax.local_devices()[:num_devices]
    return Mesh(np.array(devices), ("pop",))


class PopulationEvaluator:
    """Compiles `train` for one (family, candidate shape, env, population, seeds) once and reuses it.

    Methods such as ES call `__call__` every generation with new parameters and a new key; the
    compiled executable is cached, so only the first call pays compilation.
    """

    def __init__(self, family: Family, candidate: Candidate, env: EnvConfig, pop_size: int,
                 num_seeds: int, mesh: Mesh | None = None):
        self.family, self.candidate, self.env = family, candidate, env
        self.pop_size, self.num_seeds = pop_size, num_seeds
        self.mesh = mesh or local_mesh()
        n_dev = self.mesh.devices.size
        self.padded = -(-pop_size // n_dev) * n_dev
        train = make_train(env, family.algorithm(candidate, env))

        def members_by_seeds(meta, member_ids, seeds):
            def member(m, member_id):
                del member_id  # gives vmap the population size when `meta` is empty
                return jax.vmap(lambda s: train(s, m))(seeds)
            return jax.vmap(member)(meta, member_ids)

        # check_vma=False: the agent's initial params do not vary over `pop` but a learned
        # optimiser's updates (functions of the member's meta) do, and the PPO scan carry must keep
        # one type; without it every open/open_ff/no_features network evaluation crashed
        sharded = jax.shard_map(members_by_seeds, mesh=self.mesh,
                                in_specs=(P("pop"), P("pop"), P()), out_specs=P("pop"),
                                check_vma=False)
        self._fn = jax.jit(sharded)
        self._compiled = None
        self.compile_s = 0.0

    def _pad(self, meta: Any) -> Any:
        extra = self.padded - self.pop_size
        if not extra:
            return meta
        return jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)]), meta)

    def __call__(self, meta_pop: Any, rng: jax.Array) -> EnvScores:
        """Train every member on the same `num_seeds` seeds derived from `rng`."""
        sharding = NamedSharding(self.mesh, P("pop"))
        meta = jax.device_put(self._pad(meta_pop), sharding)
        ids = jax.device_put(jnp.arange(self.padded), sharding)
        seeds = jax.random.split(rng, self.num_seeds)
        if self._compiled is None:
            t0 = time.perf_counter()
            self._compiled = self._fn.lower(meta, ids, seeds).compile()
            self.compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = self._compiled(meta, ids, seeds)
        returns = np.asarray(jax.block_until_ready(out.final_return))[: self.pop_size]
        run_s = time.perf_counter() - t0
        curves = np.asarray(out.curve)[: self.pop_size]
        return score_returns(self.env, self.family, returns, curves, self.compile_s, run_s,
                             self.padded * self.num_seeds * self.env.steps_per_run)


def score_returns(env: EnvConfig, family: Family, returns: np.ndarray, curves: np.ndarray,
                  compile_s: float, run_s: float, env_steps: int) -> EnvScores:
    nan = ~np.all(np.isfinite(returns), axis=1)
    safe = np.where(np.isfinite(returns), returns, NAN_RETURN)
    normalized = np.asarray(env.normalise(safe.mean(axis=1), family.normaliser), np.float64)
    return EnvScores(env=env.key, returns=returns, curves=curves, normalized=normalized, nan=nan,
                     compile_s=compile_s, run_s=run_s, env_steps=env_steps)


def stack_population(members: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *members)


def evaluate_population(family: Family, candidate: Candidate, meta_pop: Any, rng: jax.Array,
                        train_envs: Sequence[EnvConfig], test_envs: Sequence[EnvConfig] = (),
                        num_seeds: int = 8, mesh: Mesh | None = None,
                        cache: dict | None = None) -> PopulationScores:
    """Scoring of a population (leading axis of `meta_pop`) on train and test envs.

    Each env gets its own key folded from `rng`, shared by every member (common random numbers).
    Pass the same `cache` dict to repeated calls (e.g. evaluating an ES mean every few
    generations) to reuse the compiled evaluators instead of compiling again.
    """
    leaves = jax.tree.leaves(meta_pop)
    pop = leaves[0].shape[0] if leaves else 1
    if not leaves:
        meta_pop = {}
    scores = PopulationScores()
    for split, envs in (("train", train_envs), ("test", test_envs)):
        for env in envs:
            cache_key = (family, candidate, env, pop, num_seeds)
            if cache is not None and cache_key in cache:
                evaluator = cache[cache_key]
            else:
                evaluator = PopulationEvaluator(family, candidate, env, pop, num_seeds, mesh)
                if cache is not None:
                    cache[cache_key] = evaluator
            key = jax.random.fold_in(rng, _env_salt(env.key))
            getattr(scores, split)[env.key] = evaluator(meta_pop, key)
    return scores


def _env_salt(name: str) -> int:
    return int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "little") & 0x7FFFFFFF
