"""One interface over symbolic-regression backends, and the `auto` choice between them.

A backend fits X -> y and returns its Pareto front as `Equation`s whose text uses the column names
given to it; each `fit` continues the previous one (warm start) on the new data.  PySR (SPEC §6) needs
Julia and its packages already installed (no runtime `Pkg.add`); pyoperon installs from PyPI alone
and is the offline default.  `auto` probes PySR in a subprocess with a timeout, so a missing or
half-installed Julia can neither hang nor crash the run, and says why it chose what it chose.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..config import SymbolicConfig
from ..errors import WorkbenchError

PYSR_PROBE_TIMEOUT_S = 120.0

# SPEC §6's operator sets, in PySR's vocabulary (which the operon backend translates).
SPEC_OPERATORS = {
    "lpo": ("*", "/", "max", "min", "+", "-", "square", "neg", "tanh", "abs"),
    "other": ("+", "*", "-", "/", "max", "min", "exp", "neg", "tanh", "abs", "relu"),
}
BINARY = ("+", "-", "*", "/", "max", "min")
UNARY = ("square", "neg", "tanh", "abs", "exp", "relu")


class BackendUnavailable(WorkbenchError, RuntimeError):
    """The requested backend cannot run here; the message says why and what to use instead."""


@dataclass
class Equation:
    text: str  # infix, over the column names passed to `fit`
    complexity: int  # the backend's own size measure
    loss: float  # the backend's loss on its fit data


@dataclass(frozen=True)
class SearchSettings:
    """A SymbolicConfig resolved for one family (SPEC §6 table where the config says None)."""

    family: str
    maxsize: int
    maxdepth: int
    operators: tuple[str, ...]
    iterations: int  # PySR niterations per fit
    populations: int | None  # PySR populations (None: PySR's default)
    generations: int  # operon generations per fit
    population_size: int  # operon population
    batch_size: int
    threads: int
    time_limit_s: float | None

    @property
    def is_lpo(self) -> bool:
        return self.family == "lpo"


def search_settings(family: str, cfg: SymbolicConfig) -> SearchSettings:
    lpo = family == "lpo"
    ops = tuple(cfg.operators) if cfg.operators else SPEC_OPERATORS["lpo" if lpo else "other"]
    unknown = [o for o in ops if o not in BINARY + UNARY]
    if unknown:
        raise ValueError(f"symbolic.operators: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(BINARY + UNARY)}")
    return SearchSettings(
        family=family, maxsize=cfg.maxsize or (40 if lpo else 60),
        maxdepth=cfg.maxdepth or (8 if lpo else 9), operators=ops,
        iterations=cfg.iterations or (1 if lpo else 10),
        populations=cfg.populations or (None if lpo else 160), generations=cfg.generations,
        population_size=cfg.population_size, batch_size=cfg.batch_size, threads=cfg.threads,
        time_limit_s=cfg.time_limit_s)


class Backend(Protocol):
    name: str

    def fit(self, X: np.ndarray, y: np.ndarray, names: tuple[str, ...], seed: int) -> list[Equation]:
        ...


def pysr_status(timeout_s: float = PYSR_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(usable, why): pysr must import and Julia must start, checked in a child process with a
    timeout and juliapkg offline, so nothing is downloaded and a broken install cannot hang us."""
    if importlib.util.find_spec("pysr") is None:
        return False, "the pysr package is not installed (it also needs a working Julia)"
    env = {**os.environ, "PYTHON_JULIAPKG_OFFLINE": "yes", "JULIA_PKG_OFFLINE": "true"}
    probe = "import pysr\nfrom juliacall import Main as jl\nassert jl.seval('1 + 1') == 2\n"
    try:
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                             text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"pysr imports but Julia did not start within {timeout_s:g} s"
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return False, f"pysr is installed but Julia did not start ({tail[0][:300]})"
    return True, "pysr imports and Julia starts"


def select_backend(requested: str, settings: SearchSettings) -> tuple[Backend, str]:
    """The backend to use and a sentence saying why; BackendUnavailable for an impossible request."""
    from .operon_backend import OperonBackend

    if requested == "operon":
        return OperonBackend(settings), "operon requested in the config (symbolic.backend=operon)"
    ok, why = pysr_status()
    if requested == "pysr":
        if not ok:
            raise BackendUnavailable(f"symbolic.backend=pysr cannot run here: {why}; install PySR "
                                     "with its Julia packages, or set symbolic.backend=operon")
        from .pysr_backend import PySRBackend
        return PySRBackend(settings), f"pysr requested and available ({why})"
    if requested != "auto":
        raise ValueError(f"symbolic.backend: unknown {requested!r}; use auto, pysr or operon")
    if ok:
        from .pysr_backend import PySRBackend
        return PySRBackend(settings), f"auto: PySR, because {why}"
    return OperonBackend(settings), f"auto: operon, because {why}"
