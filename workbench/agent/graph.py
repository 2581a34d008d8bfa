"""The discovery loop as a LangGraph StateGraph: propose, screen, evaluate, collect, reflect.

The graph state is tiny (generation counter, the candidates in flight, done flags); everything of
substance — archive, conversation, costs, outcomes — lives in the run store, written by the nodes.
LangGraph checkpoints after every node into RUN_DIR/agent.sqlite (a sibling of run.sqlite, so the
checkpointer's connection never contends with the store's).  After a `kill -9` the graph restarts
at the node that was running: a candidate killed mid-evaluation is re-evaluated, nothing recorded
before is redone.

`propose` is idempotent per generation, because its side effects (a paid model call, a candidate
row) come before its checkpoint: the proposal is recorded under `agent.proposal.<generation>` in
the same transaction that adds its cost, the candidate row and its id in one more, and the
user messages it took are kept under `agent.inbox.<generation>`.  A `propose` re-run after a kill
(or after it returned but before LangGraph saved its checkpoint) reuses the recorded reply and
the existing row: the model is not asked (nor paid) twice and no `pending` row is left behind.
Steering (pause, stop, messages, approvals) is `workbench.control`, the one protocol.

Up to `sandbox.concurrency` candidates are in flight (`in_flight` in the graph state): `evaluate`
hands a screened candidate to the executor and the loop goes back to `propose` while it trains;
`collect` waits for the first to finish, records it and `reflect` feeds it back.  A candidate is
recorded by `collect` alone, so after a `kill -9` each in-flight candidate still `pending` in the
store is submitted again and one already recorded is only fed back: each is scored exactly once.
With approvals on, one candidate is in flight at a time (a person approves them in turn).
"""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from evaluators.families import get_family
from sandbox.checks import ProgramError, screen_source
from sandbox.executors import Executor
from workbench.proposers import Proposal
from workbench.proposers.program_hash import program_hash
from workbench.store import RunStore

from .. import control
from .scoring import concurrency, finish_scored, open_pool, sandbox_job
from .sources import make_source

CHECKPOINT_DB = "agent.sqlite"
THREAD = {"configurable": {"thread_id": "discovery"}, "recursion_limit": 1_000_000}
PROPOSAL_KEY = "agent.proposal.{gen}"  # the proposal of a generation, then its candidate id
INBOX_KEY = "agent.inbox.{gen}"  # the user messages a generation's proposal was shown
PROPOSAL_FIELDS = ("name", "code", "thought", "parents", "operator", "outcome", "usage")


class AgentState(TypedDict, total=False):
    generation: int
    pending: int | None  # proposed, on its way to the executor
    in_flight: list[int]  # submitted, not yet recorded
    done: bool  # no more proposals (budget spent); what is in flight is still collected
    stopped: bool  # a stop: no more proposals; what is in flight is still collected
    last: int | None  # the candidate whose outcome `reflect` reports


def budget_left(config: Any, store: RunStore, cap: int | None) -> str | None:
    """None while there is budget; else why the run stops.  `cap`: most candidates (None: no cap)."""
    llm = config.llm
    n = len(store.candidates())
    if cap is not None and n >= cap:
        return f"candidate budget reached ({n}/{cap})"
    info = store.run_info() or {}
    if llm.max_cost_usd is not None and info.get("cost_usd", 0.0) >= llm.max_cost_usd:
        return f"cost budget reached (${info['cost_usd']:.4f} of ${llm.max_cost_usd})"
    if llm.wall_time_s is not None and store.get_state("agent.wall_s", 0.0) >= llm.wall_time_s:
        return f"wall-time budget reached ({llm.wall_time_s:g} s)"
    return None


def wall_clock(store: RunStore) -> Any:
    """A `tick()` that adds the time since the previous tick to the run's `agent.wall_s`, the
    clock of the `llm.wall_time_s` budget (summed over sessions, so resumes count too)."""
    started = time.perf_counter()

    def tick() -> None:
        nonlocal started
        now = time.perf_counter()
        store.set_state("agent.wall_s", store.get_state("agent.wall_s", 0.0) + now - started)
        started = now
    return tick


def feedback_text(store: RunStore, cid: int) -> str:
    row = store.candidate(cid)
    if row.outcome == "ok":
        envs = row.info.get("envs", {})
        per_env = ", ".join(f"{k}: return {v.get('return_mean', float('nan')):.1f} "
                            f"(normalised {v.get('normalized', float('nan')):.3f})" for k, v in envs.items())
        return f"Candidate {cid} ({row.label}) scored fitness {row.fitness:.4f}. {per_env}"
    return f"Candidate {cid} ({row.label}) failed: {row.outcome}: {row.reason}"


def build_graph(config: Any, store: RunStore, pool: Executor, progress: Any = None) -> Any:
    family = get_family(config.family)
    source = make_source(config, family)
    tick = wall_clock(store)

    def wait_or_stop() -> bool:
        """Wait out a pause; True when a stop was requested (the run ends as stopped)."""
        while control.is_paused(store) and not control.stop_requested(store):
            time.sleep(0.5)
        if control.stop_requested(store):
            store.set_state("final_status", "stopped")
            return True
        return False

    limit = 1 if config.llm.approval else concurrency(config)
    futures: dict[int, Future] = {}  # this session's submissions (a resume submits again)

    def propose(state: AgentState) -> AgentState:
        gen = state.get("generation", 0)
        key = PROPOSAL_KEY.format(gen=gen)
        record = store.get_state(key)
        if wait_or_stop():
            return {"stopped": True}
        if record is None:  # nothing asked for this generation yet (else: re-run after a kill)
            why = budget_left(config, store, config.llm.max_candidates or config.llm.generations)
            if why:
                store.emit("agent", {"stop": why})
                if not state.get("in_flight"):
                    store.set_state("final_status", "finished")
                return {"done": True}
            prop = source.propose(store, gen, control.take_messages(store, INBOX_KEY.format(gen=gen)))
            record = {f: getattr(prop, f) for f in PROPOSAL_FIELDS} | {"cid": None}
            with store.transaction():  # the reply and its cost together: paid once
                store.set_state(key, record)
                if prop.usage.get("cost_usd"):
                    store.add_cost(usd=prop.usage["cost_usd"])
        if record.get("cid") is None:
            record = {**record, "cid": add_proposal(gen, record)}
            # (the row and the record's cid were written in one transaction by add_proposal)
        row = store.candidate(record["cid"])
        if row.outcome in ("no_code", "duplicate"):
            return {"generation": gen + 1, "pending": None, "last": row.id}
        return {"generation": gen + 1, "pending": row.id}

    def add_proposal(gen: int, record: dict[str, Any]) -> int:
        """The generation's candidate row (final at once if it has no code or is a duplicate),
        its message, and its id in the proposal record, in one transaction."""
        prop = Proposal(**{f: record[f] for f in PROPOSAL_FIELDS})
        method = "warm_start" if prop.operator == "warm_start" else source.method
        info = {"thought": prop.thought, "operator": prop.operator, "usage": prop.usage}
        with store.transaction():
            if prop.code is None:
                cid = store.add_candidate(method=method, kind="code", label=prop.name,
                                          parents=prop.parents, generation=gen, info=info)
                store.finish_candidate(cid, "no_code", prop.thought or "the proposer produced no program")
            else:
                digest = program_hash(prop.code)
                lineage = (store.candidate(prop.parents[0]).info.get("lineage", prop.parents[0])
                           if prop.parents else None)
                earlier = store.find_by_hash(digest)
                cid = store.add_candidate(method=method, kind="code", label=prop.name, source=prop.code,
                                          parents=prop.parents, generation=gen, source_hash=digest,
                                          info={**info, "lineage": lineage})
                if lineage is None:
                    store.merge_info(cid, {"lineage": cid})
                if earlier is not None:
                    store.finish_candidate(cid, "duplicate", f"identical to candidate {earlier.id}",
                                           fitness=earlier.fitness)
                else:
                    store.add_message("assistant", prop.code, {"candidate": cid, "thought": prop.thought})
            store.set_state(PROPOSAL_KEY.format(gen=gen), {**record, "cid": cid})
        return cid

    def screen(state: AgentState) -> AgentState:
        cid = state["pending"]
        row = store.candidate(cid)
        t0 = time.perf_counter()
        try:
            screen_source(row.source, family.code_signature)
        except ProgramError as exc:
            store.finish_candidate(cid, exc.kind, str(exc), info={"timings": {"screen_s": time.perf_counter() - t0}})
            return {"pending": None, "last": cid}
        return {"pending": cid}

    def submit(state: AgentState) -> AgentState:
        """Approval (if asked), then the candidate goes to the executor; the loop moves on."""
        cid = state["pending"]
        row = store.candidate(cid)
        code = row.source
        if config.llm.approval:
            store.emit("approval", {"id": cid})  # the agent waits (again, after a resume)
            control.request_approval(store, cid)  # the TUI's approvals tab lists it
            while (decision := control.decision(store, cid)) is None:
                if control.stop_requested(store):
                    # Leave before this node completes: the last checkpoint still points at
                    # `evaluate`, so a resume waits for this same candidate again, and the run is
                    # recorded as stopped (returning "done" here ended the graph as finished).
                    store.set_state("final_status", "stopped")
                    raise control.StopRequested(f"stopped while candidate {cid} awaited approval")
                time.sleep(0.5)
            if decision.decision == "reject":
                store.finish_candidate(cid, "invalid", decision.reason or "rejected by the user")
                return {"pending": None, "last": cid}
            if decision.decision == "edit" and decision.source:
                code = decision.source
                store.merge_info(cid, {"edited_source": code})
        send(cid)
        return {"pending": None, "in_flight": [*state.get("in_flight", []), cid]}

    def send(cid: int) -> None:
        row = store.candidate(cid)
        store.emit("evaluating", {"id": cid})
        job = sandbox_job(config, row.info.get("edited_source", row.source), config.seed,
                          label=row.label)
        futures[cid] = pool.submit(job, config.sandbox.time_limit_s)

    def collect(state: AgentState) -> AgentState:
        """The first in-flight candidate to finish, recorded; after a kill, what was recorded is
        only fed back and what was not is submitted again."""
        in_flight = list(state.get("in_flight", []))
        for cid in in_flight:
            if store.candidate(cid).outcome != "pending":
                return {"in_flight": [c for c in in_flight if c != cid], "last": cid}
            if cid not in futures:
                send(cid)
        # a stop waits for what is in flight (recorded, nothing left half-done), as it waited
        # for the one candidate of a serial loop; proposing has stopped already
        done, _ = wait([futures[c] for c in in_flight], return_when=FIRST_COMPLETED)
        cid = next(c for c in in_flight if futures[c] in done)
        finish_scored(store, config, cid, futures.pop(cid).result())
        return {"in_flight": [c for c in in_flight if c != cid], "last": cid}

    def reflect(state: AgentState) -> AgentState:
        cid = state.get("last")
        if cid is not None:
            store.add_message("feedback", feedback_text(store, cid), {"candidate": cid})
            row = store.candidate(cid)
            best = store.best_candidates(1)
            values = {"best_fitness": best[0].fitness if best else float("nan")}
            if row.fitness is not None and row.outcome == "ok":
                values["fitness"] = row.fitness
            store.log_metrics(row.generation, values)
            if progress is not None:
                progress(row, best[0] if best else None)
        tick()
        return {"last": None}

    def after_round(state: AgentState) -> str:
        """Collect when the executor is full, or when the budget is spent and some are in flight;
        else propose (which ends the run when the budget is spent and nothing is in flight)."""
        in_flight = state.get("in_flight", [])
        if state.get("stopped"):
            return "collect" if in_flight else END
        if in_flight and (state.get("done") or len(in_flight) >= limit):
            return "collect"
        return "propose"

    def after_propose(state: AgentState) -> str:
        if state.get("stopped") or state.get("done"):
            return "collect" if state.get("in_flight") else END
        return "screen" if state.get("pending") else "reflect"

    g = StateGraph(AgentState)
    # "evaluate" submits (the name kept, so a run checkpointed before it can still resume)
    for name, node in (("propose", propose), ("screen", screen), ("evaluate", submit),
                       ("collect", collect), ("reflect", reflect)):
        g.add_node(name, node)
    g.add_edge(START, "propose")
    g.add_conditional_edges("propose", after_propose)
    g.add_conditional_edges("screen", lambda s: "evaluate" if s.get("pending") else "reflect")
    g.add_conditional_edges("evaluate", lambda s: "reflect" if s.get("last") else after_round(s))
    g.add_edge("collect", "reflect")
    g.add_conditional_edges("reflect", after_round)
    return g


def drive(graph: Any, thread: dict[str, Any], store: RunStore, initial: dict[str, Any],
          resume_as: str) -> None:
    """Start a compiled graph, continue it from its checkpoint, or, when it had ended (finished or
    stopped), reopen it as if `resume_as` had just run, so its edges decide whether there is
    anything left to do (e.g. budget raised on resume).

    Checkpoints are written synchronously after every node (`durability="sync"`): LangGraph's
    default writes them in the background, and a `kill -9` then loses steps that already ran."""
    snap = graph.get_state(thread)
    if store.get_state("final_status") == "stopped":  # the stop ended the previous session
        control.clear_requests(store)
        store.set_state("final_status", "running")
    if not snap.values:
        graph.invoke(initial, thread, durability="sync")
    elif snap.next:
        graph.invoke(None, thread, durability="sync")
    else:
        graph.update_state(thread, {"done": False, "stopped": False}, as_node=resume_as)
        graph.invoke(None, thread, durability="sync")


def run_agent(config: Any, store: RunStore, progress: Any = None) -> None:
    """Start or continue the discovery graph of this run until its budget is spent or it is stopped."""
    conn = sqlite3.connect(Path(store.run_dir) / CHECKPOINT_DB, check_same_thread=False)
    try:
        with open_pool(config) as pool:
            graph = build_graph(config, store, pool, progress).compile(checkpointer=SqliteSaver(conn))
            drive(graph, THREAD, store, {"generation": 0, "pending": None, "in_flight": [],
                                         "done": False}, "reflect")
    finally:
        conn.close()
