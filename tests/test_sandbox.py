"""Sandbox workers: every hostile candidate becomes a typed outcome and nothing leaks."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.pool import SandboxPool, scrubbed_env
from tests.sandbox_jobs import PPO, lpo_job

ROOT = Path(__file__).resolve().parent.parent
JOB = lpo_job()


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


NETWORK_PROBE = """
import _socket, json, socket
seen = {{}}
def attempt(name, fn):
    try:
        fn()
        seen[name] = "allowed"
    except Exception as exc:
        seen[name] = type(exc).__name__ + ": " + str(exc)[:100]
def raw(addr):  # below the socket module: only the network namespace stands in the way
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(addr)
    finally:
        s.close()
attempt("loopback", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2))
attempt("outside", lambda: socket.socket().connect(("192.0.2.1", 80)))
attempt("raw_loopback", lambda: raw(("127.0.0.1", {port})))
attempt("raw_outside", lambda: raw(("192.0.2.1", 80)))
raise RuntimeError("network probe " + json.dumps(seen))
"""


def test_a_candidate_in_a_real_worker_has_no_network(pool):
    """A program run by the pool's own tracer (past the screen on purpose, as in
    test_sandbox_attacks.py: the worker must hold when the screen is fooled) tries a host loopback listener and an outside address: the socket module refuses
    both with the sandbox's message, and with the jail a raw `_socket` connect fails too; the
    listener sees no connection."""
    import json

    from sandbox.jail import probe
    from sandbox.worker import NETWORK_MESSAGE

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    try:
        src = NETWORK_PROBE.format(port=listener.getsockname()[1]) + PPO
        r = pool.evaluate({**JOB, "source": src, "screen": False})
        assert r.outcome == "invalid" and r.fitness is None, r  # it raised while being defined
        assert "defining the program failed" in r.reason and "network probe" in r.reason, r.reason
        seen = json.loads(r.reason[r.reason.index("{"): r.reason.rindex("}") + 1])
        for name in ("loopback", "outside"):
            assert seen[name] == f"PermissionError: {NETWORK_MESSAGE}", (name, seen)
        if probe().full:  # Landlock refuses the connect (EACCES); without it lo is down anyway
            assert r.isolation["trace"]["net_ns"]
            for name in ("raw_loopback", "raw_outside"):
                assert ("Permission denied" in seen[name] or "unreachable" in seen[name]), (name, seen)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


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
