"""Symbolic candidates: text -> sympy expression -> jittable JAX function, without `exec`.

One converter serves every family and every producer of expressions (a user on the command line,
the symbolic-distillation backends, an LLM).  Unknown symbols or functions are reported by name
with what is allowed instead, never as a crash deep inside JAX.
"""

from __future__ import annotations

import ast
from typing import Callable, Iterable

import jax.numpy as jnp
import sympy
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations


class ExpressionError(ValueError):
    """An expression that cannot become a candidate (syntax, unknown symbol or function)."""


# Functions an expression may call, as sympy objects.  PySR's operator names are included so its
# equations parse unchanged (square, cube, neg, relu).
def _relu(x):
    return sympy.Max(x, 0)


ALLOWED_FUNCTIONS: dict[str, object] = {
    "exp": sympy.exp, "log": sympy.log, "sqrt": sympy.sqrt, "tanh": sympy.tanh,
    "sin": sympy.sin, "cos": sympy.cos, "abs": sympy.Abs, "Abs": sympy.Abs,
    "sign": sympy.sign, "max": sympy.Max, "Max": sympy.Max, "min": sympy.Min, "Min": sympy.Min,
    "maximum": sympy.Max, "minimum": sympy.Min, "relu": _relu,
    "square": lambda x: x ** 2, "cube": lambda x: x ** 3, "neg": lambda x: -x,
    "sigmoid": lambda x: 1 / (1 + sympy.exp(-x)),
}

_TRANSFORMS = standard_transformations + (convert_xor,)


_ALLOWED_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load,
                  ast.Constant, ast.operator, ast.unaryop, ast.Compare, ast.cmpop)


def _screen(text: str) -> None:
    """sympy's parser evaluates Python: only arithmetic, names and plain calls may reach it."""
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"{type(node).__name__} is not allowed in an expression ({text!r})")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionError(f"name {node.id!r} is not allowed in an expression")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.keywords):
            raise ExpressionError(f"only plain function calls are allowed in an expression ({text!r})")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
            raise ExpressionError(f"constant {node.value!r} is not allowed in an expression")


def parse_expression(text: str, symbol_names: Iterable[str]) -> sympy.Expr:
    """Parse `text` over the given input names; raise ExpressionError naming what is wrong."""
    names = tuple(symbol_names)
    _screen(text)
    local = {n: sympy.Symbol(n) for n in names}
    local.update(ALLOWED_FUNCTIONS)
    try:
        expr = parse_expr(text, local_dict=local, transformations=_TRANSFORMS, evaluate=True)
    except Exception as exc:  # sympy raises many kinds (SyntaxError, TokenError, TypeError...)
        raise ExpressionError(f"cannot parse expression {text!r}: {exc}") from None
    if not isinstance(expr, sympy.Expr):
        raise ExpressionError(f"{text!r} is not a numeric expression")
    unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in names)
    if unknown:
        raise ExpressionError(
            f"unknown symbol(s) {', '.join(unknown)} in {text!r}; this family's inputs are: "
            f"{', '.join(names)}")
    undefined = sorted({type(f).__name__ for f in expr.atoms(sympy.core.function.AppliedUndef)})
    if undefined:
        raise ExpressionError(
            f"unknown function(s) {', '.join(undefined)} in {text!r}; allowed: "
            f"{', '.join(sorted(ALLOWED_FUNCTIONS))}")
    return expr


_UNARY: dict[type, Callable] = {
    sympy.exp: jnp.exp, sympy.log: jnp.log, sympy.tanh: jnp.tanh, sympy.sin: jnp.sin,
    sympy.cos: jnp.cos, sympy.Abs: jnp.abs, sympy.sign: jnp.sign,
}


def to_jax(expr: sympy.Expr, symbol_names: Iterable[str]) -> Callable[..., jnp.ndarray]:
    """Build `f(**inputs)` evaluating `expr` with jax.numpy, by walking the sympy tree once."""
    names = set(symbol_names)

    def build(node: sympy.Basic) -> Callable[[dict], object]:
        if isinstance(node, sympy.Symbol):
            if node.name not in names:
                raise ExpressionError(f"unknown symbol {node.name!r}")
            name = node.name
            return lambda env: env[name]
        if node.is_Number or node in (sympy.pi, sympy.E):
            value = float(node)
            return lambda env: value
        if node is sympy.zoo or node is sympy.nan or node in (sympy.oo, -sympy.oo):
            raise ExpressionError(f"expression contains a non-finite constant ({node})")
        args = [build(a) for a in node.args]
        if isinstance(node, sympy.Add):
            return lambda env: _fold(jnp.add, [a(env) for a in args])
        if isinstance(node, sympy.Mul):
            return lambda env: _fold(jnp.multiply, [a(env) for a in args])
        if isinstance(node, sympy.Pow):
            base, power = args
            return lambda env: jnp.power(base(env), power(env))
        if isinstance(node, sympy.Max):
            return lambda env: _fold(jnp.maximum, [a(env) for a in args])
        if isinstance(node, sympy.Min):
            return lambda env: _fold(jnp.minimum, [a(env) for a in args])
        if isinstance(node, sympy.Piecewise):
            return _piecewise(node, names)
        for kind, fn in _UNARY.items():
            if isinstance(node, kind):
                (a,) = args
                return lambda env, fn=fn: fn(a(env))
        raise ExpressionError(
            f"function {type(node).__name__!r} has no JAX translation; allowed: "
            f"{', '.join(sorted(ALLOWED_FUNCTIONS))}")

    evaluate = build(expr)

    def fn(**inputs):
        return evaluate(inputs)

    fn.expression = expr  # type: ignore[attr-defined]
    return fn


def _fold(op, values):
    out = values[0]
    for v in values[1:]:
        out = op(out, v)
    return out


def _piecewise(node: sympy.Piecewise, names: set[str]) -> Callable:
    pieces = [(to_jax(e, names), _condition(c, names)) for e, c in node.args]

    def evaluate(env):
        out = pieces[-1][0](**env)
        for value, cond in reversed(pieces[:-1]):
            out = jnp.where(cond(env), value(**env), out)
        return out
    return evaluate


def _condition(cond, names):
    if cond is sympy.true:
        return lambda env: True
    ops = {sympy.StrictGreaterThan: jnp.greater, sympy.GreaterThan: jnp.greater_equal,
           sympy.StrictLessThan: jnp.less, sympy.LessThan: jnp.less_equal}
    for kind, op in ops.items():
        if isinstance(cond, kind):
            lhs, rhs = to_jax(cond.lhs, names), to_jax(cond.rhs, names)
            return lambda env, op=op: op(lhs(**env), rhs(**env))
    raise ExpressionError(f"condition {cond} has no JAX translation")


def compile_expression(text: str, symbol_names: Iterable[str]) -> Callable[..., jnp.ndarray]:
    names = tuple(symbol_names)
    return to_jax(parse_expression(text, names), names)


def complexity(expr: sympy.Expr) -> int:
    """Number of nodes in the expression tree (PySR-style size)."""
    return sum(1 for _ in sympy.preorder_traversal(expr))
