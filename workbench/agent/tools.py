"""Tools an LLM agent (or the TUI) can call on a run: look at the archive, evaluate a program, and
start the other methods.  Each tool takes JSON-able arguments and returns a JSON-able dict;
`TOOL_SCHEMAS` describes them in the OpenAI/litellm function-calling format.

Arguments are validated by pydantic models before a tool runs, and the method tools' settings are
then validated again as the config section they override, so a model's bad call comes back as
`{"error": ...}` it can read and correct, never as an exception that ends the agent loop.
The schemas are generated from the same models (and the method tools' from the config sections),
so what the model is told and what is checked cannot drift apart.

The method tools (ES, distillation, symbolic search) run methods, which sit above the agent: the
caller hands `call_tool` the lookup (`methods=workbench.methods.get_method`, which `methods.llm`
passes down through the tool loop).  A method that is absent, or no lookup at all, makes its tool
answer `{"error": ...}` instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from workbench.config import RunConfig
from workbench.errors import WorkbenchError
from workbench.proposers.program_hash import program_hash
from workbench.store import RunStore

from .scoring import open_pool, score_program

# method name -> its module (`run(config, store)`); raises a WorkbenchError (`MethodUnavailable`)
# for a method this installation lacks.  `workbench.methods.get_method` is the one used.
MethodLookup = Callable[[str], Any]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TopArgs(_Args):
    k: int = Field(5, ge=1, le=50, description="how many candidates, best first")


class ShowArgs(_Args):
    id: int = Field(description="the candidate id (from top_candidates or an earlier result)")


class EvaluateArgs(_Args):
    code: str = Field(min_length=1, description="complete Python source of the family's function")
    name: str = Field("tool", max_length=60, description="a short snake_case name for the program")


def top_candidates(store: RunStore, config: Any, k: int = 5) -> dict[str, Any]:
    return {"candidates": [{"id": r.id, "method": r.method, "kind": r.kind, "label": r.label,
                            "fitness": r.fitness} for r in store.best_candidates(int(k))]}


def show_candidate(store: RunStore, config: Any, id: int) -> dict[str, Any]:  # noqa: A002
    try:
        r = store.candidate(int(id))
    except KeyError as exc:
        return {"error": str(exc)}
    return {"id": r.id, "kind": r.kind, "method": r.method, "label": r.label, "source": r.source,
            "outcome": r.outcome, "reason": r.reason, "fitness": r.fitness, "parents": r.parents,
            "thought": r.info.get("thought", "")}


def evaluate(store: RunStore, config: Any, code: str, name: str = "tool", pool: Any = None) -> dict[str, Any]:
    """Score a program in the sandbox and record it as a candidate.

    `pool` (not a model argument) lets a long-lived caller reuse its pre-started workers.  A
    program left `pending` by an interrupted session is re-scored under its old id, not copied.
    """
    digest = program_hash(code)
    earlier = store.find_by_hash(digest)
    if earlier is not None and earlier.outcome != "pending":
        return {"id": earlier.id, "outcome": earlier.outcome, "fitness": earlier.fitness,
                "note": "identical program already evaluated"}
    if earlier is not None:
        cid = earlier.id
    else:
        cid = store.add_candidate(method="llm", kind="code", label=name, source=code, source_hash=digest,
                                  info={"operator": "tool"})
    if pool is None:
        with open_pool(config, spares=1) as own:
            r = score_program(store, config, own, cid, code, name)
    else:
        r = score_program(store, config, pool, cid, code, name)
    return {"id": cid, "outcome": r.outcome, "reason": r.reason, "fitness": r.fitness,
            "test_fitness": r.test_fitness,
            "per_env": {k: v.get("normalized") for k, v in r.envs.items()}}


# -- method tools ------------------------------------------------------------------------------
def _section_args(section: str, keys: dict[str, str]) -> type[_Args]:
    """An arguments model whose fields are `keys` of config section `section` (same types and
    bounds), each optional: what is left out keeps the run's setting."""
    model = RunConfig.model_fields[section].annotation
    fields: dict[str, Any] = {}
    for key, desc in keys.items():
        f = model.model_fields[key]
        constraints = {k: getattr(m, k) for m in f.metadata for k in ("ge", "gt", "le", "lt")
                       if getattr(m, k, None) is not None}
        annotation = int | str | None if key == "teacher" else f.annotation  # an id, or a spec
        fields[key] = (annotation, Field(None, description=desc, **constraints))
    return create_model(f"{section.capitalize()}ToolArgs", __base__=_Args, **fields)


TEACHER_DESC = ("which network to distil: a candidate id of this run (e.g. '12'); leave it out for "
                "this run's best network candidate")
ES_ARGS = _section_args("es", {
    "generations": "total ES generations; a later call with more continues from the checkpoint",
    "popsize": "population size", "sigma": "initial noise scale", "lr": "initial learning rate"})
DISTILL_ARGS = _section_args("distill", {
    "epochs": "training epochs", "iters": "gradient steps per epoch",
    "hsize": "hidden size of the student network (default: the teacher's)", "teacher": TEACHER_DESC,
    "data": "training inputs: 'synthetic' (fixed distributions) or 'recorded' (what the teacher "
            "met in a real PPO run of the first environment)"})
SYMBOLIC_ARGS = _section_args("symbolic", {
    "epochs": "search iterations", "grad_loss": "also fit the teacher's gradient",
    "backend": "symbolic regression engine", "maxsize": "largest expression size", "teacher": TEACHER_DESC})


def _method_tool(name: str) -> Callable[..., dict[str, Any]]:
    def tool(store: RunStore, config: Any, methods: MethodLookup | None = None,
             **settings: Any) -> dict[str, Any]:
        if str(settings.get("teacher") or "").isdigit():
            settings["teacher"] = f"{store.run_dir}:{settings['teacher']}"
        current = getattr(config, name)
        try:  # the section's own rules (and cross-field ones), on top of the argument model's
            section = type(current).model_validate({**current.model_dump(), **settings})
        except ValidationError as exc:
            return {"error": f"bad settings for {name}: {_validation_text(exc)}"}
        if methods is None:
            return {"error": f"method {name!r} cannot be run from here (no method lookup was given)"}
        try:
            module = methods(name)
        except WorkbenchError as exc:  # MethodUnavailable: not in this installation
            return {"error": str(exc)}
        before = {r.id for r in store.candidates()}
        store.emit("tool", {"method": name, "settings": settings})
        module.run(config.model_copy(update={"method": name, name: section}), store)
        new = [r for r in store.candidates() if r.id not in before]
        out: dict[str, Any] = {"new_candidates": [{"id": r.id, "kind": r.kind, "label": r.label,
                                                   "outcome": r.outcome, "fitness": r.fitness}
                                                  for r in new]}
        if not new:
            out["note"] = f"{name} added no candidate (already at its settings' end? raise e.g. generations)"
        return out
    tool.__name__ = name
    tool.__doc__ = f"Run workbench.methods.{name} on this run with optional overrides of its section."
    return tool


def _plain(prop: dict[str, Any]) -> dict[str, Any]:
    """A property schema without pydantic's titles, null defaults and `X or null` unions, which
    some providers reject; leaving an argument out is how the model says 'keep the setting'."""
    out = {k: v for k, v in prop.items() if k != "title" and not (k == "default" and v is None)}
    options = [o for o in out.pop("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        out.update(options[0])
    elif options:
        out["anyOf"] = options
    return out


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                     + (f" (got {e['input']!r})" if e["type"] != "missing" else "")
                     for e in exc.errors())


@dataclass(frozen=True)
class Tool:
    fn: Callable[..., dict[str, Any]]
    args: type[_Args]
    description: str
    runs_method: bool = False  # a method tool: `call_tool` hands it the method lookup

    def schema(self, name: str) -> dict[str, Any]:
        params = self.args.model_json_schema()
        props = {k: _plain(v) for k, v in params.get("properties", {}).items()}
        return {"type": "function", "function": {"name": name, "description": self.description, "parameters": {
            "type": "object", "properties": props, "required": params.get("required", []),
            "additionalProperties": False}}}


TOOL_SPECS: dict[str, Tool] = {
    "evaluate": Tool(evaluate, EvaluateArgs, "Train PPO with a program in the sandbox on the run's "
                     "environments; records it as a candidate; returns its outcome and fitness."),
    "es_train": Tool(_method_tool("es"), ES_ARGS, "Meta-train the family's neural network with "
                     "evolution strategies; every few generations the search mean is stored and scored.",
                     runs_method=True),
    "distill": Tool(_method_tool("distill"), DISTILL_ARGS, "Distil a network candidate into a new "
                    "network (black-box distillation) and score it.", runs_method=True),
    "symbolic_search": Tool(_method_tool("symbolic"), SYMBOLIC_ARGS, "Fit a symbolic expression to "
                            "a network candidate and score it as a program.", runs_method=True),
    "top_candidates": Tool(top_candidates, TopArgs, "The best scored candidates so far, best first."),
    "show_candidate": Tool(show_candidate, ShowArgs, "Source, outcome, fitness and parents of one candidate."),
}
TOOLS: dict[str, Callable[..., dict[str, Any]]] = {name: t.fn for name, t in TOOL_SPECS.items()}
TOOL_SCHEMAS = [t.schema(name) for name, t in TOOL_SPECS.items()]


def call_tool(store: RunStore, config: Any, name: str, arguments: Any, pool: Any = None,
              methods: MethodLookup | None = None) -> dict[str, Any]:
    """Dispatch a tool call; unknown tools, bad arguments and failures are answered, not raised.

    `pool` is reused by `evaluate`; `methods` resolves the methods behind the method tools.

    Only a stop request (`StopRequested`, a KeyboardInterrupt) propagates: the caller saves state.
    """
    spec = TOOL_SPECS.get(name)
    if spec is None:
        return {"error": f"unknown tool {name!r}; available: {', '.join(TOOLS)}"}
    if not isinstance(arguments, dict):
        return {"error": f"arguments of {name} must be a JSON object, got {type(arguments).__name__}"}
    try:
        args = spec.args.model_validate(arguments).model_dump(exclude_unset=True)
    except ValidationError as exc:
        return {"error": f"bad arguments for {name}: {_validation_text(exc)}; accepted: "
                         f"{', '.join(spec.args.model_fields)}"}
    if name == "evaluate" and pool is not None:
        args["pool"] = pool
    if spec.runs_method:
        args["methods"] = methods
    try:
        return spec.fn(store, config, **args)
    except Exception as exc:  # noqa: BLE001 - the agent reads the failure and goes on
        return {"error": f"{name} failed: {type(exc).__name__}: {str(exc)[:1000]}"}
