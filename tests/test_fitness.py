import jax
import numpy as np
import pytest

from evaluators.envs import get_env_config
from evaluators.families import Candidate, get_family
from evaluators.fitness import NAN_RETURN, evaluate_population, stack_population
from evaluators.networks import orthogonal
from evaluators.ppo import make_train
from sandbox.checks import load_program

TINY = get_env_config("cartpole").scaled(total_timesteps=4096)


def test_common_random_numbers_and_population_axis():
    lpo = get_family("lpo")
    zero = lpo.init_network(jax.random.key(0))
    bumped = jax.tree.map(lambda x: x + 0.5, zero)
    pop = stack_population([zero, bumped, zero])
    scores = evaluate_population(lpo, lpo.network(), pop, jax.random.key(1), [TINY], num_seeds=3)
    s = scores.train["cartpole"]
    assert s.returns.shape == (3, 3) and s.curves.shape == (3, 3, TINY.num_updates)
    np.testing.assert_array_equal(s.returns[0], s.returns[2])  # same member, same seeds
    assert not np.array_equal(s.returns[0], s.returns[1])  # a different drift changes training
    assert len(set(s.returns[0].tolist())) > 1  # seeds differ from each other
    assert scores.fitness.shape == (3,) and scores.test_fitness is None


def test_nan_returns_are_flagged_and_mapped_to_a_large_negative_fitness():
    lpo = get_family("lpo")
    fn = load_program("def f(ratio, advantage, epsilon):\n    return jnp.log(ratio - 10.0) * advantage",
                      lpo.code_signature)
    scores = evaluate_population(lpo, Candidate("code", fn=fn), {}, jax.random.key(0), [TINY],
                                 test_envs=[TINY], num_seeds=2)
    assert bool(scores.nan[0])
    assert scores.fitness[0] == pytest.approx(TINY.normalise(NAN_RETURN, "ppo"))


def test_meta_train_and_meta_test_are_reported_separately():
    lpo = get_family("lpo")
    acro = get_env_config("acrobot").scaled(total_timesteps=4096)
    scores = evaluate_population(lpo, lpo.warm_start(), {}, jax.random.key(0), [TINY], [acro], num_seeds=2)
    assert set(scores.train) == {"cartpole"} and set(scores.test) == {"acrobot"}
    assert scores.fitness[0] == pytest.approx(scores.train["cartpole"].normalized[0])
    assert scores.test_fitness[0] == pytest.approx(scores.test["acrobot"].normalized[0])


def test_batched_training_program_has_no_lapack_call():
    """A LAPACK QR (from jax's orthogonal init) vmapped over 256 seeds deadlocked the XLA CPU
    thread pool; the agent's init must compile to plain ops."""
    env = get_env_config("cartpole").scaled(total_timesteps=1024)
    lpo = get_family("lpo")
    train = make_train(env, lpo.algorithm(lpo.warm_start(), env))
    keys = jax.random.split(jax.random.key(0), 256)
    text = jax.jit(jax.vmap(lambda k: train(k, {}))).lower(keys).as_text()
    assert "lapack" not in text.lower() and "custom_call" not in text
    q = np.asarray(orthogonal(jax.random.key(1), 64, 64, 1.0))
    np.testing.assert_allclose(q.T @ q, np.eye(64), atol=1e-5)
