"""The embedded default: up to `concurrency` candidates at once in jailed workers on this machine."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sandbox.executors.base import Executor, PoolSettings
from sandbox.pool import SandboxPool


class LocalExecutor(Executor):
    """A thread per job in flight, each waiting on its own tracer and scorer processes.

    The threads only wait on pipes; the work is in the worker processes, one accelerator slot
    each, so `concurrency` jobs train at once."""

    def __init__(self, settings: PoolSettings, concurrency: int = 1):
        self.concurrency = max(1, int(concurrency))
        self.pool = SandboxPool(**settings.pool_kwargs(self.concurrency))
        self.isolation = self.pool.isolation
        self._threads = ThreadPoolExecutor(max_workers=self.concurrency,
                                           thread_name_prefix="wb-eval")

    def submit(self, job: dict[str, Any], time_limit_s: float | None = None) -> "Future[Any]":
        return self._threads.submit(self.pool.evaluate, job, time_limit_s)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self.pool.close()
