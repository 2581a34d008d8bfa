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


@pytest.mark.slow  # ~35 s in CI, which is near its 30-minute budget on 2 cores
def test_ant_trains_through_the_family_loop():
    env = get_env_config("ant").scaled(total_timesteps=2 * 32 * 10, num_envs=32)
    venv = make_vec_env(env)
    assert venv.continuous and venv.action_dim == 8 and venv.obs_dim > 20
    lpo = get_family("lpo")
    scores = evaluate_population(lpo, lpo.warm_start(), {}, jax.random.key(0), [env], num_seeds=2)
    returns = scores.train["ant"].returns
    assert returns.shape == (1, 2) and np.all(np.isfinite(returns))
