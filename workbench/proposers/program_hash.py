"""Normalised program identity: two programs that differ only in names of the top-level function,
comments, docstrings or formatting hash the same, so the archive never evaluates them twice."""

from __future__ import annotations

import ast
import hashlib


class _Normalise(ast.NodeTransformer):
    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.returns = None
        for a in node.args.args:
            a.annotation = None
        if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) \
                and isinstance(node.body[0].value.value, str) and len(node.body) > 1:
            node.body = node.body[1:]
        return node


def program_hash(source: str) -> str:
    """sha256 of `ast.dump` of the parsed, normalised tree (falls back to the raw text)."""
    try:
        tree = _Normalise().visit(ast.parse(source))
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        if funcs:
            funcs[-1].name = "candidate"
        text = ast.dump(tree, annotate_fields=False, include_attributes=False)
    except SyntaxError:
        text = source.strip()
    return hashlib.sha256(text.encode()).hexdigest()[:16]
