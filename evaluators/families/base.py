"""What every algorithm family provides, and the shapes the PPO loop expects from it.

A family turns a *candidate* (its warm start, a network, a program, or a symbolic expression) into
an `Algorithm`: a drift function for the policy objective and an optimiser (init, update).  All
candidate kinds compile to the same `Algorithm` shape, so one PPO loop and one fitness function
score them all.  The candidate's numeric parameters (`meta`) are an argument of the compiled
training function, so a population of them can be vmapped; its code is static.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..envs import EnvConfig

CandidateKind = Literal["warm_start", "network", "code", "symbolic"]
# what a family's learned function is asked about: what a teacher is queried on (see Family)
TeacherInputs = Literal["ratio_advantage", "parameters", "trajectories"]


class Algorithm(NamedTuple):
    """How a candidate plugs into PPO.

    drift(meta, ratio, advantage, clip_eps) -> per-sample drift >= 0; the actor loss is
    -mean(ratio * advantage - drift) (Mirror Learning; PPO's clip objective is one drift).
    opt_init(meta, agent_params, key) -> state; opt_update(meta, grads, state, params, ctx) ->
    (new_params, new_state).
    """

    drift: Callable[..., jax.Array]
    opt_init: Callable[..., Any]
    opt_update: Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class Candidate:
    """A static description of a candidate; its numbers travel separately as `meta`.

    `fn` is a compiled program (kind 'code': positional arguments in the family's signature;
    kind 'symbolic': keyword arguments named by the family's symbols).  `hsize` sizes a network.
    """

    kind: CandidateKind
    fn: Callable[..., Any] | None = None
    hsize: int | None = None
    label: str = ""


class CandidateError(ValueError):
    """A candidate that does not fit its family (wrong kind, signature or symbols)."""


def ppo_clip_drift(ratio: jax.Array, advantage: jax.Array, clip_eps: float) -> jax.Array:
    """relu((r - clip(r, 1-eps, 1+eps)) * A): with it, -mean(rA - drift) is PPO's clip loss."""
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)) * advantage)


def ppo_drift(meta: Any, ratio: jax.Array, advantage: jax.Array, clip_eps: float) -> jax.Array:
    del meta
    return ppo_clip_drift(ratio, advantage, clip_eps)


def make_adam(env: EnvConfig) -> tuple[Callable, Callable]:
    """PPO's own optimiser: global-norm clip, Adam (env betas, eps 1e-5), linear LR annealing.

    Used by the LPO family and by the plain-PPO reference; the same betas in training and in
    evaluation (the original used different ones: SPEC §10 item 6).
    """
    steps_per_update = env.num_minibatches * env.update_epochs

    def schedule(count):
        frac = 1.0 - (count // steps_per_update) / env.num_updates
        return env.lr * frac

    tx = optax.chain(
        optax.clip_by_global_norm(env.max_grad_norm),
        optax.adam(schedule if env.anneal_lr else env.lr, b1=env.b1, b2=env.b2, eps=1e-5),
    )

    def init(meta, params, key):
        del meta, key
        return tx.init(params)

    def update(meta, grads, state, params, ctx):
        del meta, ctx
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return init, update


@dataclass(frozen=True)
class SymbolicDefaults:
    """A family's symbolic-regression settings where the config leaves them unset (SPEC §6).

    Operators are in PySR's vocabulary (the operon backend translates them).  They live with the
    family because the table is per family: a drift over (r, A) needs fewer, simpler operators and
    shorter searches than an optimiser update over many features.
    """

    operators: tuple[str, ...] = ("+", "*", "-", "/", "max", "min", "exp", "neg", "tanh", "abs",
                                  "relu")
    maxsize: int = 60
    maxdepth: int = 9
    iterations: int = 10  # PySR niterations per fit
    populations: int | None = 160  # None: PySR's own default
    precision: int | None = None  # PySR float precision; None: PySR's default (32)
    crossover_probability: float | None = None  # None: PySR's default


@dataclass(frozen=True)
class Family:
    """Base class: subclasses fill the class attributes and the `_*_algorithm` builders."""

    name: str = ""
    description: str = ""
    normaliser: Literal["ppo", "sgd"] = "ppo"
    code_signature: tuple[str, ...] = ()
    code_returns_carry: bool = False
    symbol_names: tuple[str, ...] | None = None  # None: no symbolic form (and why, below)
    symbolic_refusal: str = ""
    default_hsize: int = 16
    warm_start_name: str = ""
    # where ES starts its search mean when `es.init` is 'auto' (see `es_start`)
    es_init: Literal["zero", "zero_output"] = "zero"
    # What a teacher is queried on when it is distilled or recorded (evaluators.distillation,
    # evaluators.recording, workbench symbolic data): 'parameters' — independent per-parameter
    # optimiser inputs (a feed-forward optimiser, via `network_rule`); 'trajectories' — sequences
    # of them, for a recurrent optimiser whose carry must be unrolled; 'ratio_advantage' —
    # (ratio, advantage) points of a drift (via `network_drift` and `symbol_values`).
    teacher_inputs: TeacherInputs = "parameters"
    # True when the zero network *is* the warm start (LPO: the zero residual is PPO's clip drift),
    # so it is a meaningful distillation teacher; elsewhere the zero network is a do-nothing rule.
    zero_network_is_warm_start: bool = False
    # The family-specific figure a run report draws of its best candidate, None for none.
    # 'drift': the drift against PPO's clip drift (needs `network_drift`, `expression_drift`).
    report_figure: Literal["drift"] | None = None
    symbolic_defaults: SymbolicDefaults = SymbolicDefaults()

    def es_start(self, key: jax.Array, hsize: int | None, init: str = "auto") -> Any:
        """The ES search mean's first value; both choices compute the family's baseline exactly.

        'zero' is the original's all-zero mean.  'zero_output' keeps the hidden layers at their
        random init and zeroes only the output layer: the network still outputs 0, but its output
        weights now have a first-order effect, and a bias-free network (LPO's) is no longer
        mapped onto itself by theta -> -theta, which at the zero mean makes every antithetic pair
        identical and the first ES gradient exactly zero.
        """
        init = self.es_init if init == "auto" else init
        if init == "zero":
            return self.init_network(key, hsize, zero=True)
        if init != "zero_output":
            raise ValueError(f"unknown ES init {init!r}; use 'auto', 'zero' or 'zero_output'")
        return self._zero_output_layer(self.init_network(key, hsize, zero=False))

    def _zero_output_layer(self, params: Any) -> Any:
        """Zero the last `Dense_k` of every flax module in `params` (the heads' output layers)."""
        if not isinstance(params, dict):
            return params
        dense = sorted((k for k in params if k.startswith("Dense_")), key=lambda k: int(k[6:]))
        out = {k: self._zero_output_layer(v) for k, v in params.items()}
        if dense:
            out[dense[-1]] = jax.tree.map(jnp.zeros_like, params[dense[-1]])
        return out

    # -- what subclasses implement ----------------------------------------------------------
    def init_network(self, key: jax.Array, hsize: int | None = None, zero: bool = True) -> Any:
        raise NotImplementedError

    def warm_start_fn(self) -> Callable[..., Any]:
        raise NotImplementedError

    def _network_algorithm(self, env: EnvConfig, hsize: int) -> Algorithm:
        raise NotImplementedError

    def _code_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        raise NotImplementedError

    def _symbolic_algorithm(self, env: EnvConfig, fn: Callable) -> Algorithm:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def warm_start(self) -> Candidate:
        return Candidate(kind="code", fn=self.warm_start_fn(), label=f"warm start ({self.warm_start_name})")

    def network(self, hsize: int | None = None) -> Candidate:
        return Candidate(kind="network", hsize=hsize or self.default_hsize, label="network")

    def algorithm(self, candidate: Candidate, env: EnvConfig) -> Algorithm:
        """Compile a candidate into the Algorithm the PPO loop runs on `env`."""
        if candidate.kind == "warm_start":
            candidate = self.warm_start()
        if candidate.kind == "network":
            return self._network_algorithm(env, candidate.hsize or self.default_hsize)
        if candidate.kind == "code":
            if candidate.fn is None:
                raise CandidateError("a code candidate needs a compiled function")
            return self._code_algorithm(env, candidate.fn)
        if candidate.kind == "symbolic":
            if self.symbol_names is None:
                raise CandidateError(f"family {self.name!r} has no symbolic form: {self.symbolic_refusal}")
            if candidate.fn is None:
                raise CandidateError("a symbolic candidate needs a compiled expression")
            return self._symbolic_algorithm(env, candidate.fn)
        raise CandidateError(f"unknown candidate kind {candidate.kind!r}")

    def candidate_probe(self, candidate: Candidate) -> Callable[[], Any] | None:
        """A pure, jittable function of nothing whose outputs `probe_verdict` judges: cheap checks
        of a program before the (expensive) training.  None: this family has no such checks.

        Split in two so that the untrusted tracer can trace it (recording how it calls the
        candidate) while only the trusted scorer runs it and judges the result."""
        del candidate
        return None

    def probe_verdict(self, outputs: Any) -> str | None:
        """None if the probe's outputs are fine, else the reason the candidate is `invalid`."""
        del outputs
        return None
