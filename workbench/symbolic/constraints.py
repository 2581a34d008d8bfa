"""LPO's structural rule, zero drift at r = 1, enforced on sympy expressions for every backend.

The original made PySR's loss +Inf unless the tree was exactly 0 at r = 1 for A in {1, -1, 0.5}
(SPEC §6).  Here the check is done after the search, in sympy, on the drift the family actually
uses, relu(f), written out as max(f, 0) (so a fit like A*(r-1) - 0.2|A| that is negative at r = 1
passes unchanged).  A drift that is not 0 at r = 1 is *corrected* to max(f(r, A) - f(1, A), 0)
(zero at identity for every A) and the note says so; one whose value at r = 1 is not finite is
rejected.

`grad_loss` (SPEC §10 item 2): the backend fits g ≈ d drift / dr to the teacher's gradient targets;
the drift is then F(r, A) = G(r, A) - G(1, A) with G = ∫ g dr (sympy, log_r -> log r and
r_minus_1 -> r - 1 first; when that fails, once more for A > 0 and A < 0 separately, which
resolves the clip conditions of PPO-like gradients).  F is zero at r = 1 by construction and its r-derivative is the fitted g.
sympy's integrator can be slow or fail, so it runs in a child process with a per-expression time
limit; an integral it cannot do in closed form is a recorded rejection.  Piecewise results are
rewritten with `sign` so the text parses back through the one expression converter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import sympy

from sandbox.expressions import ExpressionError, parse_expression, to_jax
from sandbox.jail import REPO_ROOT  # the directory holding the project's packages

IDENTITY_A = (1, -1, sympy.Rational(1, 2))
LPO_AT_ONE = {"log_r": 0, "r_minus_1": 0, "r": 1}
INTEGRATE_LIMIT_S = 20.0
DENSE_TOLERANCE = 1e-7


class ConstraintError(ValueError):
    """An expression that cannot be made to satisfy the family's rule; the message says why."""


@dataclass
class Constrained:
    expr: sympy.Expr
    note: str
    corrected: bool


def value_at_identity(expr: sympy.Expr) -> sympy.Expr:
    subs = {s: LPO_AT_ONE[s.name] for s in expr.free_symbols if s.name in LPO_AT_ONE}
    return expr.subs(subs)


def _zero_at_one(drift: sympy.Expr) -> bool:
    """Exactly 0 (sympy) at r = 1 for A in {1, -1, 0.5}, as the original demanded, and numerically
    0 on a dense A grid (A = 0 included), which is what the sandbox's quick check probes."""
    a = sympy.Symbol("A")
    at_one = value_at_identity(drift)
    if not all(sympy.simplify(at_one.subs(a, v)) == 0 for v in IDENTITY_A):
        return False
    fn = to_jax(at_one, ("A",))
    grid = np.concatenate([np.linspace(-8.0, 8.0, 1601), [0.0]])
    values = np.asarray(np.broadcast_to(fn(A=grid), grid.shape), dtype=np.float64)
    return bool(np.all(np.isfinite(values)) and np.max(np.abs(values)) <= DENSE_TOLERANCE)


def zero_at_identity(expr: sympy.Expr) -> Constrained:
    """The LPO drift is relu(f) (the family's finish), written out as Max(f, 0) so the stored
    expression is >= 0 everywhere.  If that is not zero at r = 1, f becomes f(r, A) - f(1, A)."""
    drift = sympy.Max(expr, 0)
    if _zero_at_one(drift):
        return Constrained(drift, "drift max(f, 0) is zero at r = 1 (exact for A = 1, -1, 0.5; "
                                  "numeric on a dense A grid)", False)
    at_one = value_at_identity(expr)
    if at_one.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        raise ConstraintError(f"value at r = 1 is not finite ({at_one}); rejected")
    corrected = sympy.Max(expr - at_one, 0)
    if not _zero_at_one(corrected):
        raise ConstraintError("max(f(r, A) - f(1, A), 0) is still not 0 at r = 1; rejected")
    shown = str(sympy.N(at_one, 6))
    return Constrained(corrected, f"f(1, A) = {shown} was not 0; corrected to "
                                  "max(f(r, A) - f(1, A), 0)", True)


# -- gradient fits: integrate in r ---------------------------------------------------------------
def _indicator(cond: sympy.Basic) -> sympy.Expr:
    """1 where `cond` holds, 0 elsewhere, written with sign (ties at the boundary count 1/2)."""
    if cond is sympy.true:
        return sympy.Integer(1)
    if cond is sympy.false:
        return sympy.Integer(0)
    if isinstance(cond, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        return (1 + sympy.sign(cond.lhs - cond.rhs)) / 2
    if isinstance(cond, (sympy.StrictLessThan, sympy.LessThan)):
        return (1 - sympy.sign(cond.lhs - cond.rhs)) / 2
    if isinstance(cond, sympy.And):
        return sympy.Mul(*[_indicator(c) for c in cond.args])
    if isinstance(cond, sympy.Or):
        return 1 - sympy.Mul(*[1 - _indicator(c) for c in cond.args])
    if isinstance(cond, sympy.Not):
        return 1 - _indicator(cond.args[0])
    raise ConstraintError(f"condition {cond} has no sign form")


def piecewise_as_sign(expr: sympy.Expr) -> sympy.Expr:
    """Rewrite Piecewise, Heaviside and hyperbolic functions into the converter's vocabulary."""
    def convert(pw: sympy.Piecewise) -> sympy.Expr:
        out = sympy.Integer(0)
        rest = sympy.Integer(1)
        for value, cond in pw.args:
            ind = _indicator(cond)
            out += rest * ind * value
            rest = rest * (1 - ind)
        return out
    expr = expr.replace(lambda e: isinstance(e, sympy.Piecewise), convert)
    expr = expr.replace(sympy.Heaviside, lambda x, *_: (1 + sympy.sign(x)) / 2)
    expr = expr.replace(sympy.cosh, lambda x: (sympy.exp(x) + sympy.exp(-x)) / 2)
    return expr.replace(sympy.sinh, lambda x: (sympy.exp(x) - sympy.exp(-x)) / 2)


def integrate_in_r(g: sympy.Expr) -> sympy.Expr:
    """F(r, A) = G(r) - G(1), G = ∫ g dr with log_r = log r and r_minus_1 = r - 1."""
    r = sympy.Symbol("r", positive=True)
    subs = {s: {"log_r": sympy.log(r), "r_minus_1": r - 1, "r": r}[s.name]
            for s in g.free_symbols if s.name in ("log_r", "r_minus_1", "r")}
    g = g.subs(subs)
    F = _integral_from_one(g, r)
    if F is None:
        F = _integral_by_advantage_sign(g, r)
    if F is None:
        raise ConstraintError("sympy found no closed-form integral of the fitted gradient (also "
                              "split by the sign of A); rejected")
    return F.subs(r, sympy.Symbol("r"))  # back to the plain symbol the family uses


def _integral_from_one(g: sympy.Expr, r: sympy.Symbol) -> sympy.Expr | None:
    """∫_1^r g, in the converter's vocabulary; None when sympy has no finite closed form."""
    antiderivative = sympy.integrate(g, r)
    if antiderivative.has(sympy.Integral):
        return None
    F = piecewise_as_sign(sympy.piecewise_fold(antiderivative - antiderivative.subs(r, 1)))
    if F.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    return F


def _integral_by_advantage_sign(g: sympy.Expr, r: sympy.Symbol) -> sympy.Expr | None:
    """Gradients of clipped drifts hold conditions like A(r - 1) > 0.2|A|, which sympy cannot solve
    for r while the sign of A is unknown.  With A = a and A = -a for a positive symbol a it can:
    F = [A > 0] F+(A) + [A < 0] F-(A), each branch integrated with its Max/Min/Abs as Piecewise."""
    A = next((s for s in g.free_symbols if s.name == "A"), None)
    if A is None:
        return None
    a = sympy.Symbol("a", positive=True)
    branches = []
    for sign in (1, -1):
        F = _integral_from_one(g.subs(A, sign * a).rewrite(sympy.Piecewise), r)
        if F is None:
            return None
        branches.append(F.subs(a, sign * A))
    return (1 + sympy.sign(A)) / 2 * branches[0] + (1 - sympy.sign(A)) / 2 * branches[1]


def _integrate_text(text: str, names: tuple[str, ...], limit_s: float) -> dict:
    def expire(*_):
        raise TimeoutError
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(max(1, int(limit_s)))
    try:
        F = integrate_in_r(parse_expression(text, names))
        return {"ok": True, "expr": str(F)}
    except TimeoutError:
        return {"ok": False, "reason": f"sympy did not integrate the gradient within {limit_s:g} s; rejected"}
    except (ConstraintError, ExpressionError) as exc:
        return {"ok": False, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - sympy fails in many ways; each is a rejection
        return {"ok": False, "reason": f"sympy could not integrate the gradient ({type(exc).__name__}: {exc}); rejected"}
    finally:
        signal.alarm(0)


def integrate_many(texts: list[str], names: tuple[str, ...], limit_s: float = INTEGRATE_LIMIT_S
                   ) -> list[dict]:
    """Integrate each gradient expression in a child process (sympy may hang); one dict per text:
    {"ok": True, "expr": text} or {"ok": False, "reason": ...}."""
    if not texts:
        return []
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "JAX_PLATFORMS": "cpu"}
    payload = json.dumps({"texts": texts, "names": list(names), "limit_s": limit_s})
    try:
        out = subprocess.run([sys.executable, "-m", "workbench.symbolic.constraints"], input=payload,
                             capture_output=True, text=True, env=env, cwd=str(REPO_ROOT),
                             timeout=limit_s * len(texts) + 60)
        results = json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        reason = f"the integration process failed ({type(exc).__name__}); rejected"
        return [{"ok": False, "reason": reason} for _ in texts]
    return results


def _main() -> None:
    job = json.loads(sys.stdin.read())
    names = tuple(job["names"])
    results = [_integrate_text(t, names, float(job["limit_s"])) for t in job["texts"]]
    print(json.dumps(results))


if __name__ == "__main__":
    _main()
