"""Where candidates run: `submit(job) -> Future[SandboxResult]`, in the same jailed workers anywhere.

An executor is one file plus one line in `EXECUTORS` (module path, class name), imported only when
chosen, so the optional Ray is never imported for the embedded default.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from sandbox.executors.base import Executor, PoolSettings

EXECUTORS = {
    "local": ("sandbox.executors.local", "LocalExecutor"),
    "ray": ("sandbox.executors.ray_cluster", "RayExecutor"),
}

__all__ = ["EXECUTORS", "Executor", "PoolSettings", "make_executor"]


def make_executor(kind: str, settings: PoolSettings, **options: Any) -> Executor:
    """The executor `kind` (a key of EXECUTORS) running jobs with `settings`."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
    module, name = EXECUTORS[kind]
    return getattr(import_module(module), name)(settings, **options)
