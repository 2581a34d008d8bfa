"""Tool mode against the REAL litellm client and a scripted OpenAI-compatible server on loopback.

The model calls top_candidates -> evaluate -> es_train -> (bad calls) -> final answer; the session
is interrupted right after a tool result was stored and later stopped through the control, and each
resume continues the conversation without asking the model again or re-running a finished call.
"""

import inspect
import json
import textwrap

import pytest
from scripted_llm import ScriptedHandler, scripted_server

from evaluators.families.lpo import ppo_clip
from workbench import control as ui_control
from workbench.agent.tool_loop import run_tool_loop
from workbench.agent.tools import call_tool
from workbench.config import ConfigError, build_config
from workbench.methods import get_method
from workbench.runs import create_run, execute

PPO_CLIP = textwrap.dedent(inspect.getsource(ppo_clip))


def _cfg(port: int | None = None, **llm):
    return build_config({
        "family": "lpo", "method": "llm", "envs": ["cartpole"], "seeds": 1, "timesteps": 2048,
        "num_envs": 4, "es": {"popsize": 4, "hsize": 8},
        "llm": {"loop": "tools", "model": "openai/test-model", "api_base": f"http://127.0.0.1:{port or 9}/v1",
                "request_timeout_s": 20, "max_retries": 1, "retry_base_s": 0.05, **llm},
        "sandbox": {"time_limit_s": 120}})


class _Interrupt:
    """Progress hook that raises KeyboardInterrupt once, right after `tool`'s result was stored:
    the window in which a kill loses the step's checkpoint but not the store's record."""

    def __init__(self, tool: str):
        self.tool, self.fired = tool, False

    def __call__(self, step, tool, result):
        if tool == self.tool and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


def test_tool_loop_plans_runs_and_resumes(tmp_path, monkeypatch):
    import workbench.methods as methods
    monkeypatch.setitem(methods.METHODS, "distill", "workbench.methods.not_there_distill")
    holder = {}
    script = [
        ("tool_calls", [("top_candidates", {"k": 3})]),
        ("tool_calls", [("evaluate", {"code": PPO_CLIP, "name": "ppo_clip"})]),
        ("tool_calls", [("es_train", {"generations": 1, "popsize": 4, "sigma": 0.05})]),
        ("call", lambda: ui_control.request_stop(holder["store"])),  # the user stops the session
        ("tool_calls", [("es_train", {"generations": 0, "popsiz": 4}),  # bad value and unknown key
                        ("evaluate", '{"code": "def drift(ratio'),  # arguments that are not JSON
                        ("distill", {"epochs": 1}),  # not installed here
                        ("show_candidate", {"id": 1})]),
        ("text", "Best: candidate 1 (PPO's clip). ES needs more generations."),
    ]
    with scripted_server(script) as srv:
        cfg = _cfg(srv.server_address[1], max_tool_steps=20)
        store = holder["store"] = create_run(cfg, tmp_path / "run")
        with pytest.raises(KeyboardInterrupt):  # killed just after evaluate's result was stored
            run_tool_loop(cfg, store, progress=_Interrupt("evaluate"), methods=get_method)
        assert len(ScriptedHandler.bodies) == 2
        assert execute(cfg, store) == "stopped"  # stop honoured before the 4th reply's calls
        assert len(ScriptedHandler.bodies) == 4
        ui_control.inject_message(store, "please summarise what you found")
        assert execute(cfg, store) == "finished"
        assert len(ScriptedHandler.bodies) == 5  # no model turn asked twice
        assert execute(cfg, store) == "finished"  # a finished conversation stays finished
        assert len(ScriptedHandler.bodies) == 5

    rows = store.candidates()
    ev = [r for r in rows if r.method == "llm"]
    es = [r for r in rows if r.method == "es"]
    assert len(ev) == 1 and ev[0].id == 1
    assert ev[0].source == PPO_CLIP and ev[0].outcome == "ok" and ev[0].fitness is not None
    assert len(es) == 2 and all(r.kind == "network" and r.outcome == "ok" for r in es)  # gen 0 and gen 1
    evaluating = [e["payload"]["id"] for e in store.events() if e["kind"] == "evaluating"]
    assert evaluating.count(ev[0].id) == 1  # the interrupted step did not run evaluate again

    msgs = store.messages()
    tool_msgs = [m for m in msgs if m["role"] == "tool"]
    assert [m["info"]["tool"] for m in tool_msgs] == [
        "top_candidates", "evaluate", "es_train", "es_train", "evaluate", "distill", "show_candidate"]
    assert len({m["info"]["call"] for m in tool_msgs}) == len(tool_msgs)  # each call answered once
    results = [json.loads(m["content"]) for m in tool_msgs]
    assert results[0] == {"candidates": []}
    assert results[1]["outcome"] == "ok" and results[1]["id"] == ev[0].id
    assert {r["id"] for r in results[2]["new_candidates"]} == {r.id for r in es}
    assert "generations" in results[3]["error"] and "popsiz" in results[3]["error"]
    assert "not valid JSON" in results[4]["error"]
    assert "distill" in results[5]["error"]
    assert results[6]["id"] == 1 and "outcome" in results[6]
    assistant = [m for m in msgs if m["role"] == "assistant"]
    assert len(assistant) == 5 and assistant[-1]["info"]["final"] and "candidate 1" in assistant[-1]["content"]
    assert all(m["info"]["prompt_tokens"] == 100 for m in assistant)
    assert "-> es_train(" in assistant[2]["content"]

    # the last request carried the whole conversation in OpenAI order, the tools and the user's message
    last = json.loads(ScriptedHandler.bodies[-1])
    assert {t["function"]["name"] for t in last["tools"]} >= {"evaluate", "es_train", "symbolic_search"}
    conv = last["messages"]
    assert conv[0]["role"] == "system" and "es_train" in conv[0]["content"]
    assert "drift(ratio, advantage, epsilon)" in conv[1]["content"]
    for i, m in enumerate(conv):
        if m["role"] == "assistant" and m.get("tool_calls"):
            ids = [c["id"] for c in m["tool_calls"]]
            assert [x["tool_call_id"] for x in conv[i + 1: i + 1 + len(ids)]] == ids
    assert conv[-1] == {"role": "user", "content": "please summarise what you found"}
    assert store.run_info()["status"] == "finished"


def test_tool_step_budget_stops_and_resume_with_more(tmp_path):
    script = [("tool_calls", [("top_candidates", {}), ("top_candidates", {"k": 2})]),
              ("tool_calls", [("show_candidate", {"id": 7})]), ("text", "nothing to report")]
    with scripted_server(script) as srv:
        cfg = _cfg(srv.server_address[1], max_tool_steps=1)
        store = create_run(cfg, tmp_path / "run")
        assert execute(cfg, store) == "finished"
        assert [m["info"]["tool"] for m in store.messages() if m["role"] == "tool"] == ["top_candidates"]
        assert any("tool-step budget" in e["payload"].get("stop", "") for e in store.events()
                   if e["kind"] == "agent")
        more = cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"max_tool_steps": 5})})
        assert execute(more, store) == "finished"
        tools = [m for m in store.messages() if m["role"] == "tool"]
        assert [m["info"]["tool"] for m in tools] == ["top_candidates", "top_candidates", "show_candidate"]
        assert "no candidate 7" in json.loads(tools[-1]["content"])["error"]
        assert len(ScriptedHandler.bodies) == 3


def test_tool_mode_needs_a_model():
    with pytest.raises(ConfigError, match=r"llm.model.*method: pipeline"):
        build_config({"method": "llm", "llm": {"loop": "tools"}})
    with pytest.raises(ConfigError, match="llm.proposer"):
        build_config({"method": "llm", "llm": {"loop": "tools", "proposer": "mutation", "model": "m"}})


def test_tool_arguments_are_validated(tmp_path):
    cfg = _cfg()
    store = create_run(cfg, tmp_path / "run")
    assert "popsize" in call_tool(store, cfg, "es_train", {"popsize": 1})["error"]
    assert "lr" in call_tool(store, cfg, "es_train", {"lr": "fast"})["error"]
    assert "hidden" in call_tool(store, cfg, "distill", {"hidden": 3})["error"]
    assert "backend" in call_tool(store, cfg, "symbolic_search", {"backend": "magic"})["error"]
    assert "k" in call_tool(store, cfg, "top_candidates", {"k": "all"})["error"]
    assert "code" in call_tool(store, cfg, "evaluate", {})["error"]
    assert "JSON object" in call_tool(store, cfg, "top_candidates", [1, 2])["error"]
    assert not store.candidates()  # nothing ran
