"""A candidate's function carried across the trust boundary as serialised `jax.export` modules.

Candidate Python runs only in the isolated *tracer* process.  There, every call the trusted
scoring code will make of the candidate is recorded (by tracing that code abstractly, no compile),
and the candidate is exported, per call signature, as StableHLO: the function itself, its `vmap`
over a symbolic leading dimension, and (where the trusted code differentiates it) its VJP and the
VJP's `vmap`.  The *scorer* process never runs candidate Python: it verifies each module (inputs as
recorded, no effects, no host callbacks or custom calls) and plugs them into the trusted PPO loop
through `CandidateProxy`, a `custom_vjp` over `custom_vmap` calls, so seeds and population stay
vmapped under one `jit`.  The fitness the scorer reports is therefore computed by code the
candidate could not reach; all a candidate controls is the value of its own function.
"""

from __future__ import annotations

import base64
import re
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import export
from jax.custom_batching import custom_vmap

# custom_call targets a verified module may contain: JAX's own shape checks of symbolic dims
ALLOWED_CUSTOM_CALLS = frozenset({"shape_assertion"})
# StableHLO operations that reach outside the computation (host, other devices, the runtime)
FORBIDDEN_OPS = frozenset({"infeed", "outfeed", "send", "recv"})
_BATCH = "b"


class ExportError(ValueError):
    """A candidate that cannot be exported, or an exported module that fails verification."""


def _static(value: Any) -> bool:
    return isinstance(value, (bool, int, float, complex, str, type(None)))


def _aval_key(x: Any) -> tuple:
    if _static(x):
        return ("static", type(x).__name__, repr(x))
    aval = jax.typeof(x) if not isinstance(x, jax.ShapeDtypeStruct) else x
    return ("array", tuple(int(d) for d in aval.shape), str(np.dtype(aval.dtype)))


@dataclass(frozen=True)
class Layout:
    """How a call's positional and keyword arguments map to the flat array inputs of a module.

    Python scalars (an env's clip epsilon, say) are static: baked into the module, part of the key.
    """

    n_args: int
    kw_names: tuple[str, ...]
    statics: tuple[tuple[int, Any], ...]  # (flat position, value) of static arguments

    @staticmethod
    def of(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple["Layout", list[Any]]:
        names = tuple(sorted(kwargs))
        flat = list(args) + [kwargs[n] for n in names]
        statics = tuple((i, v) for i, v in enumerate(flat) if _static(v))
        arrays = [v for v in flat if not _static(v)]
        return Layout(len(args), names, statics), arrays

    def rebuild(self, arrays: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
        flat: list[Any] = []
        it = iter(arrays)
        fixed = dict(self.statics)
        for i in range(self.n_args + len(self.kw_names)):
            flat.append(fixed[i] if i in fixed else next(it))
        return flat[: self.n_args], dict(zip(self.kw_names, flat[self.n_args:]))


def call_key(layout: Layout, arrays: Sequence[Any]) -> str:
    """One string per call signature: static values and the avals of the array arguments."""
    parts = [repr((layout.n_args, layout.kw_names, layout.statics))]
    parts += [repr(_aval_key(a)) for a in arrays]
    return "|".join(parts)


def _is_float(aval: Any) -> bool:
    return jnp.issubdtype(aval.dtype, jnp.floating)


# -- tracer side: record the calls, export the candidate -------------------------------------------

@dataclass
class _Call:
    layout: Layout
    avals: list[jax.ShapeDtypeStruct]
    grad: bool = False


class CallRecorder:
    """Stands in for the candidate while the trusted code is traced: records every call signature,
    and whether the call is differentiated (a `custom_vjp` whose backward pass marks it)."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.calls: dict[str, _Call] = {}
        self._wrapped: dict[str, Callable] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        layout, arrays = Layout.of(args, kwargs)
        key = call_key(layout, arrays)
        if key not in self.calls:
            avals = [jax.ShapeDtypeStruct(jax.typeof(a).shape, jax.typeof(a).dtype) for a in arrays]
            self.calls[key] = _Call(layout, avals)
        return self._differentiable(key)(*arrays)

    def _differentiable(self, key: str) -> Callable:
        if key in self._wrapped:
            return self._wrapped[key]
        call = self.calls[key]
        flat = _flat_fn(self.fn, call.layout)

        @jax.custom_vjp
        def wrapped(*arrays):
            return flat(*arrays)

        def fwd(*arrays):
            return flat(*arrays), arrays

        def bwd(arrays, ct):
            call.grad = True
            return _vjp_fn(flat, call.avals)(*arrays, *jax.tree.leaves(ct))

        wrapped.defvjp(fwd, bwd)
        self._wrapped[key] = wrapped
        return wrapped


def _flat_fn(fn: Callable, layout: Layout) -> Callable:
    def flat(*arrays):
        args, kwargs = layout.rebuild(arrays)
        return fn(*args, **kwargs)
    return flat


def _vjp_fn(flat: Callable, avals: Sequence[Any]) -> Callable:
    """(arrays..., cotangent leaves...) -> cotangents of the float arrays, zeros (float0) for others."""
    n = len(avals)

    def vjp(*inputs):
        arrays, ct_leaves = inputs[:n], inputs[n:]
        out, pullback = jax.vjp(flat, *arrays)
        ct = jax.tree.unflatten(jax.tree.structure(out), list(ct_leaves))
        grads = pullback(ct)
        return tuple(g for g, a in zip(grads, avals) if _is_float(a))
    return vjp


def _batched_avals(avals: Sequence[Any], b: Any) -> list[jax.ShapeDtypeStruct]:
    return [jax.ShapeDtypeStruct((b,) + tuple(a.shape), a.dtype) for a in avals]


def export_calls(recorder: CallRecorder, platform: str) -> list[dict[str, Any]]:
    """Serialise each recorded call signature's modules (the tracer's reply); raises ExportError."""
    (b,) = export.symbolic_shape(_BATCH)
    bundles = []
    for key, call in recorder.calls.items():
        flat = _flat_fn(recorder.fn, call.layout)
        fns: dict[str, tuple[Callable, list]] = {
            "f": (flat, call.avals), "fb": (jax.vmap(flat), _batched_avals(call.avals, b))}
        if call.grad:
            out = jax.eval_shape(flat, *call.avals)
            ct = [jax.ShapeDtypeStruct(o.shape, o.dtype) for o in jax.tree.leaves(out)]
            if not all(_is_float(c) for c in ct):
                raise ExportError("the function is differentiated but returns integers")
            vjp = _vjp_fn(flat, call.avals)
            fns["g"] = (vjp, call.avals + ct)
            fns["gb"] = (jax.vmap(vjp), _batched_avals(call.avals + ct, b))
        modules = {}
        for name, (fn, avals) in fns.items():
            try:
                exp = export.export(jax.jit(fn), platforms=(platform,))(*avals)
            except Exception as exc:  # the candidate's code failed to lower
                raise ExportError(f"exporting the function failed: {type(exc).__name__}: "
                                  f"{str(exc)[:600]}") from None
            modules[name] = base64.b64encode(exp.serialize()).decode("ascii")
        bundles.append({"key": key, "modules": modules})
    return bundles


def trace_candidate(family: Any, candidate: Any, envs: Sequence[Any], platform: str
                    ) -> list[dict[str, Any]]:
    """Trace the family's probe and each env's training around `candidate` and export every call
    the trusted code makes (raises ExportError, or whatever the candidate raises while traced)."""
    from evaluators.ppo import make_train

    recorder = CallRecorder(candidate.fn)
    cand = dataclasses.replace(candidate, fn=recorder)
    probe = family.candidate_probe(cand)
    if probe is not None:
        jax.eval_shape(probe)
    for env in envs:
        jax.eval_shape(make_train(env, family.algorithm(cand, env)), jax.random.key(0), {})
    return export_calls(recorder, platform)


def through_export(family: Any, candidate: Any, envs: Sequence[Any]) -> Any:
    """A trusted program or expression, compiled the way the sandbox compiles candidates.

    XLA optimises an imported module as its own unit, so a program called through the boundary
    rounds differently in the last bit from the same program inlined, and RL training magnifies
    that into a different score.  Scoring trusted programs (a warm start, a reference) through the
    same boundary keeps them comparable, bit for bit, with every sandboxed candidate."""
    if candidate.kind not in ("code", "symbolic") or candidate.fn is None \
            or isinstance(candidate.fn, CandidateProxy):
        return candidate
    platform = jax.default_backend()
    proxy = CandidateProxy(trace_candidate(family, candidate, envs, platform), platform)
    return dataclasses.replace(candidate, fn=proxy)


# -- scorer side: verify the modules, call them from trusted code ----------------------------------

_CUSTOM_CALL = re.compile(r"stablehlo\.custom_call\s+@([\w.$-]+)|call_target_name\s*=\s*\"([^\"]*)\"")
_OP = re.compile(r"\b(?:stablehlo|mhlo|chlo)\.([a-z_]+)\b")


def verify_module(exp: export.Exported, platform: str, in_avals: Sequence[Any],
                  batched: bool) -> None:
    """Refuse modules that could reach beyond computing numbers from their inputs."""
    if tuple(exp.platforms) != (platform,):
        raise ExportError(f"module is for {exp.platforms}, not {platform}")
    if exp.nr_devices != 1 or exp.ordered_effects or exp.unordered_effects:
        raise ExportError("module uses several devices or has effects")
    got = [(tuple(str(d) for d in a.shape), str(a.dtype)) for a in exp.in_avals]
    want = [(((_BATCH,) if batched else ()) + tuple(str(d) for d in a.shape), str(a.dtype))
            for a in in_avals]
    if got != want:
        raise ExportError(f"module inputs {got} do not match the recorded call {want}")
    text = exp.mlir_module()
    for m in _CUSTOM_CALL.finditer(text):
        target = m.group(1) or m.group(2)
        if target not in ALLOWED_CUSTOM_CALLS:
            raise ExportError(f"module contains the custom call {target!r} (host callbacks and "
                              "custom calls are not allowed)")
    bad = sorted({op for op in _OP.findall(text) if op in FORBIDDEN_OPS})
    if bad:
        raise ExportError(f"module contains forbidden operations: {', '.join(bad)}")


def _load(blob: str) -> export.Exported:
    try:
        return export.deserialize(bytearray(base64.b64decode(blob.encode("ascii"), validate=True)))
    except Exception as exc:  # malformed bytes from the untrusted tracer
        raise ExportError(f"module does not deserialise: {type(exc).__name__}") from None


def _broadcast_unbatched(axis_size: int, in_batched: Any, args: Sequence[Any]) -> list[Any]:
    flags = jax.tree.leaves(in_batched)
    return [x if isb else jnp.broadcast_to(x, (axis_size,) + x.shape) for x, isb in zip(args, flags)]


def _batched_call(exp: export.Exported) -> Callable:
    """Call a module exported over a symbolic leading axis; nested vmaps merge into that axis."""
    @custom_vmap
    def call(*args):
        return exp.call(*args)

    @call.def_vmap
    def rule(axis_size, in_batched, *args):
        merged = [x.reshape((axis_size * x.shape[1],) + x.shape[2:])
                  for x in _broadcast_unbatched(axis_size, in_batched, args)]
        out = call(*merged)
        out = jax.tree.map(lambda o: o.reshape((axis_size, o.shape[0] // axis_size) + o.shape[1:]),
                           out)
        return out, jax.tree.map(lambda _: True, out)
    return call


def _single_call(exp: export.Exported, batched: Callable) -> Callable:
    @custom_vmap
    def call(*args):
        return exp.call(*args)

    @call.def_vmap
    def rule(axis_size, in_batched, *args):
        out = batched(*_broadcast_unbatched(axis_size, in_batched, args))
        return out, jax.tree.map(lambda _: True, out)
    return call


@dataclass
class _Installed:
    avals: list[Any]
    fn: Callable


class CandidateProxy:
    """The candidate as the trusted code sees it: a callable backed only by verified modules."""

    def __init__(self, bundles: Sequence[dict[str, Any]], platform: str):
        self._calls: dict[str, _Installed] = {}
        for bundle in bundles:
            self._calls[str(bundle["key"])] = self._install(bundle["modules"], platform)

    @staticmethod
    def _install(modules: dict[str, str], platform: str) -> _Installed:
        if not {"f", "fb"} <= set(modules) or set(modules) - {"f", "fb", "g", "gb"}:
            raise ExportError("an export bundle needs the modules f and fb (and g, gb for gradients)")
        exps = {name: _load(blob) for name, blob in modules.items()}
        avals = list(exps["f"].in_avals)
        verify_module(exps["f"], platform, avals, batched=False)
        verify_module(exps["fb"], platform, avals, batched=True)
        forward = _single_call(exps["f"], _batched_call(exps["fb"]))
        if "g" in exps:
            out_avals = list(exps["f"].out_avals)
            verify_module(exps["g"], platform, avals + out_avals, batched=False)
            verify_module(exps["gb"], platform, avals + out_avals, batched=True)
            backward = _single_call(exps["g"], _batched_call(exps["gb"]))
        else:
            backward = None
        fn = _differentiable(forward, backward, avals)
        return _Installed(avals, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        layout, arrays = Layout.of(args, kwargs)
        key = call_key(layout, arrays)
        installed = self._calls.get(key)
        if installed is None:
            raise ExportError(f"the candidate was called with a signature the tracer did not export "
                              f"({key[:300]})")
        got = [_aval_key(a)[1:] for a in arrays]
        want = [(tuple(int(d) for d in a.shape), str(np.dtype(a.dtype))) for a in installed.avals]
        if got != want:
            raise ExportError(f"exported module takes {want}, the call passes {got}")
        return installed.fn(*arrays)

    @property
    def signatures(self) -> list[str]:
        return list(self._calls)


def _differentiable(forward: Callable, backward: Callable | None, avals: Sequence[Any]) -> Callable:
    @jax.custom_vjp
    def fn(*arrays):
        return forward(*arrays)

    def fwd(*arrays):
        return forward(*arrays), arrays

    def bwd(arrays, ct):
        if backward is None:
            raise ExportError("the trusted code differentiates the candidate, but no gradient "
                              "module was exported")
        grads = iter(backward(*arrays, *jax.tree.leaves(ct)))
        return tuple(next(grads) if _is_float(a) else np.zeros(a.shape, jax.dtypes.float0)
                     for a in avals)

    fn.defvjp(fwd, bwd)
    return fn
