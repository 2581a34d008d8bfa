"""Tool mode: a language model plans its own pipeline by calling the agent tools.

A LangGraph StateGraph   agent -> tools -> tools ... -> agent -> ... -> END   where `agent` asks
the model (through the same `LLMClient` as the proposer: retries, backoff, tokens and cost) with
the tool schemas, and `tools` executes ONE pending tool call per step with `call_tool`, appending
its JSON result as a `tool` message.  The conversation sent to the model lives in the graph state,
checkpointed after every step in RUN_DIR/agent.sqlite (thread "tools"), so `workbench resume`
continues it exactly: the same messages, the same steps done, nothing re-asked or re-run.  Two
store records close the gaps between a step's side effects and its checkpoint after a `kill -9`:
each reply is kept under `tool_loop.reply.<turn>` (a model is never paid twice for one turn), and
each tool result is stored as a message keyed by its call before the step ends (a finished tool
call is never run twice).  A tool killed mid-way runs again on resume; the methods behind the tools
resume from their own checkpoints.

The loop stops on the model's final answer (a reply without tool calls), `llm.max_tool_steps` tool
calls, the run budgets (`llm.max_cost_usd`, `llm.wall_time_s`, `llm.max_candidates`) or the stop
control; it honours pause and feeds injected user messages into the conversation.  Every model
reply and tool result is also written to the store's messages for the TUI.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from evaluators.families import get_family
from workbench import control
from workbench.control import StopRequested
from workbench.errors import LLMRequestRejected
from workbench.proposers.llm import task_text
from workbench.proposers.llm_client import LLMClient
from workbench.resources import prompt
from workbench.store import RunStore

from .graph import CHECKPOINT_DB, budget_left, drive, wall_clock
from .scoring import open_pool
from .tools import TOOL_SCHEMAS, MethodLookup, call_tool

THREAD = {"configurable": {"thread_id": "tools"}, "recursion_limit": 1_000_000}
REPLY_KEY = "tool_loop.reply.{turn}"
RESULT_CHARS = 6000  # a tool result longer than this is cut before it reaches the model


class ToolLoopState(TypedDict, total=False):
    messages: list[dict[str, Any]]  # the conversation as sent to the model
    pending: list[dict[str, Any]]  # tool calls of the last reply not answered yet, in order
    steps: int  # tool calls executed
    turns: int  # model replies received
    final: bool  # the last reply was the model's final answer
    done: bool


def first_messages(config: Any) -> list[dict[str, Any]]:
    """The system prompt (tools, plan, rules) and the family's task."""
    family = get_family(config.family)
    system = prompt("tools_system.md").format(
        family=family.name, description=family.description, envs=", ".join(config.envs),
        max_tool_steps=config.llm.max_tool_steps)
    start = prompt("tools_start.md").format(task=task_text(family))
    return [{"role": "system", "content": system}, {"role": "user", "content": start}]


def _assistant_dict(message: Any, turn: int) -> dict[str, Any]:
    """A litellm reply message as a plain, JSON-able OpenAI message (it is checkpointed)."""
    calls = []
    for i, c in enumerate(getattr(message, "tool_calls", None) or []):
        fn = c.function
        calls.append({"id": c.id or f"call_{turn}_{i}", "type": "function",
                      "function": {"name": fn.name or "", "arguments": fn.arguments or "{}"}})
    out: dict[str, Any] = {"role": "assistant", "content": message.content or ""}
    if calls:
        out["tool_calls"] = calls
    return out


def _stored_result(store: RunStore, key: str) -> dict[str, Any] | None:
    for m in store.messages():
        if m["role"] == "tool" and m["info"].get("call") == key:
            return m
    return None


def build_tool_graph(config: Any, store: RunStore, pool: Any, progress: Any = None,
                     methods: MethodLookup | None = None) -> StateGraph:
    llm = config.llm
    client = LLMClient(llm)
    model = client.models[0]
    tick = wall_clock(store)

    def halted(state: ToolLoopState) -> str | None:
        """Wait out a pause; then 'stopped' on a stop request, a budget message, or None."""
        while control.is_paused(store) and not control.stop_requested(store):
            time.sleep(0.5)
        if control.stop_requested(store):
            store.set_state("final_status", "stopped")
            store.emit("agent", {"stop": "stop requested"})
            return "stopped"
        why = budget_left(config, store, llm.max_candidates)
        if why is None and state.get("steps", 0) >= llm.max_tool_steps:
            why = f"tool-step budget reached ({llm.max_tool_steps} tool calls; raise llm.max_tool_steps)"
        if why:
            store.emit("agent", {"stop": why})
            store.add_message("system", f"The session stops: {why}.", {"source": "tool_loop"})
            store.set_state("final_status", "finished")
        return why

    def agent(state: ToolLoopState) -> ToolLoopState:
        msgs = list(state.get("messages") or [])
        inbox = control.take_messages(store)  # already stored as user messages by the controls
        msgs += [{"role": "user", "content": text} for text in inbox]
        if state.get("final") and not inbox:
            return {"done": True}  # the conversation ended and nobody has said anything since
        if halted(state):
            tick()
            return {"messages": msgs, "done": True, "final": False}
        turn = state.get("turns", 0)
        cached = store.get_state(REPLY_KEY.format(turn=turn))
        if cached is None:
            try:
                message, usage = client.complete(model, msgs, tools=TOOL_SCHEMAS)
            except LLMRequestRejected:
                raise  # bad key, unknown model, ...: the run fails with the provider's message
            except Exception as exc:  # noqa: BLE001 - retries are spent: stop, resume asks again
                why = f"model call failed after retries: {type(exc).__name__}: {str(exc)[:300]}"
                store.emit("agent", {"stop": why})
                store.add_message("system", why, {"source": "tool_loop"})
                store.set_state("final_status", "stopped")
                tick()
                return {"messages": msgs, "done": True, "final": False}
            cached = {"message": _assistant_dict(message, turn), "usage": usage, "model": model}
            with store.transaction():  # the reply and its cost together: paid once
                store.set_state(REPLY_KEY.format(turn=turn), cached)
                store.add_cost(usd=usage.get("cost_usd", 0.0))
            reply = cached["message"]
            calls = reply.get("tool_calls", [])
            text = "\n".join([reply["content"]] * bool(reply["content"]) + [
                f"-> {c['function']['name']}({c['function']['arguments']})" for c in calls])
            store.add_message("assistant", text, {"model": model, "turn": turn, **usage,
                                                  "tool_calls": calls, "final": not calls})
        reply = cached["message"]
        calls = [{"key": f"{turn}.{i}", "id": c["id"], "name": c["function"]["name"],
                  "arguments": c["function"]["arguments"]} for i, c in enumerate(reply.get("tool_calls", []))]
        tick()
        if not calls:
            store.emit("agent", {"stop": "final answer"})
            store.set_state("final_status", "finished")
            return {"messages": msgs + [reply], "turns": turn + 1, "pending": [], "final": True, "done": True}
        return {"messages": msgs + [reply], "turns": turn + 1, "pending": calls, "final": False}

    def tools(state: ToolLoopState) -> ToolLoopState:
        if halted(state):
            tick()
            return {"done": True}
        call, rest = state["pending"][0], state["pending"][1:]
        stored = _stored_result(store, call["key"])
        if stored is not None:  # finished before a kill, after its result was stored
            content = stored["content"]
        else:
            try:
                args = json.loads(call["arguments"] or "{}")
            except json.JSONDecodeError as exc:
                args, result = None, {"error": f"arguments are not valid JSON ({exc}); send a JSON object"}
            else:
                store.emit("tool_call", {"tool": call["name"], "call": call["key"]})
                store.set_state("final_status", "running")
                try:
                    result = call_tool(store, config, call["name"], args, pool=pool, methods=methods)
                except StopRequested:  # a method saw the stop at its checkpoint; it re-runs on resume
                    store.set_state("final_status", "stopped")
                    tick()
                    return {"done": True}
                if store.get_state("final_status") == "stopped":  # the method stopped itself
                    tick()
                    return {"done": True}
            content = json.dumps(result, default=str)
            if len(content) > RESULT_CHARS:
                content = content[:RESULT_CHARS] + " ... (cut)"
            store.add_message("tool", content, {"tool": call["name"], "call": call["key"],
                                                "tool_call_id": call["id"], "arguments": args})
            if progress is not None:
                progress(state.get("steps", 0) + 1, call["name"], result)
        tick()
        return {"messages": state["messages"] + [{"role": "tool", "tool_call_id": call["id"], "content": content}],
                "pending": rest, "steps": state.get("steps", 0) + 1}

    g = StateGraph(ToolLoopState)
    g.add_node("agent", agent)
    g.add_node("tools", tools)
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", lambda s: END if s.get("done") else "tools")
    g.add_conditional_edges("tools", lambda s: END if s.get("done") else
                            ("tools" if s.get("pending") else "agent"))
    return g


def run_tool_loop(config: Any, store: RunStore, progress: Any = None,
                  methods: MethodLookup | None = None) -> None:
    """Start or continue this run's tool-calling conversation until it ends, a budget is spent or
    it is stopped.  `progress(step, tool, result)` is called after every executed tool call;
    `methods` resolves the method tools (`workbench.methods.get_method`; see `tools.call_tool`)."""
    conn = sqlite3.connect(Path(store.run_dir) / CHECKPOINT_DB, check_same_thread=False)
    try:
        with open_pool(config, spares=1) as pool:
            graph = build_tool_graph(config, store, pool, progress, methods).compile(checkpointer=SqliteSaver(conn))
            drive(graph, THREAD, store, {"messages": first_messages(config), "pending": [], "steps": 0,
                                         "turns": 0, "final": False, "done": False}, "tools")
    finally:
        conn.close()
