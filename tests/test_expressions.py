"""The expression parser builds sympy objects from an allow-list and never evaluates Python."""

import math
import time

import jax.numpy as jnp
import pytest
import sympy
from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

from sandbox.expressions import ALLOWED_FUNCTIONS, ExpressionError, compile_expression, parse_expression

NAMES = ("r", "A")

# Legitimate expressions as the CLI, PySR, the symbolic front and stored rows write them.
LEGIT = [
    "r - 1", "(r - 1)**2 * A", "0.5*(r-1)^2", "relu(r - 1) * abs(A)", "-A*log(r) + A*(r - 1)",
    "Max(0, (r - 1)*A)", "maximum(r, 1.0) - 1", "min(r, 2, 3)", "sqrt(square(r - 1) + 1e-8)",
    "tanh(r - 1)*sign(A)", "exp(-A) - exp(0)", "1/2*(r - 1)**2", "cube(r - 1)/3",
    "sigmoid(A) * neg(1 - r)", "pi*(r - 1)**2/E", "2.5e-3*(r-1)", "0.12345678901234567890*(r-1)",
    "r**(-1.5) - 1", "(1 + sign(A))/2*(r - 1)**2 + (1 - sign(A))/2*(r - log(r) - 1)",
]


@pytest.mark.parametrize("text", LEGIT)
def test_legit_expressions_build_what_sympy_built(text):
    """Same sympy tree as the old parse_expr route (used here only as an oracle on safe text)."""
    ours = parse_expression(text, NAMES)
    local = {n: sympy.Symbol(n) for n in NAMES}
    local.update({k: v[0] for k, v in ALLOWED_FUNCTIONS.items()})
    theirs = parse_expr(text, local_dict=local, transformations=standard_transformations + (convert_xor,))
    assert sympy.srepr(ours) == sympy.srepr(theirs)
    fn = compile_expression(text, NAMES)
    out = fn(r=jnp.array([0.9, 1.1]), A=jnp.array([1.0, -2.0]))
    assert out.shape == (2,) and bool(jnp.all(jnp.isfinite(out)))


ATTACKS = {
    "eval(chr(95)+chr(95)+'import'+chr(95)+chr(95)+'(\"os\").system(\"touch /tmp/x\")')": "unknown function",
    "__import__('os').system('id')": "plain calls",
    "__import__('os')": "unknown function",
    "r.__class__.__mro__": "attribute",
    "(lambda: 1)()": "plain calls",
    "exp.__globals__": "attribute",
    "'abc'": "not a number",
    "[r for r in ()]": "comprehension",
    "r[0]": "indexing",
    "exp(r, base=2)": "positional",
    "exp(*[r])": "positional",
    "log(r, 2)": "argument",
    "max(r)": "two or more",
    "r if A else 1": "if-else",
    "(r := 1)": "assignment",
    "r > 1": "comparison",
    "Symbol('x')": "unknown function",
    "x + 1": "unknown symbol 'x'",
    "exp + 1": "without calling",
    "1j * r": "not a number",
    "True * r": "not a number",
    "9**9**9": "exponent",
    "(10**999)**999": "digits",
    "r**100000": "exponent",
    "1e400 * r": "not finite",
    "r + " * 3000 + "r": "characters long",
    "abs(" * 80 + "r" + ")" * 80: "nest",
    "r ~ 1": "cannot parse",
    "r @ r": "operator",
    "r // 2": "operator",
}


@pytest.mark.parametrize("text,needle", list(ATTACKS.items()))
def test_attacks_are_refused_quickly_with_a_reason(text, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, NAMES)
    assert time.perf_counter() - t0 < 2
    assert needle in str(info.value), str(info.value)
    assert not (tmp_path / "x").exists()


def test_code_in_an_expression_never_runs(tmp_path):
    """The exact exploit of the old route: eval() spelled with chr() to dodge a text screen."""
    marker = tmp_path / "pwned"
    payload = "+".join(f"chr({ord(c)})" for c in f"open({str(marker)!r}, 'w').write('x')")
    for text in (f"eval({payload})", f"r + eval({payload})", f"exec({payload})"):
        with pytest.raises(ExpressionError):
            parse_expression(text, NAMES)
    assert not marker.exists()


def test_constants_and_precision_survive_a_round_trip():
    e = parse_expression("0.123456789012345*(r - 1) + pi", NAMES)
    again = parse_expression(str(e), NAMES)
    assert sympy.srepr(e) == sympy.srepr(again)
    assert math.isclose(float(e.subs({"r": 2})), 0.123456789012345 + math.pi)
