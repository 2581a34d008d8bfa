"""The executor interface: jobs in, futures of their results out."""

from __future__ import annotations

import abc
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PoolSettings:
    """What every sandbox pool of a run shares, wherever it runs (plain data: Ray ships it)."""

    time_limit_s: float = 600.0
    memory_limit_mb: int = 8192
    cpu_time_limit_s: float | None = None
    isolation: str = "auto"
    compile_cache_dir: str | None = None
    spares: int = 1

    def pool_kwargs(self, concurrency: int) -> dict[str, Any]:
        kwargs = asdict(self)
        if kwargs["compile_cache_dir"] is not None:
            kwargs["compile_cache_dir"] = Path(kwargs["compile_cache_dir"])
        return {**kwargs, "concurrency": concurrency}


class Executor(abc.ABC):
    """Runs up to `concurrency` jobs at once; each job in fresh jailed workers (`SandboxPool`).

    `submit` never blocks on a job and a job's failure is its result, never the future's
    exception: an exception from a future means the executor itself broke."""

    concurrency: int
    isolation: str  # what the workers run under: "full" or "none"

    @abc.abstractmethod
    def submit(self, job: dict[str, Any], time_limit_s: float | None = None) -> "Future[Any]":
        """Start `job` (a worker job dict); the future's result is a `SandboxResult`."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop every worker; pending jobs are cancelled."""

    def evaluate(self, job: dict[str, Any], time_limit_s: float | None = None) -> Any:
        """One job, waited for: the serial callers' way in."""
        return self.submit(job, time_limit_s).result()

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
