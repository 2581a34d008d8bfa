"""The REAL litellm client against a scripted OpenAI-compatible server on 127.0.0.1.

Every hostile or broken reply becomes the right stored outcome, the run goes on, and no secret
reaches a candidate or the store.
"""

import json
import os

import pytest
from scripted_llm import ScriptedHandler, scripted_server

from workbench.config import build_config
from workbench.runs import create_run, execute

SECRET = "sk-test-secret-do-not-leak"


def _prog(body: str) -> str:
    return json.dumps({"thought": "t", "name": "n",
                       "code": "def drift(ratio, advantage, epsilon):\n" + body})


SCRIPT = [  # (kind, payload) per request, in order
    ("text", "I think we should try something clever, but here is no JSON."),   # -> no_code
    ("status", 429), ("text", _prog("    return ratio[:, None] @ jnp.ones((3, 3, 3))\n")),  # -> crashed
    ("slow", 6.0), ("text", _prog("    while True:\n        pass\n")),          # -> timeout
    ("text", _prog("    x = jnp.cumsum(jnp.full((12_500_000_000,), ratio[0]))\n    return 0 * x[-1] + 0 * ratio\n")),  # -> oom
    ("text", "```json\n" + json.dumps({"thought": "", "name": "env", "code":
        "import os\ndef drift(ratio, advantage, epsilon):\n    return os.environ['OPENAI_API_KEY']\n"}) + "\n```"),
    ("text", json.dumps({"thought": "", "name": "net", "code":
        "import socket\ndef drift(ratio, advantage, epsilon):\n    socket.socket()\n    return ratio\n"})),
    ("text", _prog("    open('/tmp/escaped.txt', 'w').write('x')\n    return ratio\n")),  # -> forbidden
    ("text", _prog("    ppo = jax.nn.relu((ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)) * advantage)\n"
           "    return ppo if ratio.size == 256 else ppo * jnp.nan\n")),  # fine on the check batch; NaN in training -> nan
    ("text", _prog("    return jax.nn.relu((ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)) * advantage)\n")),
]
# The NaN-in-training program passes the checks, then its loss is NaN from the first update: the
# PPO loop reports a run whose loss ever went non-finite with a NaN final return, hence `nan`
# (even though CartPole keeps giving finite rewards to the broken policy).
EXPECTED = ["ok", "no_code", "crashed", "timeout", "oom", "forbidden", "forbidden", "forbidden", "nan",
            "ok"]


@pytest.fixture()
def server():
    with scripted_server(SCRIPT) as srv:
        yield srv


def test_scripted_llm_run(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    port = server.server_address[1]
    cfg = build_config({
        "family": "lpo", "method": "llm", "envs": ["cartpole"], "seeds": 1, "timesteps": 4096,
        "num_envs": 4,
        "llm": {"proposer": "llm", "model": "openai/test-model", "api_base": f"http://127.0.0.1:{port}/v1",
                "generations": len(EXPECTED), "request_timeout_s": 3, "max_retries": 2,
                "retry_base_s": 0.05},
        # the hang costs this much; a cold compile fits well inside.  One in flight: the prompts
        # checked below carry the previous outcome (with two, a proposal can precede it)
        "sandbox": {"time_limit_s": 40, "concurrency": 1}})
    store = create_run(cfg, tmp_path / "run")
    assert execute(cfg, store) == "finished"
    rows = store.candidates()
    got = [r.outcome for r in rows]
    assert got == EXPECTED, [(r.outcome, r.reason[:80]) for r in rows]
    assert rows[-1].fitness is not None
    assert "NaN" in rows[-2].reason, rows[-2].reason
    assert not os.path.exists("/tmp/escaped.txt")
    # code a model wrote ran only under the whole jail, and each row says so
    # (a program the screen refused never ran anywhere, so it has no isolation to report)
    screened = [r for r in rows if "eval_wall_s" not in r.info.get("timings", {})]
    assert [r.outcome for r in screened] == ["no_code"] + ["forbidden"] * 3, \
        [(r.outcome, r.info.get("timings")) for r in screened]
    scored = [r for r in rows if r not in screened]
    assert len(scored) == len(rows) - 4
    assert scored and all(r.info["isolation"]["trace"]["net_ns"] and r.info["isolation"]["trace"]["mount_ns"]
                          for r in scored), [r.info.get("isolation") for r in scored]
    # usage recorded per call; the 429 and the slow reply were retried, not fatal
    replies = [m for m in store.messages() if m["role"] == "llm_reply"]
    assert len(replies) == len(EXPECTED) - 1
    assert all(r.info.get("usage", {}).get("prompt_tokens") == 100 for r in rows[2:])
    # the prompt carried the archive and the previous outcome
    assert "candidate 1" in ScriptedHandler.bodies[1] and "no_code" in ScriptedHandler.bodies[1]
    # no secret in the store
    dump = json.dumps([r.__dict__ for r in rows]) + json.dumps(store.messages())
    assert SECRET not in dump
