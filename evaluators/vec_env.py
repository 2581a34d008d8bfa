"""Batched environments for the PPO loop: gymnax tasks, and Brax tasks when brax is installed.

The loop sees one interface, `VecEnv`: reset all envs, step all envs, and the episode return of
each env's last finished episode (logged on raw rewards, before any normalisation).  Brax tasks
follow the original wrapping (SPEC §3): episode length 1000, auto-reset, actions clipped to
[-1, 1], running observation normalisation and reward scaling by the running std of the
discounted return — statistics shared across the batch of envs, hence this batched layer.

gymnax and Brax are imported here, when an environment is built, never by the registry (envs.py).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from .envs import EnvConfig


class VecEnv(NamedTuple):
    obs_dim: int
    action_dim: int
    continuous: bool
    action_low: float
    action_high: float
    reset: Callable[[jax.Array], tuple[jax.Array, Any]]
    # step(key, state, action) -> (obs, state, reward, done, returned_episode_return)
    step: Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array, jax.Array, jax.Array]]


# --------------------------------------------------------------------------------------------
# Stepping with episode statistics (the 'log wrapper' of purejaxrl, for gymnax 1.0's 6-tuple API)
# --------------------------------------------------------------------------------------------

class EpisodeState(NamedTuple):
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array
    returned_episode_return: jax.Array  # return of the most recently finished episode
    returned_episode_length: jax.Array


def make_env(cfg: EnvConfig) -> tuple[Any, Any]:
    """The gymnax environment and its default parameters."""
    import gymnax  # here, not at import: only building an environment needs it

    return gymnax.make(cfg.gymnax_id)


def env_reset(env: Any, params: Any, key: jax.Array) -> tuple[jax.Array, EpisodeState]:
    obs, state = env.reset(key, params)
    zero = jnp.zeros((), jnp.float32)
    return (jnp.reshape(obs, (-1,)).astype(jnp.float32),
            EpisodeState(state, zero, jnp.zeros((), jnp.int32), zero, jnp.zeros((), jnp.int32)))


def env_step(env: Any, params: Any, key: jax.Array, state: EpisodeState, action: jax.Array
             ) -> tuple[jax.Array, EpisodeState, jax.Array, jax.Array]:
    """Step with gymnax's auto-reset; returns (obs, state, reward, done)."""
    obs, env_state, reward, terminated, truncated, _ = env.step(key, state.env_state, action, params)
    done = jnp.logical_or(terminated, truncated)
    reward = jnp.asarray(reward, jnp.float32)
    ep_ret = state.episode_return + reward
    ep_len = state.episode_length + 1
    new = EpisodeState(
        env_state=env_state,
        episode_return=ep_ret * (1 - done),
        episode_length=ep_len * (1 - done),
        returned_episode_return=jnp.where(done, ep_ret, state.returned_episode_return),
        returned_episode_length=jnp.where(done, ep_len, state.returned_episode_length),
    )
    return jnp.reshape(obs, (-1,)).astype(jnp.float32), new, reward, done


def make_vec_env(cfg: EnvConfig) -> VecEnv:
    if cfg.library == "brax":
        return _brax_vec_env(cfg)
    return _gymnax_vec_env(cfg)


def _gymnax_vec_env(cfg: EnvConfig) -> VecEnv:
    env, params = make_env(cfg)
    obs_dim = 1
    for d in env.observation_space(params).shape:
        obs_dim *= int(d)
    if cfg.continuous:
        space = env.action_space(params)
        action_dim, low, high = int(space.shape[0]), float(jnp.min(space.low)), float(jnp.max(space.high))
    else:
        action_dim, low, high = int(env.num_actions), 0.0, 0.0
    v_reset = jax.vmap(env_reset, in_axes=(None, None, 0))
    v_step = jax.vmap(env_step, in_axes=(None, None, 0, 0, 0))

    def reset(key):
        return v_reset(env, params, jax.random.split(key, cfg.num_envs))

    def step(key, state, action):
        obs, state, reward, done = v_step(env, params, jax.random.split(key, cfg.num_envs), state, action)
        return obs, state, reward, done, state.returned_episode_return

    return VecEnv(obs_dim, action_dim, cfg.continuous, low, high, reset, step)


# ------------------------------------------------------------------------------------------------
# Brax
# ------------------------------------------------------------------------------------------------

class RunningMoments(NamedTuple):
    mean: jax.Array
    var: jax.Array
    count: jax.Array


def _moments_init(shape) -> RunningMoments:
    return RunningMoments(jnp.zeros(shape), jnp.ones(shape), jnp.asarray(1e-4))


def _moments_update(m: RunningMoments, batch: jax.Array) -> RunningMoments:
    """Parallel (Chan et al.) update of running mean/variance with a batch along axis 0."""
    b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
    delta = b_mean - m.mean
    total = m.count + b_count
    mean = m.mean + delta * b_count / total
    m2 = m.var * m.count + b_var * b_count + delta ** 2 * m.count * b_count / total
    return RunningMoments(mean, m2 / total, total)


class BraxState(NamedTuple):
    env_state: Any
    episode_return: jax.Array
    returned_episode_return: jax.Array
    obs_moments: RunningMoments
    ret_moments: RunningMoments
    discounted_return: jax.Array


def _brax_vec_env(cfg: EnvConfig) -> VecEnv:
    try:
        from brax import envs as brax_envs
        from brax.envs.wrappers.training import AutoResetWrapper, EpisodeWrapper
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise ImportError(f"{cfg.key} needs Brax: pip install -e '.[brax]' ({exc})") from None
    env = brax_envs.get_environment(cfg.gymnax_id, backend="positional")
    env = AutoResetWrapper(EpisodeWrapper(env, episode_length=1000, action_repeat=1))
    obs_dim, action_dim = int(env.observation_size), int(env.action_size)
    v_reset, v_step = jax.vmap(env.reset), jax.vmap(env.step)
    n = cfg.num_envs

    def normalise(obs, moments):
        return (obs - moments.mean) / jnp.sqrt(moments.var + 1e-8)

    def reset(key):
        env_state = v_reset(jax.random.split(key, n))
        obs_m = _moments_update(_moments_init((obs_dim,)), env_state.obs)
        zeros = jnp.zeros((n,))
        state = BraxState(env_state, zeros, zeros, obs_m, _moments_init(()), zeros)
        return normalise(env_state.obs, obs_m), state

    def step(key, state: BraxState, action):
        del key  # Brax dynamics are deterministic
        env_state = v_step(state.env_state, jnp.clip(action, -1.0, 1.0))
        reward, done = env_state.reward, env_state.done
        ep_ret = state.episode_return + reward
        returned = jnp.where(done > 0, ep_ret, state.returned_episode_return)
        obs_m = _moments_update(state.obs_moments, env_state.obs)
        disc = state.discounted_return * cfg.gamma * (1 - done) + reward
        ret_m = _moments_update(state.ret_moments, disc)
        new = BraxState(env_state, ep_ret * (1 - done), returned, obs_m, ret_m, disc)
        scaled = reward / jnp.sqrt(ret_m.var + 1e-8)
        return normalise(env_state.obs, obs_m), new, scaled, done, returned

    return VecEnv(obs_dim, action_dim, True, -1.0, 1.0, reset, step)
