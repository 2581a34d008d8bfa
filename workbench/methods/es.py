"""Black-box learning: evolve a family's network with OpenAI-ES (SPEC §4), resumably.

Every generation scores the whole population with one compiled call per meta-train env (common
random numbers across members).  Every `es.save_every` generations the whole ES state is
checkpointed atomically and the search mean is stored as a `network` candidate, evaluated on
meta-train and meta-test envs with held-out seeds.  `run` resumes from the last checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from tqdm import tqdm

from evaluators.envs import EnvConfig
from evaluators.families import get_family
from evaluators.fitness import NAN_RETURN, PopulationEvaluator

from .. import control
from ..config import RunConfig
from ..evaluate import record_result, resolve_envs, score_candidate
from ..params_io import save_npz, save_params
from ..store import RunStore
from .evosax_strategy import OWN_STRATEGY, EvosaxState, EvosaxStrategy
from .open_es import ESState, OpenES

CHECKPOINT = Path("checkpoints") / "es_state.npz"
COUNTED_KEY = "es_cost_counted_through"  # the last generation whose env steps are in the run's cost


def _envs(names: list[str], config: RunConfig) -> list[EnvConfig]:
    return resolve_envs(names, config.timesteps, config.num_envs)


def save_checkpoint(run_dir: Path, state: ESState) -> Path:
    return save_npz(run_dir / CHECKPOINT, state.to_arrays())


def load_checkpoint(run_dir: Path, strategy) -> ESState | EvosaxState | None:
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    with np.load(path) as data:
        return strategy.restore({k: data[k] for k in data.files})


def make_strategy(es_cfg, num_dims: int) -> OpenES | EvosaxStrategy:
    """`open_es` is the original's OpenAI-ES; any other name is an evosax strategy."""
    if es_cfg.strategy == OWN_STRATEGY:
        return OpenES(es_cfg.popsize, es_cfg.lr_decay, es_cfg.lr_limit, es_cfg.sigma_decay,
                      es_cfg.sigma_limit)
    return EvosaxStrategy(es_cfg.strategy, es_cfg.popsize, num_dims, es_cfg.sigma, es_cfg.lr,
                          es_cfg.lr_decay, es_cfg.lr_limit, es_cfg.sigma_decay, es_cfg.sigma_limit)


@dataclass
class ESResult:
    """What an ES run leaves behind, for callers such as the agent's `es_train` tool."""

    generation: int
    mean_candidate: int | None  # the last stored search mean (a `network` candidate)
    mean_fitness: float | None  # its held-out meta-train fitness
    best_fitness_per_generation: list[float]
    checkpoint: Path


def run(config: RunConfig, store: RunStore) -> ESResult:
    """Start or resume ES on `store` until `es.generations`; the plain Python entry point."""
    family = get_family(config.family)
    es_cfg = config.es
    hsize = es_cfg.hsize or family.default_hsize
    template = family.init_network(jax.random.key(0), hsize, zero=True)
    flat0, unravel = ravel_pytree(template)
    strategy = make_strategy(es_cfg, int(flat0.size))
    state = load_checkpoint(store.run_dir, strategy)
    if state is None:
        start, _ = ravel_pytree(family.es_start(jax.random.key(config.seed), hsize, es_cfg.init))
        state = strategy.init(np.asarray(start, np.float32), es_cfg.sigma, es_cfg.lr, config.seed)
        store.set_state("es_generation", 0)
    train_envs, test_envs = _envs(config.envs, config), _envs(config.test_envs, config)
    candidate = family.network(hsize)
    evaluators = [PopulationEvaluator(family, candidate, env, es_cfg.popsize, es_cfg.rollouts)
                  for env in train_envs]
    unravel_pop = jax.jit(jax.vmap(unravel))
    eval_cache: dict = {}  # compiled evaluators of the mean, reused at every save
    parent = store.get_state("es_last_mean_candidate")
    if store.get_state("es_last_mean_generation") != state.generation:
        # the start (generation 0), or a checkpoint written just before a kill
        parent = _record_mean(config, store, family, state, unravel, hsize, parent, test_envs, train_envs,
                              eval_cache)

    bar = tqdm(total=es_cfg.generations, initial=state.generation, desc=f"ES {config.family}",
               unit="gen", dynamic_ncols=True)
    while state.generation < es_cfg.generations:
        population, noise, state, k_eval = strategy.ask(state)
        meta = unravel_pop(population)
        per_env, steps = [], 0
        for i, ev in enumerate(evaluators):
            scores = ev(meta, jax.random.fold_in(k_eval, i))
            per_env.append(scores.normalized)
            steps += int(scores.env_steps)
        fitness = np.mean(per_env, axis=0)
        fitness = np.where(np.isfinite(fitness), fitness,
                           np.mean([e.normalise(NAN_RETURN, family.normaliser) for e in train_envs]))
        state = strategy.tell(state, noise, fitness)
        # Each generation's steps count once: generations after the last checkpoint are redone
        # on resume (bit-identically), and were already counted by the killed session.
        with store.transaction():
            if state.generation > int(store.get_state(COUNTED_KEY, 0) or 0):
                store.add_cost(env_steps=steps)
                store.set_state(COUNTED_KEY, state.generation)
        store.log_metrics(state.generation, {
            "best_fitness": float(np.max(fitness)), "mean_fitness": float(np.mean(fitness)),
            "worst_fitness": float(np.min(fitness)), "sigma": state.sigma, "lr": state.lr})
        bar.update(1)
        bar.set_postfix(best=f"{np.max(fitness):.3f}", mean=f"{np.mean(fitness):.3f}")
        control.report_progress(store, state.generation, es_cfg.generations, "generation")
        if state.generation % es_cfg.save_every == 0 or state.generation == es_cfg.generations:
            save_checkpoint(store.run_dir, state)
            store.set_state("es_generation", state.generation)
            parent = _record_mean(config, store, family, state, unravel, hsize, parent, test_envs,
                                  train_envs, eval_cache)
            control.checkpoint(store)  # pause here, or stop with the state just saved
    bar.close()
    mean_row = store.candidate(parent) if parent else None
    return ESResult(generation=state.generation, mean_candidate=parent,
                    mean_fitness=mean_row.fitness if mean_row else None,
                    best_fitness_per_generation=list(state.best_fitness),
                    checkpoint=store.run_dir / CHECKPOINT)


def _record_mean(config, store, family, state, unravel, hsize, parent, test_envs, train_envs,
                 cache):
    """Store the search mean as a network candidate and score it on held-out seeds."""
    params = unravel(state.mean)
    rel = Path("params") / f"es_mean_gen{state.generation:05d}.npz"
    save_params(store.run_dir / rel, params, family.name, hsize)
    # a kill between recording and finishing leaves a pending row: finish that one, not a copy
    existing = [c for c in store.candidates() if c.method == "es" and c.generation == state.generation]
    if existing and existing[0].outcome != "pending":  # scored (and its cost counted) before a kill
        store.set_state("es_last_mean_candidate", existing[0].id)
        store.set_state("es_last_mean_generation", state.generation)
        return existing[0].id
    if existing:
        cid = existing[0].id
    else:
        cid = store.add_candidate(method="es", kind="network",
                                  label=f"ES mean, generation {state.generation}",
                                  params_path=str(rel), hsize=hsize,
                                  parents=[parent] if parent else [], generation=state.generation,
                                  info={"num_params": int(state.mean.size), "sigma": state.sigma})
    result = score_candidate(family, family.network(hsize), params, train_envs, test_envs,
                             config.seeds, config.eval_seed + state.generation, cache=cache)
    record_result(store, cid, result, config.seeds, config.eval_seed + state.generation,
                  {e.key: e.steps_per_run for e in train_envs + test_envs})
    if result.fitness is not None:
        store.log_metrics(state.generation, {"mean_eval_fitness": result.fitness,
                                             **({"mean_eval_test_fitness": result.test_fitness}
                                                if result.test_fitness is not None else {})})
    store.set_state("es_last_mean_candidate", cid)
    store.set_state("es_last_mean_generation", state.generation)
    return cid
