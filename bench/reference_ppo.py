"""A plain Adam-PPO written the standard way (one flax module, optax, PPO's min-clip loss).

It is the speed reference for `bench/inner_loop.py`: same environments, sizes and settings as
our family loop, none of its hooks.  Not used by the product.
"""

from __future__ import annotations

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax


class ActorCritic(nn.Module):
    n_actions: int
    hsize: int
    activation: str

    @nn.compact
    def __call__(self, x):
        act = nn.tanh if self.activation == "tanh" else nn.relu
        ortho = nn.initializers.orthogonal
        a = act(nn.Dense(self.hsize, kernel_init=ortho(np.sqrt(2)))(x))
        a = act(nn.Dense(self.hsize, kernel_init=ortho(np.sqrt(2)))(a))
        logits = nn.Dense(self.n_actions, kernel_init=ortho(0.01))(a)
        c = act(nn.Dense(self.hsize, kernel_init=ortho(np.sqrt(2)))(x))
        c = act(nn.Dense(self.hsize, kernel_init=ortho(np.sqrt(2)))(c))
        return logits, nn.Dense(1, kernel_init=ortho(1.0))(c)[..., 0]


def make_reference_train(cfg):
    """`train(rng) -> final return` for a discrete gymnax env described by an EnvConfig."""
    env, params = gymnax.make(cfg.gymnax_id)
    net = ActorCritic(env.num_actions, cfg.hsize, cfg.activation)
    n_envs, n_steps = cfg.num_envs, cfg.num_steps
    n_updates, n_mb = cfg.num_updates, cfg.num_minibatches

    def lr(count):
        return cfg.lr * (1.0 - (count // (n_mb * cfg.update_epochs)) / n_updates)

    tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(lr, cfg.b1, cfg.b2, eps=1e-5))

    def reset(key):
        obs, state = env.reset(key, params)
        return obs.reshape(-1), state

    def step(key, state, action, ep_ret, last_ret):
        obs, state, reward, term, trunc, _ = env.step(key, state, action, params)
        done = term | trunc
        ep_ret = ep_ret + reward
        return obs.reshape(-1), state, reward, done, ep_ret * (1 - done), jnp.where(done, ep_ret, last_ret)

    def train(rng):
        rng, k_init, k_reset = jax.random.split(rng, 3)
        obs, state = jax.vmap(reset)(jax.random.split(k_reset, n_envs))
        theta = net.init(k_init, obs)
        opt = tx.init(theta)
        ep_ret = jnp.zeros(n_envs)
        last_ret = jnp.zeros(n_envs)

        def rollout(carry, _):
            theta, obs, state, ep_ret, last_ret, rng = carry
            rng, k_a, k_s = jax.random.split(rng, 3)
            logits, value = net.apply(theta, obs)
            action = jax.random.categorical(k_a, logits)
            logp = jax.nn.log_softmax(logits)[jnp.arange(n_envs), action]
            obs2, state, reward, done, ep_ret, last_ret = jax.vmap(step)(
                jax.random.split(k_s, n_envs), state, action, ep_ret, last_ret)
            return (theta, obs2, state, ep_ret, last_ret, rng), (obs, action, reward, done, value, logp, last_ret)

        def loss(theta, obs, action, old_logp, old_value, adv, target):
            logits, value = net.apply(theta, obs)
            logp_all = jax.nn.log_softmax(logits)
            logp = jnp.take_along_axis(logp_all, action[:, None], axis=1)[:, 0]
            v_clip = old_value + jnp.clip(value - old_value, -cfg.clip_eps, cfg.clip_eps)
            v_loss = 0.5 * jnp.maximum((value - target) ** 2, (v_clip - target) ** 2).mean()
            ratio = jnp.exp(logp - old_logp)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - cfg.clip_eps, 1 + cfg.clip_eps) * adv).mean()
            ent = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
            return pg + cfg.vf_coef * v_loss - cfg.ent_coef * ent

        def update(carry, _):
            theta, opt, obs, state, ep_ret, last_ret, rng = carry
            (theta, obs, state, ep_ret, last_ret, rng), traj = jax.lax.scan(
                rollout, (theta, obs, state, ep_ret, last_ret, rng), None, n_steps)
            t_obs, t_act, t_rew, t_done, t_val, t_logp, t_ret = traj
            _, last_v = net.apply(theta, obs)

            def gae(carry, x):
                adv, nv = carry
                r, d, v = x
                delta = r + cfg.gamma * nv * (1 - d) - v
                adv = delta + cfg.gamma * cfg.gae_lambda * (1 - d) * adv
                return (adv, v), adv

            _, advs = jax.lax.scan(gae, (jnp.zeros(n_envs), last_v), (t_rew, t_done, t_val), reverse=True)
            targets = advs + t_val
            data = jax.tree.map(lambda x: x.reshape((n_steps * n_envs,) + x.shape[2:]),
                                (t_obs, t_act, t_logp, t_val, advs, targets))

            def epoch(carry, _):
                theta, opt, rng = carry
                rng, k = jax.random.split(rng)
                perm = jax.random.permutation(k, n_steps * n_envs)
                mbs = jax.tree.map(lambda x: jnp.take(x, perm, axis=0).reshape((n_mb, -1) + x.shape[1:]), data)

                def mb_step(carry, mb):
                    theta, opt = carry
                    grads = jax.grad(loss)(theta, *mb)
                    upd, opt = tx.update(grads, opt, theta)
                    return (optax.apply_updates(theta, upd), opt), None

                (theta, opt), _ = jax.lax.scan(mb_step, (theta, opt), mbs)
                return (theta, opt, rng), None

            (theta, opt, rng), _ = jax.lax.scan(epoch, (theta, opt, rng), None, cfg.update_epochs)
            return (theta, opt, obs, state, ep_ret, last_ret, rng), t_ret[-1].mean()

        carry = (theta, opt, obs, state, ep_ret, last_ret, rng)
        _, finals = jax.lax.scan(update, carry, None, n_updates)
        return finals[-1]

    return train


def make_raw_stepper(cfg, num_envs: int, num_steps: int):
    """Random-action vmapped stepping: the ceiling the environments alone allow."""
    env, params = gymnax.make(cfg.gymnax_id)

    def run(rng):
        obs, state = jax.vmap(lambda k: env.reset(k, params))(jax.random.split(rng, num_envs))

        def body(carry, _):
            state, rng = carry
            rng, k_a, k_s = jax.random.split(rng, 3)
            actions = jax.random.randint(k_a, (num_envs,), 0, env.num_actions)
            _, state, reward, _, _, _ = jax.vmap(lambda k, s, a: env.step(k, s, a, params))(
                jax.random.split(k_s, num_envs), state, actions)
            return (state, rng), reward.sum()

        _, rewards = jax.lax.scan(body, (state, rng), None, num_steps)
        return rewards.sum()

    return run
