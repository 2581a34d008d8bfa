"""Tools an LLM agent (or the TUI) can call on a run: look at the archive, evaluate a program, and
start the other methods.  Each tool takes JSON-able arguments and returns a JSON-able dict;
`TOOL_SCHEMAS` describes them in the OpenAI/litellm function-calling format.

ES, distillation and symbolic search are imported lazily from `workbench.methods.*`; when a module
is absent, its tool answers `{"error": ...}` instead of failing.
"""

from __future__ import annotations

from typing import Any, Callable

from workbench.store import RunStore


def top_candidates(store: RunStore, config: Any, k: int = 5) -> dict[str, Any]:
    return {"candidates": [{"id": r.id, "method": r.method, "label": r.label, "fitness": r.fitness}
                           for r in store.best_candidates(int(k))]}


def show_candidate(store: RunStore, config: Any, id: int) -> dict[str, Any]:  # noqa: A002
    try:
        r = store.candidate(int(id))
    except KeyError as exc:
        return {"error": str(exc)}
    return {"id": r.id, "kind": r.kind, "source": r.source, "outcome": r.outcome, "reason": r.reason,
            "fitness": r.fitness, "parents": r.parents, "thought": r.info.get("thought", "")}


def evaluate(store: RunStore, config: Any, code: str, name: str = "tool") -> dict[str, Any]:
    """Score a program in the sandbox and record it as a candidate."""
    from sandbox.pool import SandboxPool
    from workbench.proposers.program_hash import program_hash

    digest = program_hash(code)
    earlier = store.find_by_hash(digest)
    if earlier is not None and earlier.outcome != "pending":
        return {"id": earlier.id, "outcome": earlier.outcome, "fitness": earlier.fitness,
                "note": "identical program already evaluated"}
    cid = store.add_candidate(method="llm", kind="code", label=name, source=code, source_hash=digest)
    job = {"family": config.family, "kind": "code", "source": code, "envs": config.envs,
           "test_envs": config.test_envs, "seeds": config.seeds, "seed": config.seed,
           "timesteps": config.timesteps, "num_envs": config.num_envs}
    cs = config.sandbox
    with SandboxPool(spares=1, time_limit_s=cs.time_limit_s, memory_limit_mb=cs.memory_limit_mb) as pool:
        r = pool.evaluate(job)
    store.finish_candidate(cid, r.outcome, r.reason, fitness=r.fitness, test_fitness=r.test_fitness,
                           info={"timings": r.timings, "envs": r.envs})
    return {"id": cid, "outcome": r.outcome, "reason": r.reason, "fitness": r.fitness}


def _method_tool(name: str) -> Callable[..., dict[str, Any]]:
    def tool(store: RunStore, config: Any, **settings: Any) -> dict[str, Any]:
        from workbench.methods import MethodUnavailable, get_method
        try:
            module = get_method(name)
        except MethodUnavailable as exc:
            return {"error": str(exc)}
        section = getattr(config, name).model_copy(update=settings)
        before = {r.id for r in store.candidates()}
        module.run(config.model_copy(update={"method": name, name: section}), store)
        new = [r for r in store.candidates() if r.id not in before]
        return {"new_candidates": [{"id": r.id, "outcome": r.outcome, "fitness": r.fitness} for r in new]}
    tool.__name__ = name
    tool.__doc__ = f"Run workbench.methods.{name} on this run with optional overrides of its section."
    return tool


TOOLS: dict[str, Callable[..., dict[str, Any]]] = {
    "evaluate": evaluate, "es_train": _method_tool("es"), "distill": _method_tool("distill"),
    "symbolic_search": _method_tool("symbolic"), "top_candidates": top_candidates,
    "show_candidate": show_candidate,
}


def _schema(name: str, desc: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


TOOL_SCHEMAS = [
    _schema("evaluate", "Train PPO with a program in the sandbox; returns outcome and fitness.",
            {"code": {"type": "string"}, "name": {"type": "string"}}, ["code"]),
    _schema("es_train", "Meta-train a network of the family with evolution strategies.",
            {"generations": {"type": "integer"}, "popsize": {"type": "integer"}}, []),
    _schema("distill", "Distil the best network into a smaller one.", {"epochs": {"type": "integer"}}, []),
    _schema("symbolic_search", "Fit a symbolic expression to the best network.",
            {"epochs": {"type": "integer"}}, []),
    _schema("top_candidates", "The best candidates so far.", {"k": {"type": "integer"}}, []),
    _schema("show_candidate", "Source, outcome and fitness of one candidate.", {"id": {"type": "integer"}}, ["id"]),
]


def call_tool(store: RunStore, config: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Dispatch a tool call; unknown tools and bad arguments are answered, not raised."""
    if name not in TOOLS:
        return {"error": f"unknown tool {name!r}; available: {', '.join(TOOLS)}"}
    try:
        return TOOLS[name](store, config, **arguments)
    except TypeError as exc:
        return {"error": f"bad arguments for {name}: {exc}"}
