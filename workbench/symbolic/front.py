"""From a backend's raw equations to a checked Pareto front and the two selected expressions.

Each raw equation is parsed (sympy), its target standardisation undone, the rule of what is fitted
applied (a drift, LPO's: zero at r = 1, or integration of a gradient fit; see
`RegressionData.fits_drift`), printed, parsed back and compiled to JAX (so what is stored is
exactly what the evaluator will run), and scored on held-out teacher data.
Anything that fails on the way is kept as a rejection with its reason, never raised.

Selections (SPEC §6): `best_loss` is the lowest held-out loss; `best_score` is PySR's default
choice: among expressions within 1.5x of the lowest loss, the one with the steepest drop of
log(loss) per unit of complexity relative to the next simpler front member.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
import sympy

from evaluators.families import Family
from sandbox.expressions import ExpressionError, compile_expression, complexity, parse_expression

from .backend_base import Equation
from .constraints import ConstraintError, integrate_many, zero_at_identity
from .data import RegressionData, held_out_mse

LOSS_FLOOR = 1e-30  # log(0) guard for exact fits


@dataclass
class Member:
    expression: str  # over the family's symbols; what a candidate stores and the evaluator runs
    complexity: int  # sympy node count of `expression`
    loss: float  # held-out MSE against the regressed targets
    backend_expression: str
    backend_complexity: int
    backend_loss: float
    notes: list[str] = field(default_factory=list)
    score: float = 0.0
    value_loss: float | None = None  # grad_loss: held-out MSE of the integrated drift

    def to_json(self) -> dict:
        d = asdict(self)
        d["loss"] = _finite(self.loss)
        return d


@dataclass
class Rejected:
    backend_expression: str
    reason: str


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _standardised_back(expr: sympy.Expr, data: RegressionData) -> tuple[sympy.Expr, list[str]]:
    if data.y_mean == 0.0 and data.y_scale == 1.0:
        return expr, []
    note = (f"targets were standardised for the fit (mean {data.y_mean:.6g}, std {data.y_scale:.6g}); "
            "the expression maps back: mean + std * fit")
    return sympy.Float(data.y_mean) + sympy.Float(data.y_scale) * expr, [note]


def _distribute(expr: sympy.Expr) -> sympy.Expr:
    """c * Max(a, b) -> Max(c*a, c*b) (Min for c < 0), so products of constants can merge."""
    def push(e: sympy.Mul) -> sympy.Expr:
        coeff, rest = e.as_coeff_Mul()
        if coeff.is_Number and coeff != 0 and isinstance(rest, (sympy.Max, sympy.Min)):
            flip = coeff < 0
            kind = {sympy.Max: sympy.Min, sympy.Min: sympy.Max}[type(rest)] if flip else type(rest)
            return kind(*[sympy.expand(coeff * a) for a in rest.args])
        return e
    return expr.replace(lambda e: isinstance(e, sympy.Mul), push)


def snapped(expr: sympy.Expr, digits: int) -> sympy.Expr:
    """Constants rounded to `digits` significant digits, those below 10^-(digits+1) dropped: a
    standard SR clean-up; a variant only survives if its held-out loss puts it on the front."""
    def snap(f: sympy.Float) -> sympy.Expr:
        v = float(f)
        if abs(v) < 10.0 ** -(digits + 1):
            return sympy.Integer(0)
        r = float(f"{v:.{digits}g}")
        return sympy.Integer(int(r)) if r == int(r) else sympy.Float(r)
    return _distribute(sympy.expand(expr)).replace(lambda e: isinstance(e, sympy.Float), snap)


SNAP_DIGITS = (1, 2, 3)


def build_front(family: Family, data: RegressionData, equations: Sequence[Equation]
                ) -> tuple[list[Member], list[Rejected]]:
    """Check, constrain, compile and score every equation (and its constant-snapped variants);
    return (Pareto front, rejections)."""
    names = tuple(family.symbol_names or ())
    members: list[Member] = []
    rejected: list[Rejected] = []
    parsed: list[tuple[Equation, sympy.Expr, list[str]]] = []
    gradient = data.target == "drift_gradient"
    for eq in equations:
        try:
            raw = parse_expression(eq.text, data.names)
        except ExpressionError as exc:
            rejected.append(Rejected(eq.text, f"backend expression does not parse: {exc}"))
            continue
        parsed.append((eq, *_standardised_back(raw, data)))
        if gradient:  # each variant would cost an integration; fronts of gradients stay as fitted
            continue
        seen = {str(raw)}
        for d in SNAP_DIGITS:
            variant = snapped(raw, d)
            if str(variant) in seen or not variant.free_symbols:
                continue
            seen.add(str(variant))
            expr, notes = _standardised_back(variant, data)
            parsed.append((eq, expr, notes + [f"constants snapped to {d} significant digit(s)"]))
    integrals = integrate_many([str(e) for _, e, _ in parsed], data.names) if gradient else []
    for i, (eq, expr, notes) in enumerate(parsed):
        g_fn = None
        try:
            if gradient:
                if not integrals[i]["ok"]:
                    raise ConstraintError(integrals[i]["reason"])
                g_fn = compile_expression(str(expr), data.names)
                expr = parse_expression(integrals[i]["expr"], names)
                notes = notes + ["fitted d drift/dr to the teacher's gradient; drift = "
                                 "∫ from 1 to r of the fit (zero at r = 1 by construction)"]
            if data.fits_drift:
                c = zero_at_identity(expr)
                expr, notes = c.expr, notes + [c.note]
            text = str(expr)
            fn = compile_expression(text, names)  # the exact text a candidate will store
        except (ConstraintError, ExpressionError) as exc:
            rejected.append(Rejected(eq.text, str(exc)))
            continue
        value_loss = held_out_mse(fn, data, data.test_drift) if data.test_drift is not None else None
        loss = held_out_mse(g_fn, data) if g_fn is not None else held_out_mse(fn, data)
        if not math.isfinite(loss) or (value_loss is not None and not math.isfinite(value_loss)):
            rejected.append(Rejected(eq.text, f"{text} is not finite on the held-out data"))
            continue
        members.append(Member(text, complexity(expr), loss, eq.text, eq.complexity, eq.loss, notes,
                              value_loss=value_loss if gradient else None))
    return pareto(members), rejected


def pareto(members: list[Member]) -> list[Member]:
    """Non-dominated members (complexity up, loss strictly down), with PySR's score filled in."""
    front: list[Member] = []
    seen: set[str] = set()
    for m in sorted(members, key=lambda m: (m.complexity, m.loss)):
        if m.expression in seen:
            continue
        if not front or m.loss < front[-1].loss:
            front.append(m)
            seen.add(m.expression)
    for prev, cur in zip(front, front[1:]):
        drop = math.log(max(prev.loss, LOSS_FLOOR)) - math.log(max(cur.loss, LOSS_FLOOR))
        cur.score = drop / max(cur.complexity - prev.complexity, 1)
    return front


def select(front: list[Member]) -> dict[str, Member]:
    """{'best_loss': ..., 'best_score': ...} (empty if the front is empty)."""
    if not front:
        return {}
    best_loss = min(front, key=lambda m: (m.loss, m.complexity))
    near = [m for m in front if m.loss <= 1.5 * max(best_loss.loss, LOSS_FLOOR)]
    best_score = max(near, key=lambda m: (m.score, -m.complexity))
    return {"best_loss": best_loss, "best_score": best_score}


def front_table(front: list[Member]) -> list[dict]:
    return [m.to_json() for m in front]


def summary_loss(front: list[Member]) -> float:
    return float(np.min([m.loss for m in front])) if front else math.inf
