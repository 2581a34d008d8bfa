"""What the sandbox tests send to workers: a tiny LPO job and PPO's own drift as a program."""

PPO = """
def drift(ratio, advantage, epsilon):
    ratio_clip = ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)
    return jax.nn.relu(ratio_clip * advantage)
"""


def lpo_job(timesteps: int = 4096, **extra) -> dict:
    """A one-seed CartPole job small enough that its compile dominates."""
    return {"family": "lpo", "kind": "code", "envs": ["cartpole"], "seeds": 1, "seed": 0,
            "timesteps": timesteps, "num_envs": 4, **extra}
