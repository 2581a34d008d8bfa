"""Environment registry: gymnax (and Brax) tasks with their PPO settings and fitness normalisers.

Every number for the original environments comes from the original system's per-environment
config (SPEC §3).  The extra discrete gymnax tasks (Acrobot, MountainCar, Catch, ...) carry settings
and baselines we chose; their `baseline_source` says so.  Configs are frozen dataclasses so they
can be closed over by `jit` and hashed; use `EnvConfig.scaled` to shrink a run for a CPU.

The registry is a static table: importing it (to check a config's environment names, say) imports
neither JAX nor gymnax.  Environments are built and stepped in `vec_env.py`, which imports them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EnvConfig",
    "ENVS",
    "get_env_config",
    "env_names",
    "UnknownEnvError",
]


class UnknownEnvError(KeyError):
    """Raised for an environment name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class EnvConfig:
    """All settings of one inner-loop PPO run on one environment."""

    key: str
    gymnax_id: str
    num_envs: int
    num_steps: int
    total_timesteps: int
    update_epochs: int
    num_minibatches: int
    ent_coef: float
    activation: str
    hsize: int
    lr: float  # Adam learning rate of the LPO family (and the plain PPO baseline)
    b1: float
    b2: float
    sgd_lr: float  # `lr` handed to open_ff / no_features programs
    recur_lr: float  # `lr` handed to recurrent OPEN programs
    ppo_temp: float  # final return of tuned PPO-Adam: normaliser of lpo / open
    sgd_temp: float  # final return of tuned PPO-SGD: normaliser of open_ff / no_features
    return_floor: float = 0.0  # return that maps to 0 when normalising (0 for the original envs)
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    anneal_lr: bool = True
    continuous: bool = False
    library: str = "gymnax"  # or "brax" (optional extra)
    baseline_source: str = "original system (SPEC §3)"

    # -- derived sizes ---------------------------------------------------------------------
    @property
    def num_updates(self) -> int:
        return max(1, self.total_timesteps // (self.num_steps * self.num_envs))

    @property
    def minibatch_size(self) -> int:
        return self.num_envs * self.num_steps // self.num_minibatches

    @property
    def optimiser_steps(self) -> int:
        return self.num_updates * self.update_epochs * self.num_minibatches

    @property
    def steps_per_run(self) -> int:
        """Environment steps one training run really takes (after rounding to whole updates)."""
        return self.num_updates * self.num_steps * self.num_envs

    def scaled(self, total_timesteps: int | None = None, num_envs: int | None = None,
               **overrides: Any) -> "EnvConfig":
        """A copy with fewer steps or envs (for CPUs), keeping the minibatch count valid."""
        changes: dict[str, Any] = dict(overrides)
        if total_timesteps is not None:
            changes["total_timesteps"] = int(total_timesteps)
        if num_envs is not None:
            changes["num_envs"] = int(num_envs)
        new = dataclasses.replace(self, **changes)
        batch = new.num_envs * new.num_steps
        if batch % new.num_minibatches:
            raise ValueError(
                f"{new.key}: num_envs*num_steps = {batch} is not divisible by "
                f"num_minibatches = {new.num_minibatches}; pick num_envs so that it is"
            )
        return new

    def normalise(self, final_return: Any, normaliser: str) -> Any:
        """Map a raw return to 'fraction of the tuned baseline' (1.0 = matches it)."""
        top = self.ppo_temp if normaliser == "ppo" else self.sgd_temp
        return (final_return - self.return_floor) / (top - self.return_floor)


_SHARED_MINATAR = dict(num_envs=64, num_steps=128, total_timesteps=int(1e7), update_epochs=4,
                       num_minibatches=8, ent_coef=0.01, activation="relu", hsize=64)

_ORIGINAL = [
    EnvConfig(key="asterix", gymnax_id="Asterix-MinAtar", lr=3e-3, b1=0.9, b2=0.999, sgd_lr=0.52,
              recur_lr=3e-3, ppo_temp=15.0353, sgd_temp=15.414, **_SHARED_MINATAR),
    EnvConfig(key="breakout", gymnax_id="Breakout-MinAtar", lr=1e-2, b1=0.9, b2=0.99, sgd_lr=1.017,
              recur_lr=7e-3, ppo_temp=50.0822, sgd_temp=20.50, **_SHARED_MINATAR),
    EnvConfig(key="freeway", gymnax_id="Freeway-MinAtar", lr=1e-3, b1=0.9, b2=0.99, sgd_lr=0.56,
              recur_lr=1e-3, ppo_temp=61.8369, sgd_temp=61.6, **_SHARED_MINATAR),
    EnvConfig(key="spaceinvaders", gymnax_id="SpaceInvaders-MinAtar", lr=7e-3, b1=0.9, b2=0.99,
              sgd_lr=1.17, recur_lr=3e-3, ppo_temp=167.0913, sgd_temp=146.20, **_SHARED_MINATAR),
    EnvConfig(key="cartpole", gymnax_id="CartPole-v1", num_envs=4, num_steps=128,
              total_timesteps=int(5e5), update_epochs=4, num_minibatches=4, ent_coef=0.01,
              activation="tanh", hsize=64, lr=1e-3, b1=0.9, b2=0.999, sgd_lr=2.5e-4,
              recur_lr=1e-3, ppo_temp=475.0, sgd_temp=500.0),
]

_OURS = "chosen for this project (CartPole-style settings; baseline = measured PPO-Adam return)"
_SMALL = dict(num_envs=4, num_steps=128, total_timesteps=int(5e5), update_epochs=4,
              num_minibatches=4, ent_coef=0.01, activation="tanh", hsize=64, lr=1e-3, b1=0.9,
              b2=0.999, sgd_lr=2.5e-4, recur_lr=1e-3, baseline_source=_OURS)

_EXTRA = [
    EnvConfig(key="seaquest", gymnax_id="Seaquest-MinAtar", lr=3e-3, b1=0.9, b2=0.999, sgd_lr=0.52,
              recur_lr=3e-3, ppo_temp=40.0, sgd_temp=40.0, baseline_source=_OURS,
              **_SHARED_MINATAR),
    EnvConfig(key="acrobot", gymnax_id="Acrobot-v1", ppo_temp=-85.0, sgd_temp=-85.0,
              return_floor=-500.0, **_SMALL),
    EnvConfig(key="mountaincar", gymnax_id="MountainCar-v0", ppo_temp=-120.0, sgd_temp=-120.0,
              return_floor=-200.0, **_SMALL),
    EnvConfig(key="catch", gymnax_id="Catch-bsuite", ppo_temp=1.0, sgd_temp=1.0,
              return_floor=-1.0, **_SMALL),
    EnvConfig(key="fourrooms", gymnax_id="FourRooms-misc", ppo_temp=1.0, sgd_temp=1.0, **_SMALL),
    EnvConfig(key="pendulum", gymnax_id="Pendulum-v1", ppo_temp=-200.0, sgd_temp=-200.0,
              return_floor=-1400.0, continuous=True,
              **{**_SMALL, "total_timesteps": int(1e6), "ent_coef": 0.0}),
]

_BRAX = dict(num_envs=2048, num_steps=10, total_timesteps=int(3e7), update_epochs=4,
             num_minibatches=32, ent_coef=0.0, activation="tanh", hsize=64, continuous=True,
             library="brax")
_PLACEHOLDER = "original system; a placeholder copied from ant there (SPEC §10 item 13)"
_BRAX_ENVS = [
    EnvConfig(key="ant", gymnax_id="ant", lr=3e-4, b1=0.99, b2=0.99, sgd_lr=0.17, recur_lr=3e-4,
              ppo_temp=6517.31, sgd_temp=4443.31, **_BRAX),
    EnvConfig(key="humanoid", gymnax_id="humanoid", lr=3e-4, b1=0.9, b2=0.999, sgd_lr=0.053,
              recur_lr=3e-4, ppo_temp=6517.31, sgd_temp=1.0, baseline_source=_PLACEHOLDER, **_BRAX),
    EnvConfig(key="walker2d", gymnax_id="walker2d", lr=1e-3, b1=0.9, b2=0.999, sgd_lr=0.52,
              recur_lr=1e-3, ppo_temp=6517.31, sgd_temp=1.0, baseline_source=_PLACEHOLDER, **_BRAX),
    EnvConfig(key="hopper", gymnax_id="hopper", lr=8e-4, b1=0.9, b2=0.999, sgd_lr=0.27,
              recur_lr=8e-4, ppo_temp=6517.31, sgd_temp=1.0, baseline_source=_PLACEHOLDER, **_BRAX),
]

ENVS: dict[str, EnvConfig] = {c.key: c for c in _ORIGINAL + _EXTRA + _BRAX_ENVS}
_BY_GYMNAX_ID = {c.gymnax_id.lower(): c.key for c in ENVS.values()}
_BY_GYMNAX_ID["walker"] = "walker2d"


def env_names() -> list[str]:
    return sorted(ENVS)


def get_env_config(name: str) -> EnvConfig:
    """Look an environment up by short key ('cartpole') or gymnax id ('CartPole-v1')."""
    key = name.lower()
    key = _BY_GYMNAX_ID.get(key, key)
    if key not in ENVS:
        raise UnknownEnvError(
            f"unknown environment {name!r}; choose one of: {', '.join(env_names())} "
            f"(gymnax ids such as 'CartPole-v1' work too)"
        )
    return ENVS[key]
