"""Symbolic candidates: text -> sympy expression -> jittable JAX function, without `eval`.

One converter serves every family and every producer of expressions (a user on the command line,
the symbolic-distillation backends, an LLM).  Unknown symbols or functions are reported by name
with what is allowed instead, never as a crash deep inside JAX.
"""

from __future__ import annotations

import ast
import math
from typing import Callable, Iterable

import jax.numpy as jnp
import sympy


class ExpressionError(ValueError):
    """An expression that cannot become a candidate (syntax, unknown symbol or function)."""


def _relu(x):
    return sympy.Max(x, 0)


# Functions an expression may call: name -> (sympy builder, allowed argument counts; None for
# two or more).  PySR's operator names are included so its equations parse unchanged.
ALLOWED_FUNCTIONS: dict[str, tuple[Callable, tuple[int, ...] | None]] = {
    "exp": (sympy.exp, (1,)), "log": (sympy.log, (1,)), "sqrt": (sympy.sqrt, (1,)),
    "tanh": (sympy.tanh, (1,)), "sin": (sympy.sin, (1,)), "cos": (sympy.cos, (1,)),
    "abs": (sympy.Abs, (1,)), "Abs": (sympy.Abs, (1,)), "sign": (sympy.sign, (1,)),
    "max": (sympy.Max, None), "Max": (sympy.Max, None), "maximum": (sympy.Max, (2,)),
    "min": (sympy.Min, None), "Min": (sympy.Min, None), "minimum": (sympy.Min, (2,)),
    "relu": (_relu, (1,)), "square": (lambda x: x ** 2, (1,)), "cube": (lambda x: x ** 3, (1,)),
    "neg": (lambda x: -x, (1,)), "sigmoid": (lambda x: 1 / (1 + sympy.exp(-x)), (1,)),
}
CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}

# Limits that keep hostile text from costing the host time or memory: sympy evaluates numeric
# powers exactly, so `9**9**9` would otherwise be a multi-gigabyte integer.
MAX_LENGTH = 5000
MAX_DEPTH = 60
MAX_EXPONENT = 1000  # |p| in x**p
MAX_POWER_DIGITS = 1000  # decimal digits of a numeric b**p

_BINARY: dict[type, Callable] = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def parse_expression(text: str, symbol_names: Iterable[str]) -> sympy.Expr:
    """Parse `text` over the given input names; raise ExpressionError naming what is wrong.

    Expression text comes from users, regression backends and LLMs and is parsed in the host
    process, so nothing here evaluates Python: the AST is walked and only numbers, the inputs,
    `pi`/`E`, + - * / ** (or ^) and the functions in ALLOWED_FUNCTIONS become sympy objects.
    """
    names = tuple(symbol_names)
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    source = text.replace("^", "**")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ExpressionError(f"cannot parse expression {text!r}: {getattr(exc, 'msg', exc)}") from None
    except RecursionError:
        raise ExpressionError(f"expression {text[:60]!r}... is nested too deeply") from None
    builder = _Builder(source.strip(), names, text)
    expr = builder.build(tree.body, 0)
    if not isinstance(expr, sympy.Expr):
        raise ExpressionError(f"{text!r} is not a numeric expression")
    return expr


class _Builder:
    """One walk over a parsed expression; each node kind it accepts has one branch."""

    def __init__(self, source: str, names: tuple[str, ...], text: str):
        self.source, self.names, self.text = source, names, text
        self.symbols = {n: sympy.Symbol(n) for n in names}

    def fail(self, what: str) -> ExpressionError:
        return ExpressionError(f"{what} in expression {self.text[:200]!r}")

    def build(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.build(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            return self.power(self.build(node.left, depth + 1), self.build(node.right, depth + 1))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.build(node.left, depth + 1), self.build(node.right, depth + 1)
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.fail(f"{_describe(node)} is not allowed (only numbers, the inputs "
                        f"{', '.join(self.names)}, pi, E, + - * / ** and function calls)")

    def number(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"constant {value!r} is not a number")
        if isinstance(value, int):
            return sympy.Integer(value)
        # The literal's own digits, as sympy's parser kept them (so stored expressions re-parse
        # to the same floats they were scored with).
        literal = ast.get_source_segment(self.source, node) or repr(value)
        if not math.isfinite(value):
            raise self.fail(f"constant {literal} is not finite")
        return sympy.Float(literal.replace("_", ""))

    def name(self, name: str) -> sympy.Expr:
        if name in self.symbols:
            return self.symbols[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in ALLOWED_FUNCTIONS:
            raise self.fail(f"function {name!r} used without calling it")
        raise self.fail(f"unknown symbol {name!r}; this family's inputs are: "
                        f"{', '.join(self.names)} (and the constants pi, E)")

    def power(self, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
        if exponent.is_Number:
            if abs(float(exponent)) > MAX_EXPONENT:
                raise self.fail(f"exponent {exponent} is larger than {MAX_EXPONENT}")
            if base.is_Number and base != 0:
                digits = abs(float(exponent)) * abs(math.log10(abs(float(base)) or 1e-300))
                if digits > MAX_POWER_DIGITS:
                    raise self.fail(f"{base}**{exponent} has about {digits:.0f} digits; "
                                    f"the limit is {MAX_POWER_DIGITS}")
        return base ** exponent

    def call(self, node: ast.Call, depth: int) -> sympy.Expr:
        allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"only plain calls of the allowed functions ({allowed}) are allowed")
        name = node.func.id
        if name not in ALLOWED_FUNCTIONS:
            raise self.fail(f"unknown function {name!r}; allowed: {allowed}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"{name}() takes plain positional arguments only")
        builder, arities = ALLOWED_FUNCTIONS[name]
        n = len(node.args)
        if (arities is None and n < 2) or (arities is not None and n not in arities):
            want = "two or more" if arities is None else " or ".join(map(str, arities))
            raise self.fail(f"{name}() takes {want} argument(s), got {n}")
        return builder(*(self.build(a, depth + 1) for a in node.args))


def _describe(node: ast.AST) -> str:
    kinds = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda",
             ast.Compare: "a comparison", ast.BoolOp: "a boolean operator", ast.IfExp: "if-else",
             ast.Tuple: "a tuple", ast.List: "a list", ast.Dict: "a dict",
             ast.JoinedStr: "an f-string", ast.NamedExpr: "assignment (:=)",
             ast.ListComp: "a comprehension", ast.GeneratorExp: "a generator"}
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        op = node.op
        return f"the operator {type(op).__name__}"
    return type(node).__name__


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
