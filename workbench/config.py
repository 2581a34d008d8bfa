"""Typed run configs: YAML files plus `key=value` overrides; the single source of defaults.

Defaults reproduce the original system (SPEC §4-§7) unless a comment says otherwise.  Unknown keys
are errors, and every error names the field, what was wrong and how to fix it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evaluators.envs import UnknownEnvError, get_env_config  # a static table: imports no JAX

from .errors import WorkbenchError
# the ES strategy implemented here (methods/es.py); any other name is an evosax one
from .es_strategy_names import OWN_STRATEGY as OWN_ES_STRATEGY
from .es_strategy_names import UnknownStrategyError, check_strategy_name

# the methods `method: pipeline` can chain, in the order a pipeline usually runs them
PIPELINE_STEPS = ("es", "distill", "symbolic", "llm")
# held-out seeds per candidate of `workbench compare` (its --seeds; the seeds start at eval_seed)
COMPARE_SEEDS = 32


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ESConfig(_Section):
    """Black-box learning with evolution strategies (SPEC §4)."""

    strategy: str = OWN_ES_STRATEGY  # the original's OpenAI-ES, or any evosax strategy name (e.g. SNES)
    generations: int = Field(800, ge=1)
    popsize: int = Field(64, ge=2)
    lr: float = Field(0.03, gt=0)
    lr_decay: float = Field(0.99, gt=0, le=1)
    lr_limit: float = Field(0.001, ge=0)
    sigma: float = Field(0.03, gt=0)
    sigma_decay: float = Field(0.99, gt=0, le=1)
    sigma_limit: float = Field(0.01, ge=0)
    rollouts: int = Field(1, ge=1)
    save_every: int = Field(8, ge=1)
    eval_seeds: int = Field(8, ge=1)
    hsize: int | None = None  # None: the family's default (16; 128 for LPO)
    # search mean's start, always the family's baseline: 'zero' (the original's all-zero weights)
    # or 'zero_output' (random hidden layers, zero output layer); auto: zero_output for LPO, whose
    # bias-free network makes antithetic pairs identical at the zero mean, zero otherwise
    init: Literal["auto", "zero", "zero_output"] = "auto"

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        try:
            return check_strategy_name(name)
        except UnknownStrategyError as exc:
            raise ValueError(str(exc)) from None


class DistillConfig(_Section):
    """Black-box distillation (SPEC §5)."""

    # RUN_DIR[:CANDIDATE_ID|best], a .npz parameter file, 'warm-start' (LPO: PPO's drift), or
    # empty: this run's best network candidate (e.g. after an `es` step of a pipeline)
    teacher: str | None = None
    epochs: int = Field(100, ge=1)  # the original used 10 for no_features (set in its configs)
    iters: int = Field(100, ge=1)  # training steps per epoch
    batch_size: int = Field(2048, ge=1)  # fresh synthetic points per step (LPO: random (r, A) points)
    lr: float = Field(1e-4, gt=0)  # Adam, annealed linearly to lr_stop over epochs x iters steps
    lr_stop: float = Field(1e-5, gt=0)
    hsize: int | None = None  # student size; None: same as the teacher
    # recorded: inputs seen in a PPO run of the teacher (lpo: (r, A); open_ff, no_features: parameters)
    data: Literal["synthetic", "recorded"] = "synthetic"
    eval_every: int = Field(1, ge=1)  # epochs between RL evaluations of the student
    test_points: int = Field(10_000, ge=1)  # size of the fixed test set
    seq_length: int = Field(100, ge=1, le=2000)  # open: unroll length of each trajectory
    grid: bool = False  # lpo: also fit the whole 1024 x 1024 (r, A) grid at every step (slow on CPU)
    record_points: int = Field(200_000, ge=1)  # data=recorded: rows kept from the PPO run
    eval_seeds: int = Field(8, ge=1)


class SymbolicConfig(_Section):
    """Symbolic distillation (SPEC §6).  `None` fields take the family's SPEC value (LPO vs
    OPEN-FF/NoFeat); the operon-only fields size the offline backend's search per fit."""

    backend: Literal["auto", "pysr", "operon"] = "auto"  # auto: PySR if Julia starts, else operon
    teacher: str | None = None  # as distill.teacher; LPO also accepts 'warm-start' (PPO's clip drift)
    epochs: int = Field(100, ge=1)  # backend fits, each continuing the last on fresh data
    points: int = Field(1_000_000, ge=100)  # teacher queries per epoch (LPO: a sqrt(points)^2 grid)
    batch_size: int = Field(5000, ge=10)  # rows one fit sees (PySR's batch_size; operon's data)
    maxsize: int | None = Field(None, ge=3)  # None: 40 for LPO, 60 otherwise
    maxdepth: int | None = Field(None, ge=2)  # None: 8 for LPO, 9 otherwise
    operators: list[str] | None = None  # None: SPEC's; from + - * / max min square neg tanh abs exp relu
    grad_loss: bool = False  # LPO: fit d(drift)/dr to the teacher's gradient, then integrate
    iterations: int | None = Field(None, ge=1)  # PySR niterations per fit; None: 1 LPO, 10 otherwise
    populations: int | None = Field(None, ge=1)  # PySR populations; None: PySR's default LPO, 160 otherwise
    generations: int = Field(100, ge=1)  # operon generations per fit
    population_size: int = Field(1000, ge=10)  # operon population
    threads: int = Field(1, ge=1)  # backend threads
    eval_seeds: int = Field(8, ge=1)  # held-out seeds for each selected expression's RL score
    time_limit_s: float | None = Field(None, gt=0)  # wall-clock cap per fit; None: no cap


class LLMPrice(_Section):
    """What a model costs, in USD per million tokens (e.g. {input: 0.15, output: 0.6})."""

    input: float = Field(ge=0)  # prompt tokens
    output: float = Field(ge=0)  # completion tokens


class LLMConfig(_Section):
    """LLM discovery and its offline twin, program mutation (SPEC §7)."""

    proposer: Literal["auto", "llm", "mutation"] = "auto"  # auto: llm if a model is set, else mutation
    model: str | None = None  # litellm model name, e.g. "gpt-4o-mini" or "openai/qwen" with api_base
    models: list[str] = Field(default_factory=list)  # several models, chosen per proposal
    api_base: str | None = None
    mode: Literal["rewrite", "diff"] = "rewrite"
    generations: int = Field(30, ge=1)
    max_candidates: int | None = None
    max_cost_usd: float | None = None
    # the price of llm.model(s); when set, every call's cost is counted from its tokens with it
    # (instead of litellm's price map), so max_cost_usd holds for models litellm has no price for
    # (local servers, new models); None: litellm's price, and an unpriced model counts as $0
    price_per_mtok: LLMPrice | None = None
    wall_time_s: float | None = None
    temperature: float | None = None
    request_timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(6, ge=0)
    retry_base_s: float = Field(2.0, ge=0)  # exponential backoff: base * 2**attempt seconds
    api_key_env: str | None = None  # env var (or .env entry) holding the key; None: litellm's default
    archive_top_k: int = Field(8, ge=1)
    # when the search ends, re-score this many best programs on held-out seeds (`eval_seed`), so
    # the reported winner is not chosen and scored on the same seeds; 0: skip
    final_top_k: int = Field(3, ge=0)
    approval: bool = False  # human approves every candidate before evaluation
    # propose: the discovery graph (one program per step); tools: the model calls evaluate, es_train,
    # distill, symbolic_search, ... and plans its own pipeline (needs a model)
    loop: Literal["propose", "tools"] = "propose"
    max_tool_steps: int = Field(30, ge=1)  # tool mode: tool calls executed before the loop stops


class SandboxConfig(_Section):
    time_limit_s: float = Field(600.0, gt=0)
    memory_limit_mb: int = Field(8192, ge=256)
    cpu_time_limit_s: float | None = None
    workers: int = Field(1, ge=1)
    # JAX's persistent compilation cache for the workers, under <workspace>/.jax-cache/sandbox:
    # re-evaluating an identical program (warm start, resumed candidate) skips its compile
    compile_cache: bool = True
    # the workers' jail (sandbox/jail.py, docs/sandbox.md): 'auto' jails where this machine allows
    # and refuses LLM-written code without it; 'full' refuses to run without every layer; 'none'
    # runs candidates unjailed (an explicit opt-out, recorded with every candidate)
    isolation: Literal["auto", "full", "none"] = "auto"
    # candidates evaluated at once (each in its own jailed workers): 'auto' is one per GPU on a
    # GPU machine, else sandbox.accelerators.CPU_CONCURRENCY (measured: bench/discovery_throughput.py)
    concurrency: int | Literal["auto"] = "auto"

    @field_validator("concurrency")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if value != "auto" and int(value) < 1:
            raise ValueError("sandbox.concurrency: must be 'auto' or a whole number >= 1, e.g. 2")
        return value


class ExecutorConfig(_Section):
    """Where candidates run: this machine (`local`), or the nodes of a Ray cluster (`ray`)."""

    kind: Literal["local", "ray"] = "local"
    # ray: an existing cluster ('HOST:PORT' of `ray start --head`, or 'auto'); None starts a local Ray
    address: str | None = None

    @model_validator(mode="after")
    def _address_only_for_ray(self) -> "ExecutorConfig":
        if self.address and self.kind != "ray":
            raise ValueError("executor.address: only used with executor.kind: ray; set "
                             "executor.kind=ray or remove executor.address")
        return self


class WandbConfig(_Section):
    enabled: bool = False
    project: str = "rl-discovery-workbench"
    entity: str | None = None
    mode: Literal["auto", "online", "offline"] = "auto"  # auto: online with WANDB_API_KEY, else offline


class RunConfig(_Section):
    """One run: a family, a method, the environments and the method's settings."""

    name: str = "run"
    family: Literal["lpo", "open", "open_ff", "no_features"] = "lpo"
    method: Literal["es", "distill", "symbolic", "llm", "pipeline"] = "llm"
    envs: list[str] = Field(default_factory=lambda: ["breakout"])
    test_envs: list[str] = Field(default_factory=list)
    seeds: int = Field(8, ge=1)  # training seeds per candidate evaluation
    seed: int = 0
    eval_seed: int = 1_000_003  # held-out seeds for final evaluation differ from search seeds
    timesteps: int | None = Field(None, ge=1)  # None: each environment's own TOTAL_TIMESTEPS
    num_envs: int | None = Field(None, ge=1)
    workspace: str = "runs"
    pipeline: list[str] = Field(default_factory=list)  # for method=pipeline: e.g. [es, distill, symbolic]
    es: ESConfig = Field(default_factory=ESConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    symbolic: SymbolicConfig = Field(default_factory=SymbolicConfig)
    llm: LLMConfig = Field(default_factory=LLMConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    wandb: WandbConfig = Field(default_factory=WandbConfig)

    @field_validator("envs", "test_envs")
    @classmethod
    def _known_envs(cls, names: list[str]) -> list[str]:
        try:
            return [get_env_config(n).key for n in names]
        except UnknownEnvError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("pipeline")
    @classmethod
    def _known_steps(cls, steps: list[str]) -> list[str]:
        bad = [s for s in steps if s not in PIPELINE_STEPS]
        if bad:
            raise ValueError(f"pipeline: unknown step {bad[0]!r} (allowed steps: "
                             f"{', '.join(PIPELINE_STEPS)}); fix the spelling, e.g. "
                             f"pipeline=[es,distill,symbolic,llm]")
        return steps

    @model_validator(mode="after")
    def _pipeline_has_steps(self) -> "RunConfig":
        if self.method == "pipeline" and not self.pipeline:
            raise ValueError("pipeline: empty, but method is 'pipeline'; list its steps (allowed: "
                             f"{', '.join(PIPELINE_STEPS)}), e.g. pipeline=[es,distill,symbolic,llm]")
        return self

    @model_validator(mode="after")
    def _tool_mode_has_a_model(self) -> "RunConfig":
        uses_llm = self.method == "llm" or (self.method == "pipeline" and "llm" in self.pipeline)
        if uses_llm and self.llm.loop == "tools":
            problem = tool_mode_problem(self.llm)
            if problem:
                raise ValueError(problem)
        return self


def tool_mode_problem(llm: LLMConfig) -> str | None:
    """Why `llm.loop: tools` cannot run with these settings, phrased with the fix; None if it can."""
    if llm.proposer == "mutation":
        return ("llm.loop: 'tools' needs a language model, but llm.proposer is 'mutation'; set "
                "llm.proposer to 'llm' (or 'auto') and llm.model, or use llm.loop=propose")
    if not (llm.model or llm.models):
        return ("llm.loop: 'tools' needs a language model; set llm.model (e.g. gpt-4o-mini, or "
                "openai/NAME with llm.api_base for a local server), or run offline with "
                "`method: pipeline` and `pipeline: [es, distill, symbolic, llm]`")
    return None


class ConfigError(WorkbenchError, ValueError):
    """A config problem, phrased as 'field: what is wrong; how to fix it'."""


def _format_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = ".".join(str(p) for p in err["loc"][:-1])
            lines.append(f"{field}: unknown key; remove it or check the spelling "
                         f"(valid keys: {', '.join(_valid_keys(parent))})")
        elif err["type"] == "value_error" and not err["loc"]:  # a rule across fields: its own words
            lines.append(str(err["ctx"]["error"]))
        elif err["type"] == "value_error":  # a validator's own words, which name the fix
            text = str(err["ctx"]["error"])
            lines.append(text if text.startswith(f"{field}:") else f"{field}: {text}")
        else:
            msg = err["msg"]
            given = err.get("input")
            lines.append(f"{field}: {msg} (got {given!r}); fix the value in the config file "
                         f"or with --set {field}=VALUE")
    return "\n".join(lines)


def _valid_keys(dotted: str) -> list[str]:
    model: type[BaseModel] = RunConfig
    for part in [p for p in dotted.split(".") if p]:
        ann = model.model_fields[part].annotation
        for option in (ann, *get_args(ann)):  # `Section | None` too
            if isinstance(option, type) and issubclass(option, BaseModel):
                model = option
                break
    return sorted(model.model_fields)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (e.g. es.popsize=16)")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else None


def build_config(data: dict[str, Any] | None = None, overrides: list[str] = ()) -> RunConfig:
    data = dict(data or {})
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
        node[path[-1]] = value
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc)) from None


def resolve_config(text: str | Path) -> Path:
    """The config file `text` names: an existing file is itself; a name without .yaml (and not
    a file) is the bundled config of that name (`quickstart`, `cpu/lpo_es`, `cpu/study`); any
    other text is taken as a path (reading it then says what is wrong)."""
    from .resources import bundled_config, bundled_names_text, is_config_name

    path = Path(text)
    if path.is_file() or not is_config_name(str(text)):
        return path
    found = bundled_config(str(text))
    if found is None:
        raise ConfigError(f"{text}: no such file and no bundled config of that name; give a "
                          f"FILE.yaml or a bundled config's name: {bundled_names_text()}")
    return found


def load_config(path: str | Path, overrides: list[str] = ()) -> RunConfig:
    """A run config from a file or a bundled config's name (see `resolve_config`)."""
    path = resolve_config(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}; check the path, or name a "
                          "bundled config without .yaml (e.g. quickstart, cpu/lpo_es; "
                          "`workbench run --help` lists them)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    try:
        return build_config(data, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}:\n{exc}") from None
