"""Which accelerator each scorer worker gets, decided without importing JAX in the parent.

A worker inherits the machine's platform: on a GPU machine its scorer trains on a GPU, on a CPU
machine nothing changes.  Each scorer sees one device (`CUDA_VISIBLE_DEVICES` names it), never
preallocates the whole GPU (XLA's default is 75 % at the first allocation), and when several
scorers share one GPU each is capped at its share of the memory.  Counting device nodes rather
than asking JAX keeps the parent from opening a CUDA context of its own just to count.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

NVIDIA_NODE = re.compile(r"nvidia(\d+)$")
MEMORY_HEADROOM = 0.9  # of each GPU, shared by the scorers placed on it
# candidates in flight on a CPU machine: 2 scored 1.24x the candidates per hour of 1 on 2 cores
# (bench/discovery_throughput.py, bench/results/discovery_throughput-20261203-173149.json): one
# candidate's XLA compile leaves the other core idle that the second one fills
CPU_CONCURRENCY = 2


@dataclass(frozen=True)
class Slot:
    """One place a scorer can run: a GPU (by its id as the driver counts them) or the CPU."""

    device: str | None       # "0", "1", ... or None for the CPU
    memory_fraction: float   # of that GPU; 1.0 on the CPU (unused there)

    def env(self) -> dict[str, str]:
        """The environment that pins a scorer to this slot."""
        if self.device is None:
            return {}
        return {"CUDA_VISIBLE_DEVICES": self.device,
                "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                "XLA_PYTHON_CLIENT_MEM_FRACTION": f"{self.memory_fraction:.3f}"}


def visible_gpus(environ: Mapping[str, str] | None = None, dev: Path = Path("/dev")) -> list[str]:
    """The GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else the device nodes.

    JAX_PLATFORMS=cpu in the parent's environment means the user asked for the CPU: no GPUs."""
    environ = os.environ if environ is None else environ
    platforms = environ.get("JAX_PLATFORMS", "")
    if platforms and not any(p in platforms.split(",") for p in ("cuda", "gpu")):
        return []
    named = environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return [d.strip() for d in named.split(",") if d.strip() and d.strip() != "-1"]
    try:
        ids = [int(m.group(1)) for p in dev.iterdir() if (m := NVIDIA_NODE.match(p.name))]
    except OSError:
        return []
    return [str(i) for i in sorted(ids)]


def scorer_slots(concurrency: int, gpus: list[str]) -> list[Slot]:
    """`concurrency` slots spread over the GPUs (round robin), or CPU slots where there are none."""
    if not gpus:
        return [Slot(None, 1.0) for _ in range(concurrency)]
    per_gpu = math.ceil(concurrency / len(gpus))
    fraction = MEMORY_HEADROOM / per_gpu
    return [Slot(gpus[i % len(gpus)], fraction) for i in range(concurrency)]


def default_concurrency(gpus: list[str], cores: int | None = None) -> int:
    """One scorer per GPU on a GPU machine; on the CPU, CPU_CONCURRENCY where the cores allow."""
    if gpus:
        return len(gpus)
    return max(1, min(CPU_CONCURRENCY, cores or os.cpu_count() or 1))
