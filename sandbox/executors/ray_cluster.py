"""Candidates as Ray work: each runs the same jailed workers on the node Ray picks.

`address=None` starts a local Ray (this machine only); `address="HOST:PORT"` (or "auto") joins a
cluster made with `ray start --head` and `ray start --address=...`.  Every node needs this package
installed (`pip install -e '.[ray]'`).  One actor per slot keeps a `SandboxPool` warm on its node,
so a candidate pays no worker boot; an actor asks for one GPU where the cluster has GPUs.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sandbox.executors.base import Executor, PoolSettings

try:
    import ray
except ImportError as exc:  # an optional extra; the error says how to get it
    raise ImportError("executor.kind: ray needs Ray: pip install -e '.[ray]' "
                      "(or use executor.kind: local)") from exc


class _PoolActor:
    """Holds one sandbox pool on its node; evaluates one job at a time."""

    def __init__(self, settings: PoolSettings):
        from sandbox.pool import SandboxPool

        self.pool = SandboxPool(**settings.pool_kwargs(1))

    def isolation(self) -> str:
        return self.pool.isolation

    def evaluate(self, job: dict[str, Any], time_limit_s: float | None) -> Any:
        return self.pool.evaluate(job, time_limit_s)

    def close(self) -> None:
        self.pool.close()


class RayExecutor(Executor):
    """`concurrency` actors, each a warm pool; a job goes to the next free one."""

    def __init__(self, settings: PoolSettings, concurrency: int = 1, address: str | None = None,
                 num_cpus_per_job: float = 1.0):
        self.concurrency = max(1, int(concurrency))
        self._started_ray = not ray.is_initialized()
        if self._started_ray:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        actor = ray.remote(num_cpus=num_cpus_per_job, num_gpus=gpus)(_PoolActor)
        self._actors = [actor.remote(settings) for _ in range(self.concurrency)]
        self.isolation = ray.get(self._actors[0].isolation.remote())
        self._free: "queue.Queue[Any]" = queue.Queue()
        for a in self._actors:
            self._free.put(a)
        self._threads = ThreadPoolExecutor(max_workers=self.concurrency,
                                           thread_name_prefix="wb-ray")

    def _run(self, job: dict[str, Any], time_limit_s: float | None) -> Any:
        actor = self._free.get()
        try:
            return ray.get(actor.evaluate.remote(job, time_limit_s))
        finally:
            self._free.put(actor)

    def submit(self, job: dict[str, Any], time_limit_s: float | None = None) -> "Future[Any]":
        return self._threads.submit(self._run, job, time_limit_s)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        for a in self._actors:
            try:
                ray.get(a.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor has nothing left to close
                pass
            ray.kill(a)
        self._actors = []
        if self._started_ray:
            ray.shutdown()
