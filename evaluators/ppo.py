"""The one PPO inner loop (purejaxrl style): `make_train(env, algorithm)` -> pure `train`.

Every family plugs in through an `Algorithm` (a drift for the Mirror-Learning objective and an
optimiser), so there is one copy of the loop for all of them.  The whole run is a single
`lax.scan`; the candidate's parameters are an argument, so populations and seeds are vmapped
outside (see fitness.py).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from .envs import EnvConfig
from .families.base import Algorithm
from .learned_optimiser import UpdateContext
from .networks import init_agent, mlp_forward
from .vec_env import make_vec_env


class Transition(NamedTuple):
    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array
    value: jax.Array
    log_prob: jax.Array
    returned_episode_return: jax.Array


class TrainOutput(NamedTuple):
    final_return: jax.Array  # mean over envs of the last finished episode's return, at the end
    curve: jax.Array  # (num_updates,) mean returned-episode return per update


def _policy(actor_out: jax.Array, actor_params: dict, continuous: bool):
    """(sample, log_prob, entropy) functions for a categorical or diagonal-Gaussian policy."""
    if continuous:
        mean, log_std = actor_out, actor_params["log_std"]

        def sample(key):
            return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

        def log_prob(a):
            z = (a - mean) / jnp.exp(log_std)
            return jnp.sum(-0.5 * z ** 2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)

        def entropy():
            return jnp.sum(0.5 + 0.5 * jnp.log(2 * jnp.pi) + log_std) * jnp.ones(mean.shape[:-1])
        return sample, log_prob, entropy

    logp_all = jax.nn.log_softmax(actor_out)

    def sample(key):
        return jax.random.categorical(key, actor_out)

    def log_prob(a):
        return jnp.take_along_axis(logp_all, a[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy():
        return -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
    return sample, log_prob, entropy


def make_train(env_cfg: EnvConfig, algorithm: Algorithm) -> Callable[[jax.Array, Any], TrainOutput]:
    """Build `train(rng, meta)`: one complete PPO run on `env_cfg` with the given algorithm."""
    venv = make_vec_env(env_cfg)
    obs_dim, action_dim = venv.obs_dim, venv.action_dim
    n_envs, n_steps = env_cfg.num_envs, env_cfg.num_steps
    n_updates, n_epochs, n_mb = env_cfg.num_updates, env_cfg.update_epochs, env_cfg.num_minibatches
    act = env_cfg.activation

    def loss_fn(params, meta, batch: Transition, gae, targets):
        actor_out, actor_stats = mlp_forward(params["actor"], batch.obs, act)
        value_out, critic_stats = mlp_forward(params["critic"], batch.obs, act)
        value = value_out[..., 0]
        _, log_prob_fn, entropy_fn = _policy(actor_out, params["actor"], venv.continuous)
        log_prob = log_prob_fn(batch.action)

        value_clipped = batch.value + jnp.clip(value - batch.value, -env_cfg.clip_eps, env_cfg.clip_eps)
        value_loss = 0.5 * jnp.maximum(jnp.square(value - targets),
                                       jnp.square(value_clipped - targets)).mean()
        ratio = jnp.exp(log_prob - batch.log_prob)
        adv = (gae - gae.mean()) / (gae.std() + 1e-8)
        drift = algorithm.drift(meta, ratio, adv, env_cfg.clip_eps)
        actor_loss = -jnp.mean(ratio * adv - drift)
        entropy = entropy_fn().mean()
        total = actor_loss + env_cfg.vf_coef * value_loss - env_cfg.ent_coef * entropy
        stats = jax.lax.stop_gradient({"actor": actor_stats, "critic": critic_stats})
        return total, stats

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def train(rng: jax.Array, meta: Any) -> TrainOutput:
        rng, k_agent, k_opt, k_reset = jax.random.split(rng, 4)
        params = init_agent(k_agent, obs_dim, action_dim, env_cfg.hsize, venv.continuous)
        opt_state = algorithm.opt_init(meta, params, k_opt)
        obs, env_state = venv.reset(k_reset)

        def env_step_fn(carry, _):
            params, env_state, obs, rng = carry
            rng, k_act, k_env = jax.random.split(rng, 3)
            actor_out, _ = mlp_forward(params["actor"], obs, act)
            value = mlp_forward(params["critic"], obs, act)[0][..., 0]
            sample, log_prob_fn, _ = _policy(actor_out, params["actor"], venv.continuous)
            action = sample(k_act)
            log_prob = log_prob_fn(action)
            env_action = jnp.clip(action, venv.action_low, venv.action_high) if venv.continuous else action
            next_obs, env_state, reward, done, returned = venv.step(k_env, env_state, env_action)
            tr = Transition(obs, action, reward, done.astype(jnp.float32), value, log_prob, returned)
            return (params, env_state, next_obs, rng), tr

        def update_step(carry, update_idx):
            params, opt_state, env_state, obs, rng = carry
            (params, env_state, obs, rng), traj = jax.lax.scan(
                env_step_fn, (params, env_state, obs, rng), None, n_steps)
            last_value = mlp_forward(params["critic"], obs, act)[0][..., 0]

            def gae_step(carry, tr: Transition):
                gae, next_value = carry
                delta = tr.reward + env_cfg.gamma * next_value * (1 - tr.done) - tr.value
                gae = delta + env_cfg.gamma * env_cfg.gae_lambda * (1 - tr.done) * gae
                return (gae, tr.value), gae

            _, advantages = jax.lax.scan(gae_step, (jnp.zeros_like(last_value), last_value),
                                         traj, reverse=True)
            targets = advantages + traj.value
            train_prop = update_idx / jnp.maximum(n_updates - 1, 1)

            def epoch_step(carry, epoch_idx):
                params, opt_state, rng = carry
                rng, k_perm = jax.random.split(rng)
                perm = jax.random.permutation(k_perm, n_steps * n_envs)

                def shuffle(x):
                    x = x.reshape((n_steps * n_envs,) + x.shape[2:])
                    return jnp.take(x, perm, axis=0).reshape((n_mb, -1) + x.shape[1:])

                mbs = jax.tree.map(shuffle, (traj, advantages, targets))
                batch_prop = epoch_idx / jnp.maximum(n_epochs - 1, 1)

                def minibatch_step(carry, mb):
                    params, opt_state, rng = carry
                    rng, k_upd = jax.random.split(rng)
                    tr, gae, tgt = mb
                    (loss, stats), grads = grad_fn(params, meta, tr, gae, tgt)
                    ctx = UpdateContext(train_prop=train_prop, batch_prop=batch_prop,
                                        activations=stats, key=k_upd)
                    params, opt_state = algorithm.opt_update(meta, grads, opt_state, params, ctx)
                    return (params, opt_state, rng), ~jnp.isfinite(loss)

                (params, opt_state, rng), bad = jax.lax.scan(
                    minibatch_step, (params, opt_state, rng), mbs)
                return (params, opt_state, rng), jnp.any(bad)

            (params, opt_state, rng), bad = jax.lax.scan(
                epoch_step, (params, opt_state, rng), jnp.arange(n_epochs))
            metric = (traj.returned_episode_return.mean(), traj.returned_episode_return[-1].mean(),
                      jnp.any(bad))
            return (params, opt_state, env_state, obs, rng), metric

        carry = (params, opt_state, env_state, obs, rng)
        _, (curve, last, bad) = jax.lax.scan(update_step, carry, jnp.arange(n_updates))
        # A run whose loss ever became NaN/inf diverged: its final return is reported as NaN,
        # even though the environment keeps returning finite rewards to a broken policy.
        return TrainOutput(final_return=jnp.where(jnp.any(bad), jnp.nan, last[-1]), curve=curve)

    return train
