"""Brax tasks through the same PPO loop (optional extra `brax`; CI installs it with `test`)."""

import jax
import numpy as np
import pytest

pytest.importorskip("brax.envs")

from evaluators.envs import get_env_config  # noqa: E402
from evaluators.families import get_family  # noqa: E402
from evaluators.fitness import evaluate_population  # noqa: E402
from evaluators.vec_env import _moments_init, _moments_update, make_vec_env  # noqa: E402


def test_running_moments_match_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(5, 64, 3))
    m = _moments_init((3,))
    for batch in data:
        m = _moments_update(m, batch)
    flat = data.reshape(-1, 3)
    np.testing.assert_allclose(np.asarray(m.mean), flat.mean(0), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(m.var), flat.var(0), rtol=1e-2)


@pytest.mark.slow  # ~35 s in CI for training, plus one compile of reset and of step; cached after
def test_ant_trains_through_the_family_loop():
    """The vectorised Ant responds to its inputs (reset key, action), gives varying rewards, and
    the family's PPO loop trains on it: two seeds, two different finite returns."""
    env = get_env_config("ant").scaled(total_timesteps=2 * 32 * 10, num_envs=32)
    venv = make_vec_env(env)
    assert venv.continuous and venv.action_dim == 8 and venv.obs_dim > 20
    reset, step = jax.jit(venv.reset), jax.jit(venv.step)
    key = jax.random.key(0)
    obs, state = reset(key)
    assert obs.shape == (32, venv.obs_dim)
    raw = np.asarray(state.env_state.obs)  # unnormalised: normalisation would hide little moves
    other = np.asarray(reset(jax.random.key(1))[1].env_state.obs)
    assert not np.allclose(raw, other), "reset ignores its key"
    assert not np.allclose(raw[0], raw[1]), "every env starts in the same state"
    zero = np.zeros((32, venv.action_dim), np.float32)
    push = np.ones((32, venv.action_dim), np.float32)
    still = np.asarray(step(key, state, zero)[1].env_state.obs)
    moved = np.asarray(step(key, state, push)[1].env_state.obs)
    assert not np.allclose(still, raw), "a step changes nothing"
    assert not np.allclose(still, moved), "the action has no effect"
    rewards, s = [], state
    actions = jax.random.uniform(jax.random.key(2), (5, 32, venv.action_dim), minval=-1, maxval=1)
    for a in actions:
        _, s, r, done, _ = step(key, s, a)
        rewards.append(np.asarray(r))
    rewards = np.stack(rewards)
    assert np.all(np.isfinite(rewards)) and np.std(rewards) > 1e-6, rewards

    lpo = get_family("lpo")
    scores = evaluate_population(lpo, lpo.warm_start(), {}, jax.random.key(0), [env], num_seeds=2)
    returns = scores.train["ant"].returns
    assert returns.shape == (1, 2) and np.all(np.isfinite(returns))
    assert returns[0, 0] != returns[0, 1], "both seeds trained identically"
    curves = scores.train["ant"].curves
    assert curves.shape[:2] == (1, 2) and np.all(np.isfinite(curves))
