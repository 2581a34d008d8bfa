"""Static screen of proposed programs, and turning accepted source into a callable.

The screen is the first line of defence (the separate, resource-limited worker process is the
second): parse, allow-listed imports only, no dunder access, no I/O or introspection builtins,
and the family's exact signature.  Accepted source is executed in a namespace that holds only
jax, jax.numpy, flax.linen (as `nn`, as the original prompts assumed), math and functools.
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

ALLOWED_IMPORTS = ("jax", "jax.numpy", "jax.nn", "jax.lax", "math", "functools", "flax.linen")
FORBIDDEN_NAMES = frozenset({
    "open", "exec", "eval", "compile", "__import__", "input", "globals", "locals", "vars",
    "getattr", "setattr", "delattr", "breakpoint", "help", "memoryview", "exit", "quit", "dir",
    "type", "super", "object", "classmethod", "staticmethod", "property",
})
SAFE_BUILTINS = ("abs", "all", "any", "bool", "dict", "enumerate", "float", "int", "isinstance",
                 "len", "list", "map", "max", "min", "pow", "range", "reversed", "round", "slice",
                 "sorted", "sum", "tuple", "zip", "True", "False", "None", "ValueError",
                 "ZeroDivisionError", "Exception", "print")


class ProgramError(ValueError):
    """A program rejected before it runs.  `kind` is 'invalid' or 'forbidden'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ScreenedProgram:
    source: str
    function_name: str


def screen_source(source: str, signature: Sequence[str]) -> ScreenedProgram:
    """Reject programs that break the rules; return the name of the candidate function.

    The candidate is the last top-level function; its parameters must be exactly `signature`
    (annotations and defaults are ignored).  Helper functions and constants may precede it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ProgramError("invalid", f"syntax error on line {exc.lineno}: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for mod in modules:
                if mod not in ALLOWED_IMPORTS:
                    raise ProgramError("forbidden", f"import of {mod!r} is not allowed (allowed: "
                                       f"{', '.join(ALLOWED_IMPORTS)})")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            raise ProgramError("forbidden", f"access to dunder attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or node.id.startswith("__")):
            raise ProgramError("forbidden", f"use of {node.id!r} is not allowed")
        elif isinstance(node, (ast.Global, ast.Nonlocal, ast.ClassDef, ast.AsyncFunctionDef,
                               ast.Await, ast.Yield, ast.YieldFrom, ast.Lambda)) and \
                not isinstance(node, ast.Lambda):
            raise ProgramError("forbidden", f"{type(node).__name__} statements are not allowed")
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom, ast.Assign,
                                 ast.AnnAssign, ast.Expr)):
            raise ProgramError("invalid", f"only imports, constants and functions may appear at top "
                               f"level (found {type(node).__name__} on line {node.lineno})")
        if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            raise ProgramError("invalid", f"top-level expression on line {node.lineno} would run "
                               "at import time; put it inside the function")
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not functions:
        raise ProgramError("invalid", f"no function defined; expected def f({', '.join(signature)})")
    fn = functions[-1]
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg or args.kwarg or args.kwonlyargs or names != list(signature):
        got = ", ".join(names + ([f"*{args.vararg.arg}"] if args.vararg else [])
                        + [a.arg for a in args.kwonlyargs] + ([f"**{args.kwarg.arg}"] if args.kwarg else []))
        raise ProgramError("invalid", f"wrong signature: expected {fn.name}({', '.join(signature)}), "
                           f"got {fn.name}({got})")
    return ScreenedProgram(source=source, function_name=fn.name)


class _CompatNumpy(types.ModuleType):
    """jax.numpy, plus the `a_min`/`a_max` keywords of `clip` that newer JAX removed.

    Programs written for the original system (JAX 0.4) use them; they must run unchanged.
    """

    def __init__(self):
        super().__init__("jax.numpy")

    def __getattr__(self, name: str) -> Any:
        return getattr(jax.numpy, name)

    @staticmethod
    def clip(x, min=None, max=None, *, a_min=None, a_max=None, **kw):  # noqa: A002
        return jax.numpy.clip(x, a_min if min is None else min, a_max if max is None else max, **kw)


class _CompatJax(types.ModuleType):
    """jax, whose `numpy` attribute is the compatible jax.numpy above."""

    def __init__(self):
        super().__init__("jax")

    def __getattr__(self, name: str) -> Any:
        return COMPAT_JNP if name == "numpy" else getattr(jax, name)


COMPAT_JNP = _CompatNumpy()
COMPAT_JAX = _CompatJax()
_MODULES = {"jax": COMPAT_JAX, "jax.numpy": COMPAT_JNP, "jax.nn": jax.nn, "jax.lax": jax.lax,
            "math": math, "functools": functools, "flax.linen": flax.linen}


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
    if name not in _MODULES:
        raise ImportError(f"import of {name!r} is not allowed")
    if fromlist or "." not in name:
        return _MODULES[name]
    return _MODULES[name.split(".")[0]]


def program_namespace() -> dict[str, Any]:
    safe = {n: getattr(builtins, n) for n in SAFE_BUILTINS if hasattr(builtins, n)}
    safe["__import__"] = _restricted_import
    return {"__builtins__": safe, "jnp": COMPAT_JNP, "jax": COMPAT_JAX, "nn": flax.linen,
            "math": math, "functools": functools, "__name__": "candidate"}


def load_program(source: str, signature: Sequence[str]) -> Callable[..., Any]:
    """Screen `source` and return its candidate function (raises ProgramError)."""
    screened = screen_source(source, signature)
    namespace = program_namespace()
    try:
        exec(compile(source, "<candidate>", "exec"), namespace)  # noqa: S102 - screened above
    except Exception as exc:  # an error while defining the function is the program's fault
        raise ProgramError("invalid", f"defining the program failed: {type(exc).__name__}: {exc}") from None
    return namespace[screened.function_name]
