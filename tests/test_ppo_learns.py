"""The warm starts learn CartPole at the original settings (5e5 steps, 4 envs, 8 seeds)."""

import jax
import numpy as np
import pytest

from evaluators.envs import get_env_config
from evaluators.families import Candidate, get_family
from evaluators.fitness import evaluate_population
from sandbox.checks import load_program

CARTPOLE = get_env_config("cartpole")


def _returns(family_name, candidate=None, env=CARTPOLE, seeds=8):
    fam = get_family(family_name)
    scores = evaluate_population(fam, candidate or fam.warm_start(), {}, jax.random.key(0), [env],
                                 num_seeds=seeds)
    return scores.train[env.key].returns[0]


def test_lpo_warm_start_learns_quickly_at_small_scale():
    returns = _returns("lpo", env=CARTPOLE.scaled(total_timesteps=60_000), seeds=4)
    assert returns.mean() > 100  # a random policy scores about 20


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lpo", "open"])
def test_ppo_and_adam_warm_starts_reach_400(family):
    returns = _returns(family)
    assert returns.mean() >= 400, returns


@pytest.mark.slow
@pytest.mark.parametrize("family", ["open_ff", "no_features"])
def test_sgd_warm_starts_learn(family):
    fam = get_family(family)
    args = ", ".join(fam.code_signature)
    frozen = load_program(f"def frozen({args}):\n    return g * 0.0", fam.code_signature)
    sgd = _returns(family)
    # parameters that never move give the initial policy's returns whatever the run's length, so
    # the baseline trains a tenth as long (same seeds, same initial policies)
    still = _returns(family, Candidate("code", fn=frozen),
                     env=CARTPOLE.scaled(total_timesteps=CARTPOLE.total_timesteps // 10))
    gap = sgd.mean() - still.mean()
    se = np.sqrt(sgd.var(ddof=1) / sgd.size + still.var(ddof=1) / still.size)
    assert gap > 2.5 * se and sgd.mean() > 1.3 * still.mean(), (sgd, still)
