"""Method registry: how a family is meta-learned.  One module per method, one line here.

Each module exposes `run(config: RunConfig, store: RunStore) -> None`, which starts or resumes
(from what the store already holds) and returns when the run is finished or its budget is spent.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from workbench.errors import WorkbenchError

METHODS: dict[str, str] = {
    "es": "workbench.methods.es",
    "distill": "workbench.methods.distill",
    "symbolic": "workbench.methods.symbolic",
    "llm": "workbench.methods.llm",
    "pipeline": "workbench.methods.pipeline",
}


class MethodUnavailable(WorkbenchError, RuntimeError):
    fix = f"use one of the methods {', '.join(METHODS)}, or an installation that has this one"


def get_method(name: str) -> ModuleType:
    if name not in METHODS:
        raise MethodUnavailable(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    try:
        return importlib.import_module(METHODS[name])
    except ModuleNotFoundError as exc:
        if exc.name == METHODS[name]:
            raise MethodUnavailable(f"method {name!r} is not implemented in this version") from None
        raise
