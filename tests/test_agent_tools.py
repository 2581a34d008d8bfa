"""Agent tools: dispatch, archive views, sandboxed evaluate with dedup, missing methods skipped."""

import inspect
import textwrap

from evaluators.families.lpo import ppo_clip
from workbench.agent.tools import TOOL_SCHEMAS, TOOLS, call_tool
from workbench.config import build_config
from workbench.methods import get_method
from workbench.runs import create_run


def test_tools(tmp_path, monkeypatch):
    import workbench.methods as methods
    monkeypatch.setitem(methods.METHODS, "distill", "workbench.methods.not_there_distill")
    cfg = build_config({"family": "lpo", "envs": ["cartpole"], "seeds": 1, "timesteps": 4096, "num_envs": 4,
                        "sandbox": {"time_limit_s": 60}})
    store = create_run(cfg, tmp_path / "run")
    assert {s["function"]["name"] for s in TOOL_SCHEMAS} == set(TOOLS)
    src = textwrap.dedent(inspect.getsource(ppo_clip))
    first = call_tool(store, cfg, "evaluate", {"code": src})
    assert first["outcome"] == "ok" and first["fitness"] is not None
    again = call_tool(store, cfg, "evaluate", {"code": src.replace("ppo_clip", "renamed")})
    assert again["id"] == first["id"] and "already" in again["note"]
    assert call_tool(store, cfg, "top_candidates", {"k": 3})["candidates"][0]["id"] == first["id"]
    assert call_tool(store, cfg, "show_candidate", {"id": first["id"]})["source"] == src
    missing = call_tool(store, cfg, "distill", {}, methods=get_method)
    assert "'distill' is not implemented" in missing["error"]
    assert "no method lookup" in call_tool(store, cfg, "es_train", {})["error"]  # methods sit above
    assert "error" in call_tool(store, cfg, "nope", {})
    assert "error" in call_tool(store, cfg, "show_candidate", {"idx": 1})
