"""The offline proposer: genetic programming on the parents' Python ASTs.

No LLM is involved and none is pretended: a child is a parent program with one edit — a constant
perturbed, an arithmetic operator swapped, a jax.numpy function swapped for another of the same
arity, a sub-expression wrapped in a function or scaled by a new constant, or a sub-expression
replaced by one taken from a second parent (crossover).  Every child keeps the family's signature
and must pass the static screen; children identical (by normalised AST) to a known program are
re-drawn.
"""

from __future__ import annotations

import ast
import copy
import math
import random
from typing import Callable, Sequence

from sandbox.checks import ProgramError, screen_source

from . import Proposal
from .program_hash import program_hash

UNARY = [("jnp", "tanh"), ("jnp", "abs"), ("jnp", "square"), ("jax.nn", "relu"),
         ("jax.nn", "softplus"), ("jax.nn", "sigmoid"), ("jnp", "sin"), ("jnp", "log1p"),
         ("jnp", "sqrt"), ("jnp", "exp")]
BINARY = [("jnp", "maximum"), ("jnp", "minimum")]
BINOPS = [ast.Add, ast.Sub, ast.Mult, ast.Div]
OPERATORS = ("constant", "binop", "function", "wrap", "scale", "crossover")


def _func_name(call: ast.Call) -> tuple[str, str] | None:
    f = call.func
    if isinstance(f, ast.Attribute):
        if isinstance(f.value, ast.Name):
            return f.value.id, f.attr
        if isinstance(f.value, ast.Attribute) and isinstance(f.value.value, ast.Name):
            return f"{f.value.value.id}.{f.value.attr}", f.attr
    return None


def _make_func(module: str, name: str) -> ast.expr:
    parts = module.split(".")
    node: ast.expr = ast.Name(parts[0], ast.Load())
    for p in parts[1:]:
        node = ast.Attribute(node, p, ast.Load())
    return ast.Attribute(node, name, ast.Load())


def _candidate_fn(tree: ast.Module) -> ast.FunctionDef:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef)][-1]


def _expressions(fn: ast.FunctionDef) -> list[tuple[ast.AST, str, ast.expr]]:
    """(parent, field, node) for every replaceable expression in the function body."""
    out = []
    for parent in ast.walk(fn):
        if isinstance(parent, (ast.arguments, ast.arg)):
            continue
        for fld, value in ast.iter_fields(parent):
            if isinstance(value, ast.expr) and not isinstance(value, ast.Attribute) \
                    and not (isinstance(parent, ast.Call) and fld == "func") \
                    and not isinstance(getattr(value, "ctx", None), ast.Store):
                out.append((parent, fld, value))
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    if isinstance(v, ast.expr) and not isinstance(getattr(v, "ctx", None), ast.Store) \
                            and not isinstance(v, ast.Attribute):
                        out.append((parent, f"{fld}[{i}]", v))
    return out


def _replace(parent: ast.AST, fld: str, new: ast.expr) -> None:
    if "[" in fld:
        name, idx = fld[:-1].split("[")
        getattr(parent, name)[int(idx)] = new
    else:
        setattr(parent, fld, new)


class MutationProposer:
    """Proposes children of archive programs.  Deterministic given `seed` and the call sequence."""

    def __init__(self, signature: Sequence[str], seed: int = 0, max_tries: int = 50):
        self.signature = tuple(signature)
        self.rng = random.Random(seed)
        self.max_tries = max_tries

    # -- single edits ---------------------------------------------------------------------
    def _constant(self, fn: ast.FunctionDef, _: ast.FunctionDef | None) -> bool:
        consts = [n for n in ast.walk(fn) if isinstance(n, ast.Constant)
                  and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)]
        if not consts:
            return False
        c = self.rng.choice(consts)
        v = float(c.value)
        if v == 0.0 or self.rng.random() < 0.3:
            v = v + self.rng.gauss(0.0, 0.3)
        else:
            v = v * math.exp(self.rng.gauss(0.0, 0.35))
        c.value = round(v, 4)
        return True

    def _binop(self, fn: ast.FunctionDef, _: ast.FunctionDef | None) -> bool:
        ops = [n for n in ast.walk(fn) if isinstance(n, ast.BinOp) and type(n.op) in BINOPS]
        if not ops:
            return False
        node = self.rng.choice(ops)
        node.op = self.rng.choice([o for o in BINOPS if o is not type(node.op)])()
        return True

    def _function(self, fn: ast.FunctionDef, _: ast.FunctionDef | None) -> bool:
        calls = []
        for n in ast.walk(fn):
            if isinstance(n, ast.Call) and _func_name(n) is not None:
                name = _func_name(n)
                if name in UNARY and len(n.args) == 1:
                    calls.append((n, UNARY))
                elif name in BINARY and len(n.args) == 2:
                    calls.append((n, BINARY))
        if not calls:
            return False
        node, vocab = self.rng.choice(calls)
        new = self.rng.choice([v for v in vocab if v != _func_name(node)])
        node.func = _make_func(*new)
        return True

    def _wrap(self, fn: ast.FunctionDef, _: ast.FunctionDef | None) -> bool:
        spots = _expressions(fn)
        if not spots:
            return False
        parent, fld, node = self.rng.choice(spots)
        _replace(parent, fld, ast.Call(_make_func(*self.rng.choice(UNARY)), [node], []))
        return True

    def _scale(self, fn: ast.FunctionDef, _: ast.FunctionDef | None) -> bool:
        spots = [s for s in _expressions(fn) if not isinstance(s[2], ast.Constant)]
        if not spots:
            return False
        parent, fld, node = self.rng.choice(spots)
        c = ast.Constant(round(math.exp(self.rng.gauss(0.0, 0.5)), 3))
        _replace(parent, fld, ast.BinOp(c, ast.Mult(), node))
        return True

    def _crossover(self, fn: ast.FunctionDef, other: ast.FunctionDef | None) -> bool:
        if other is None:
            return False
        mine = [s for s in _expressions(fn) if not isinstance(s[2], ast.Constant)]
        donor = [s[2] for s in _expressions(other) if isinstance(s[2], (ast.BinOp, ast.Call))]
        if not mine or not donor:
            return False
        parent, fld, _node = self.rng.choice(mine)
        _replace(parent, fld, copy.deepcopy(self.rng.choice(donor)))
        return True

    def mutate(self, source: str, other: str | None = None, operator: str | None = None) -> tuple[str, str]:
        """One child of `source` (and `other` for crossover); returns (code, operator)."""
        for _ in range(self.max_tries):
            op = operator or self.rng.choice(OPERATORS if other else OPERATORS[:-1])
            tree = ast.parse(source)
            fn = _candidate_fn(tree)
            other_fn = _candidate_fn(ast.parse(other)) if other else None
            edit: Callable[[ast.FunctionDef, ast.FunctionDef | None], bool] = getattr(self, f"_{op}")
            if not edit(fn, other_fn):
                continue
            code = ast.unparse(ast.fix_missing_locations(tree))
            try:
                screen_source(code, self.signature)
            except ProgramError:
                continue
            return code + "\n", op
        return source, "none"

    def propose(self, parents: Sequence[tuple[int, str]], known_hashes: set[str]) -> Proposal:
        """A child of the first parent (crossover with the second when given), not in `known_hashes`."""
        pid, psrc = parents[0]
        other = parents[1] if len(parents) > 1 else None
        for _ in range(self.max_tries):
            use_other = other is not None and self.rng.random() < 0.3
            code, op = self.mutate(psrc, other[1] if use_other else None,
                                   "crossover" if use_other else None)
            if op == "none" or program_hash(code) in known_hashes:
                continue
            ids = [pid] + ([other[0]] if use_other else [])
            return Proposal(name=f"{op}-of-{pid}", code=code, parents=ids, operator=op,
                            thought=f"mutation proposer: {op} edit of candidate {pid}"
                                    + (f" with material from {other[0]}" if use_other else ""))
        return Proposal(name="exhausted", code=None, outcome="no_code", parents=[pid],
                        thought="no new program found within the retry budget")


def select_parents(archive: Sequence[tuple[int, str, float, int]], rng: random.Random, k: int = 2,
                   top: int = 8, lineage_cap: int = 3) -> list[tuple[int, str]]:
    """Rank-weighted parent sampling from the top programs, at most `lineage_cap` per lineage.

    `archive` holds (id, source, fitness, lineage_root).  The cap keeps one early lucky lineage
    from filling the whole pool (a simple diversity rule).
    """
    ranked = sorted(archive, key=lambda x: -x[2])
    pool, per_root = [], {}
    for item in ranked:
        if per_root.get(item[3], 0) < lineage_cap:
            pool.append(item)
            per_root[item[3]] = per_root.get(item[3], 0) + 1
        if len(pool) >= top:
            break
    weights = [1.0 / (i + 1) for i in range(len(pool))]
    chosen = []
    for _ in range(min(k, len(pool))):
        item = rng.choices(pool, weights=weights)[0]
        chosen.append((item[0], item[1]))
    return chosen
