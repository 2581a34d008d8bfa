import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.envs import ENVS, UnknownEnvError, get_env_config


def test_original_settings_match_spec():
    cp = get_env_config("cartpole")
    assert (cp.num_envs, cp.num_steps, cp.total_timesteps) == (4, 128, 500_000)
    assert (cp.update_epochs, cp.num_minibatches, cp.activation) == (4, 4, "tanh")
    assert cp.num_updates == 976 and cp.minibatch_size == 128 and cp.optimiser_steps == 15_616
    br = get_env_config("Breakout-MinAtar")  # gymnax ids work too
    assert br.key == "breakout" and br.num_updates == 1220 and br.minibatch_size == 1024
    assert (br.lr, br.b1, br.b2, br.sgd_lr, br.recur_lr) == (1e-2, 0.9, 0.99, 1.017, 7e-3)
    assert br.ppo_temp == pytest.approx(50.0822) and br.sgd_temp == pytest.approx(20.5)


def test_unknown_env_names_the_choices():
    with pytest.raises(UnknownEnvError) as err:
        get_env_config("pong-v0")
    assert "cartpole" in str(err.value) and "pong-v0" in str(err.value)


def test_scaling_keeps_minibatches_valid():
    cp = get_env_config("cartpole").scaled(total_timesteps=20_000, num_envs=8)
    assert cp.num_envs == 8 and cp.num_updates == 20_000 // (8 * 128)
    with pytest.raises(ValueError, match="num_minibatches"):
        get_env_config("breakout").scaled(num_envs=1, num_steps=100)


def test_normalisation_uses_family_baseline_and_floor():
    cp = get_env_config("cartpole")
    assert cp.normalise(475.0, "ppo") == pytest.approx(1.0)
    assert cp.normalise(250.0, "sgd") == pytest.approx(0.5)
    acro = get_env_config("acrobot")
    assert acro.normalise(-500.0, "ppo") == pytest.approx(0.0)  # the floor maps to 0
    assert acro.normalise(acro.ppo_temp, "ppo") == pytest.approx(1.0)


def test_every_registered_env_builds():
    import gymnax
    for cfg in ENVS.values():
        if cfg.library == "gymnax":
            assert cfg.gymnax_id in gymnax.registered_envs


def test_registry_and_config_env_names_need_no_jax():
    """The registry is a static table: naming environments in a config imports neither JAX nor
    gymnax; building one (vec_env) does."""
    probe = ("import sys, workbench.config as c\n"
             "cfg = c.build_config({'envs': ['cartpole', 'Breakout-MinAtar'], 'test_envs': ['ant']})\n"
             "assert (cfg.envs, cfg.test_envs) == (['cartpole', 'breakout'], ['ant']), cfg\n"
             "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'gymnax', 'brax')]\n"
             "assert not bad, bad\n"
             "from evaluators.vec_env import make_vec_env\n"
             "from evaluators.envs import get_env_config\n"
             "assert 'gymnax' not in sys.modules\n"
             "assert make_vec_env(get_env_config('cartpole')).action_dim == 2\n"
             "assert 'gymnax' in sys.modules\n")
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=Path(__file__).resolve().parents[1])
