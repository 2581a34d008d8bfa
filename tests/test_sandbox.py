"""Sandbox workers: every hostile candidate becomes a typed outcome and nothing leaks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.pool import SandboxPool, scrubbed_env

ROOT = Path(__file__).resolve().parent.parent
JOB = {"family": "lpo", "kind": "code", "envs": ["cartpole"], "seeds": 1, "seed": 0,
       "timesteps": 4096, "num_envs": 4}
PPO = """
def drift(ratio, advantage, epsilon):
    ratio_clip = ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)
    return jax.nn.relu(ratio_clip * advantage)
"""


@pytest.fixture(scope="module")
def pool():
    os.environ["OPENAI_API_KEY"] = "sk-test-secret"
    with SandboxPool(spares=1, time_limit_s=60, memory_limit_mb=8192) as p:
        yield p


def test_scrubbed_env_drops_secrets(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("MY_TOKEN", "y")
    monkeypatch.setenv("DB_PASSWORD", "z")
    env = scrubbed_env()
    assert not {"ANTHROPIC_API_KEY", "MY_TOKEN", "DB_PASSWORD"} & set(env)
    assert "PATH" in env
    # the parent's compilation cache is not handed down: only the pool names a scorer's cache
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/tmp/parent-cache")
    assert "JAX_COMPILATION_CACHE_DIR" not in scrubbed_env()
    assert scrubbed_env({"JAX_COMPILATION_CACHE_DIR": "/c"})["JAX_COMPILATION_CACHE_DIR"] == "/c"


def test_outcomes(pool):
    big = ("def drift(ratio, advantage, epsilon):\n    x = jnp.cumsum(jnp.full(({n},), ratio[0]))\n"
           "    return jax.nn.relu(ratio - 1) * 0 + 0 * x[-1]\n")
    cases = [
        ("forbidden", "import os\ndef drift(ratio, advantage, epsilon):\n    return os.environ\n"),
        ("invalid", "def drift(ratio, advantage):\n    return ratio\n"),
        ("oom", big.format(n="12_500_000_000")),  # refused when exported: past 2**31 elements
        ("oom", big.format(n="2_100_000_000")),  # 8.4 GB per array: the scorer hits its limit
        ("crashed", "def drift(ratio, advantage, epsilon):\n    return ratio[:, None] @ jnp.ones((3, 3, 3))\n"),
    ]
    for expected, src in cases:
        r = pool.evaluate({**JOB, "source": src}, time_limit_s=60)
        assert r.outcome == expected, (expected, r)
        assert r.reason


def test_negative_drift_and_nonzero_at_one_are_invalid(pool):
    neg = "def drift(ratio, advantage, epsilon):\n    return -jnp.abs(ratio - 1)\n"
    r = pool.evaluate({**JOB, "source": neg})
    assert r.outcome == "invalid" and ">= 0" in r.reason
    off = "def drift(ratio, advantage, epsilon):\n    return jnp.abs(ratio) + 0 * advantage\n"
    r = pool.evaluate({**JOB, "source": off})
    assert r.outcome == "invalid" and "r = 1" in r.reason


def test_hang_is_killed_and_good_program_scores(pool):
    hang = "def drift(ratio, advantage, epsilon):\n    while True:\n        pass\n"
    r = pool.evaluate({**JOB, "source": hang}, time_limit_s=4)
    assert r.outcome == "timeout"
    r = pool.evaluate({**JOB, "source": PPO}, time_limit_s=120)
    assert r.outcome == "ok" and r.fitness is not None
    assert {"screen_s", "checks_s", "compile_s", "train_s", "wait_s"} <= set(r.timings)


def test_original_warm_start_as_written_scores_bit_identically(pool):
    """The original's LPO warm start, as a program through tracer and scorer, scores exactly as
    the family's own warm start trained in-process (through the same export boundary, as every
    trusted program is) on the same seeds, long enough that last-bit differences would show."""
    import inspect
    import textwrap

    from evaluators.envs import get_env_config
    from evaluators.families import get_family
    from evaluators.families.lpo import ppo_clip
    from sandbox.exported import through_export
    from sandbox.score import score

    src = "import jax\nimport jax.numpy as jnp\n\n" + textwrap.dedent(inspect.getsource(ppo_clip))
    job = {**JOB, "seeds": 2, "timesteps": 16384}
    r = pool.evaluate({**job, "source": src}, time_limit_s=120)
    family = get_family("lpo")
    env = get_env_config("cartpole").scaled(total_timesteps=job["timesteps"], num_envs=job["num_envs"])
    trusted = through_export(family, family.warm_start(), [env])
    native = score(family, trusted, {}, [env], [], job["seeds"], job["seed"])
    assert r.outcome == "ok" and native.outcome == "ok"
    assert r.fitness == native.fitness
    assert r.envs["cartpole"]["seed_returns"] == native.envs["cartpole"]["seed_returns"]


def test_eval_cli_time_limit(tmp_path):
    prog = tmp_path / "hang.py"
    prog.write_text("def drift(ratio, advantage, epsilon):\n    while True:\n        pass\n")
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "eval", "--family", "lpo", "--code",
                          str(prog), "--seeds", "1", "--timesteps", "4096", "--time-limit", "4", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and '"outcome": "timeout"' in out.stdout
