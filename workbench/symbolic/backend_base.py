"""What every symbolic-regression backend shares: the result type, the resolved search settings and
the interface a backend implements.

Apart from `backends.py` (which chooses a backend) so that the backend modules depend on this one
and `backends.py` depends on them, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from evaluators.families import FAMILIES, Family, SymbolicDefaults

from ..config import SymbolicConfig
from ..errors import WorkbenchError

# The operators a search may use, in PySR's vocabulary (which the operon backend translates).
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
    """A SymbolicConfig resolved for a family: its `symbolic_defaults` where the config is None."""

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
    precision: int | None = None  # PySR float precision (None: PySR's default)
    crossover_probability: float | None = None  # PySR crossover (None: PySR's default)


def search_settings(family: Family | str, cfg: SymbolicConfig) -> SearchSettings:
    """Resolve `cfg` for `family` (a Family or a registered name).  A name outside the registry
    (a stand-in family-like object's) gets the generic `SymbolicDefaults`, since it has no table."""
    if isinstance(family, str):
        name = family
        defaults = FAMILIES[name].symbolic_defaults if name in FAMILIES else SymbolicDefaults()
    else:
        name, defaults = family.name, family.symbolic_defaults
    ops = tuple(cfg.operators) if cfg.operators else defaults.operators
    unknown = [o for o in ops if o not in BINARY + UNARY]
    if unknown:
        raise ValueError(f"symbolic.operators: unknown {', '.join(unknown)}; choose from "
                         f"{', '.join(BINARY + UNARY)}")
    return SearchSettings(
        family=name, maxsize=cfg.maxsize or defaults.maxsize,
        maxdepth=cfg.maxdepth or defaults.maxdepth, operators=ops,
        iterations=cfg.iterations or defaults.iterations,
        populations=cfg.populations or defaults.populations, generations=cfg.generations,
        population_size=cfg.population_size, batch_size=cfg.batch_size, threads=cfg.threads,
        time_limit_s=cfg.time_limit_s, precision=defaults.precision,
        crossover_probability=defaults.crossover_probability)


class Backend(Protocol):
    name: str

    def fit(self, X: np.ndarray, y: np.ndarray, names: tuple[str, ...], seed: int) -> list[Equation]:
        ...
