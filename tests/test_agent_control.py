"""Human-in-the-loop: approval (with an edit), rejection, and user messages reaching the prompt."""

import threading
import time

from workbench import control
from workbench.config import build_config
from workbench.runs import create_run, execute

EDITED = ("def drift(ratio, advantage, epsilon):\n"
          "    return jax.nn.relu((ratio - jnp.clip(ratio, 0.7, 1.3)) * advantage)\n")


def _cfg(**llm):
    return build_config({"family": "lpo", "method": "llm", "envs": ["cartpole"], "seeds": 1,
                         "timesteps": 4096, "num_envs": 4,
                         "llm": {"proposer": "mutation", "generations": 2, "approval": True, **llm},
                         "sandbox": {"time_limit_s": 60}})


def _wait_for_approval(store, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        ids = control.pending_approvals(store)
        if ids:
            return ids[0]
        time.sleep(0.2)
    raise AssertionError("no approval request")


def test_approve_with_edit_then_reject(tmp_path):
    cfg = _cfg()
    store = create_run(cfg, tmp_path / "run")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("status", execute(cfg, store)))
    t.start()
    first = _wait_for_approval(store)
    control.decide(store, first, "edit", EDITED)
    second = None
    end = time.time() + 120
    while second in (None, first) and time.time() < end:
        second = _wait_for_approval(store)
        time.sleep(0.1)
    control.decide(store, second, "reject", reason="not this one")
    t.join(timeout=180)
    assert result["status"] == "finished"
    a, b = store.candidate(first), store.candidate(second)
    assert a.outcome == "ok" and a.info["edited_source"] == EDITED
    assert b.outcome == "invalid" and b.reason == "not this one"


def test_user_message_reaches_llm_prompt(tmp_path):
    from evaluators.families import get_family
    from workbench.proposers.llm import LLMSource

    cfg = _cfg(proposer="llm", model="openai/test-model", api_base="http://127.0.0.1:9/v1")
    store = create_run(cfg, tmp_path / "run")
    cid = store.add_candidate(method="warm_start", kind="code", label="warm-start",
                              source=EDITED, source_hash="h")
    store.finish_candidate(cid, "ok", fitness=0.5)
    control.inject_message(store, "try a smaller clip range")
    src = LLMSource(cfg, get_family("lpo"))
    msgs, parent = src.build_messages(store, control.take_messages(store))
    text = msgs[1]["content"]
    assert "try a smaller clip range" in text and "fitness 0.5000" in text and parent[0] == cid
    assert "m = beta" not in text  # the LPO task, not an optimiser task
    assert control.take_messages(store) == []
