"""Static screen of proposed programs, and turning accepted source into a callable.

The screen ALLOWS rather than denies: a program may name only its own parameters and locals, a few
safe builtins, and an explicit list of public API (below, for a reader to audit).  Any other
attribute (`jax._src...`, `jnp.save`, `f.__globals__`, `"{0.__class__}".format`) or import is
refused with a message naming what is allowed.  The screen is the first layer only: accepted source
runs in the jailed tracer (`sandbox.jail`), in a namespace of proxy modules that hold nothing but
the allowed names, and its fitness is computed elsewhere (`sandbox.worker`).
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
import types
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import flax.linen
import jax
import jax.numpy

# -- the allow-list ------------------------------------------------------------------------------
JNP_NAMES = frozenset("""
abs absolute add all allclose amax amin any arange arccos arccosh arcsin arcsinh arctan arctan2
arctanh argmax argmin argsort around array asarray atleast_1d atleast_2d bfloat16 bool_
broadcast_arrays broadcast_to cbrt ceil clip concatenate copysign cos cosh count_nonzero cumprod
cumsum deg2rad diag diagonal diff divide dot e einsum equal exp exp2 expand_dims expm1 eye fabs
flip float16 float32 float64 floor floor_divide fmax fmin fmod full full_like greater
greater_equal heaviside hstack hypot inf int32 int64 interp isclose isfinite isinf isnan
isneginf isposinf ldexp less less_equal linspace log log10 log1p log2 logaddexp logaddexp2
logical_and logical_not logical_or logical_xor matmul max maximum mean median meshgrid min
minimum mod moveaxis multiply nan nan_to_num nanmax nanmean nanmin nanstd nansum ndarray ndim
negative newaxis nextafter not_equal ones ones_like outer percentile pi positive power prod
quantile rad2deg ravel reciprocal remainder repeat reshape rint round searchsorted shape sign
signbit sin sinc sinh size sort split sqrt square squeeze stack std subtract sum swapaxes take
take_along_axis tan tanh tile trace transpose tril triu true_divide trunc var vstack where zeros
zeros_like
""".split())
NN_NAMES = frozenset("""
celu elu gelu glu hard_sigmoid hard_silu hard_swish hard_tanh leaky_relu log_sigmoid log_softmax
logsumexp one_hot relu relu6 selu sigmoid silu soft_sign softmax softplus sparse_plus
sparse_sigmoid squareplus standardize swish tanh
""".split())
# no callbacks, infeed/outfeed, custom calls, collectives or sharding: math and control flow only
LAX_NAMES = frozenset("""
abs acos acosh add asin asinh atan atan2 atanh broadcast broadcast_in_dim cbrt ceil clamp
concatenate cond convert_element_type cos cosh cummax cummin cumprod cumsum digamma div
dynamic_slice dynamic_update_slice eq erf erf_inv erfc exp exp2 expand_dims expm1 floor fori_loop
full full_like ge gt igamma iota is_finite le lgamma log log1p logistic lt map max min mul ne neg
nextafter pow reciprocal reduce_max reduce_min reduce_prod reduce_sum rem reshape round rsqrt
scan select select_n sign sin sinh slice sort sqrt square squeeze stop_gradient sub switch tan
tanh top_k while_loop
""".split())
JAX_NAMES = frozenset({"numpy", "nn", "lax", "grad", "value_and_grad", "vmap", "jit"})
FUNCTOOLS_NAMES = frozenset({"partial", "reduce"})
MATH_NAMES = frozenset(n for n in dir(math) if not n.startswith("_"))
# array, list and dict methods and attributes a program may use on its values
VALUE_ATTRS = frozenset("""
T add all any append argmax argmin astype at clip conj copy cumprod cumsum divide dot dtype
extend flatten get imag items keys max mean min multiply ndim pop power prod ravel real reshape
round set shape size squeeze std sum swapaxes transpose values var
""".split())
SAFE_BUILTINS = ("abs", "all", "any", "bool", "dict", "enumerate", "float", "int", "isinstance",
                 "len", "list", "max", "min", "pow", "range", "reversed", "round", "sorted",
                 "sum", "tuple", "zip", "True", "False", "None", "ValueError",
                 "ZeroDivisionError", "Exception", "print")
ALLOWED_IMPORTS = ("jax", "jax.numpy", "jax.nn", "jax.lax", "math", "functools", "flax",
                   "flax.linen")
ALLOWED_HELP = ("allowed: jnp (jax.numpy array math), jax.nn and nn (flax.linen) activations, "
                "jax.lax math and control flow (no callbacks), jax.grad/vmap/jit, math, "
                "functools.partial/reduce, and the safe builtins; see sandbox/checks.py")


class ProgramError(ValueError):
    """A program rejected before it runs.  `kind` is 'invalid' or 'forbidden'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ScreenedProgram:
    source: str
    function_name: str


# -- runtime proxies: modules that hold only the allowed names ------------------------------------

class _Proxy(types.SimpleNamespace):
    """A module stand-in whose attributes are exactly the allowed ones (nothing else exists)."""


def _proxy(module: Any, names: frozenset[str], **extra: Any) -> _Proxy:
    present = {n: getattr(module, n) for n in names if hasattr(module, n)}
    return _Proxy(**present, **extra)


def _compat_clip(x, min=None, max=None, *, a_min=None, a_max=None, **kw):  # noqa: A002
    """jnp.clip with the `a_min`/`a_max` keywords that newer JAX removed: programs written for the
    original system (JAX 0.4) use them and must run unchanged."""
    return jax.numpy.clip(x, a_min if min is None else min, a_max if max is None else max, **kw)


COMPAT_JNP = _proxy(jax.numpy, JNP_NAMES - {"clip"}, clip=_compat_clip)
_NN = _proxy(jax.nn, NN_NAMES)
_LAX = _proxy(jax.lax, LAX_NAMES)
_JAX = _proxy(jax, JAX_NAMES - {"numpy", "nn", "lax"}, numpy=COMPAT_JNP, nn=_NN, lax=_LAX)
_LINEN = _proxy(flax.linen, NN_NAMES)
_MODULES: dict[str, Any] = {"jax": _JAX, "jax.numpy": COMPAT_JNP, "jax.nn": _NN, "jax.lax": _LAX,
                            "math": _proxy(math, MATH_NAMES),
                            "functools": _proxy(functools, FUNCTOOLS_NAMES),
                            "flax": _Proxy(linen=_LINEN), "flax.linen": _LINEN}
# what each module path offers (a submodule is an allowed name of its parent)
_OFFERS: dict[str, frozenset[str]] = {
    "jax": JAX_NAMES, "jax.numpy": JNP_NAMES, "jax.nn": NN_NAMES, "jax.lax": LAX_NAMES,
    "math": MATH_NAMES, "functools": FUNCTOOLS_NAMES, "flax": frozenset({"linen"}),
    "flax.linen": NN_NAMES}
_SUBMODULES = {"jax.numpy", "jax.nn", "jax.lax", "flax.linen"}
DEFAULT_ALIASES = {"jnp": "jax.numpy", "jax": "jax", "nn": "flax.linen", "math": "math",
                   "functools": "functools"}


# -- the static screen ---------------------------------------------------------------------------

_FORBIDDEN_NODES = (ast.Global, ast.Nonlocal, ast.ClassDef, ast.AsyncFunctionDef, ast.Await,
                    ast.Yield, ast.YieldFrom, ast.AsyncFor, ast.AsyncWith)


def _forbid(message: str) -> ProgramError:
    return ProgramError("forbidden", f"{message}; {ALLOWED_HELP}")


def _imports(tree: ast.Module) -> dict[str, str]:
    """Aliases bound by the program's imports -> the module path or API path they name."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name not in ALLOWED_IMPORTS:
                    raise _forbid(f"import of {a.name!r} is not allowed")
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level or mod not in ALLOWED_IMPORTS:
                raise _forbid(f"import from {mod!r} is not allowed")
            for a in node.names:
                if a.name not in _OFFERS[mod]:
                    raise _forbid(f"{mod}.{a.name} is not allowed")
                aliases[a.asname or a.name] = f"{mod}.{a.name}"
    return aliases


def _bound_names(tree: ast.Module) -> set[str]:
    """Every name the program binds itself: parameters, assignments, loop targets, functions."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef):
            bound.add(node.name)
    return bound


def _dotted(node: ast.AST) -> tuple[str, list[str]] | None:
    """`a.b.c` -> ('a', ['b', 'c']); None if the chain does not start at a plain name."""
    attrs: list[str] = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return node.id, attrs[::-1]
    return None


def _check_api_path(path: str, attrs: list[str]) -> None:
    for attr in attrs:
        offers = _OFFERS.get(path)
        if offers is None:  # an API function: its own attributes are off limits
            raise _forbid(f"attribute {attr!r} of {path} is not allowed")
        if attr not in offers:
            raise _forbid(f"{path}.{attr} is not allowed")
        path = f"{path}.{attr}"


def _check_names_and_attributes(tree: ast.Module, aliases: dict[str, str]) -> None:
    bound = _bound_names(tree)
    rebound = bound & set(aliases)
    if rebound:
        raise _forbid(f"module name {sorted(rebound)[0]!r} may not be reassigned")
    allowed_names = bound | set(aliases) | set(SAFE_BUILTINS)
    covered: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in covered:
            chain = _dotted(node)
            if chain and chain[0] in aliases:
                inner = node
                while isinstance(inner, ast.Attribute):
                    covered.add(id(inner))
                    inner = inner.value
                _check_api_path(aliases[chain[0]], chain[1])
            elif node.attr.startswith("_") or node.attr not in VALUE_ATTRS:
                raise ProgramError("forbidden", f"attribute {node.attr!r} is not allowed on values; "
                                   "arrays offer .shape, .T, .sum(), .reshape(), .astype(), "
                                   ".at[...] and the like (VALUE_ATTRS in sandbox/checks.py)")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id.startswith("_") or node.id not in allowed_names:
                raise _forbid(f"name {node.id!r} is not allowed")


def _check_structure(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if isinstance(node, _FORBIDDEN_NODES):
            raise _forbid(f"{type(node).__name__} statements are not allowed")
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign,
                                 ast.AnnAssign, ast.Expr)):
            raise ProgramError("invalid", f"only imports, constants and functions may appear at "
                               f"top level (found {type(node).__name__} on line {node.lineno})")
        if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            raise ProgramError("invalid", f"top-level expression on line {node.lineno} would run "
                               "at import time; put it inside the function")


def _candidate_function(tree: ast.Module, signature: Sequence[str]) -> ast.FunctionDef:
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not functions:
        raise ProgramError("invalid", f"no function defined; expected def f({', '.join(signature)})")
    fn = functions[-1]
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg or args.kwarg or args.kwonlyargs or names != list(signature):
        got = ", ".join(names + ([f"*{args.vararg.arg}"] if args.vararg else [])
                        + [a.arg for a in args.kwonlyargs]
                        + ([f"**{args.kwarg.arg}"] if args.kwarg else []))
        raise ProgramError("invalid", f"wrong signature: expected {fn.name}({', '.join(signature)}), "
                           f"got {fn.name}({got})")
    return fn


def screen_source(source: str, signature: Sequence[str]) -> ScreenedProgram:
    """Reject programs that break the rules; return the name of the candidate function.

    The candidate is the last top-level function; its parameters must be exactly `signature`
    (annotations and defaults are ignored).  Helper functions and constants may precede it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ProgramError("invalid", f"syntax error on line {exc.lineno}: {exc.msg}") from None
    _check_structure(tree)
    aliases = {**DEFAULT_ALIASES, **_imports(tree)}
    _check_names_and_attributes(tree, aliases)
    return ScreenedProgram(source=source, function_name=_candidate_function(tree, signature).name)


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
    if level or name not in _MODULES:
        raise ImportError(f"import of {name!r} is not allowed")
    if fromlist or "." not in name:
        return _MODULES[name]
    return _MODULES[name.split(".")[0]]


def program_namespace() -> dict[str, Any]:
    """The globals a screened program runs with: proxies and safe builtins only."""
    safe = {n: getattr(builtins, n) for n in SAFE_BUILTINS if hasattr(builtins, n)}
    safe["__import__"] = _restricted_import
    return {"__builtins__": safe, "jnp": COMPAT_JNP, "jax": _JAX, "nn": _LINEN,
            "math": _MODULES["math"], "functools": _MODULES["functools"], "__name__": "candidate"}


def load_program(source: str, signature: Sequence[str], screen: bool = True) -> Callable[..., Any]:
    """Screen `source` and return its candidate function (raises ProgramError).

    `screen=False` skips the static screen and runs the source with the real builtins and imports.
    It exists only for tests that run deliberately hostile code inside the sandbox worker, to show
    that the jail and the tracer/scorer split hold when a program gets past the screen."""
    if screen:
        name = screen_source(source, signature).function_name
        namespace = program_namespace()
    else:
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise ProgramError("invalid", f"syntax error on line {exc.lineno}: {exc.msg}") from None
        name = _candidate_function(tree, signature).name
        namespace = {**program_namespace(), "__builtins__": builtins}
    try:
        exec(compile(source, "<candidate>", "exec"), namespace)  # noqa: S102 - screened above
    except Exception as exc:  # an error while defining the function is the program's fault
        raise ProgramError("invalid", f"defining the program failed: {type(exc).__name__}: {exc}") from None
    return namespace[name]
