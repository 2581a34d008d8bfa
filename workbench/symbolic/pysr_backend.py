"""PySR with SPEC §6's settings; `pysr` itself is imported only when a PySRBackend is made
(after `pysr_status()` says Julia starts).

Differences from the original, on purpose: no runtime `Pkg.add` (the install must be complete), and
the LPO loss is plain L2 like OPEN-FF's: the zero-drift-at-r=1 rule is enforced afterwards in Python
for every backend (constraints.py), and `grad_loss` fits the gradient to gradient targets directly
(data.py), so the custom Julia losses are not needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend_base import BINARY, UNARY, Equation, SearchSettings


def pysr_kwargs(s: SearchSettings) -> dict[str, Any]:
    """The SPEC §6 table for `s.family` (its `symbolic_defaults`, resolved into `s`)."""
    kw: dict[str, Any] = dict(
        maxsize=s.maxsize, maxdepth=s.maxdepth, niterations=s.iterations,
        binary_operators=[o for o in s.operators if o in BINARY],
        unary_operators=[o for o in s.operators if o in UNARY],
        elementwise_loss="L2DistLoss()", batching=True, batch_size=s.batch_size,
        weight_optimize=0.001, turbo=True, warm_start=True, progress=False, verbosity=0,
        temp_equation_file=True)
    if s.populations is not None:
        kw["populations"] = s.populations
    if s.precision is not None:
        kw["precision"] = s.precision
    if s.crossover_probability is not None:
        kw["crossover_probability"] = s.crossover_probability
    if s.time_limit_s:
        kw["timeout_in_seconds"] = s.time_limit_s
    return kw


class PySRBackend:
    name = "pysr"

    def __init__(self, settings: SearchSettings):
        from pysr import PySRRegressor

        self.settings = settings
        self._model = PySRRegressor(**pysr_kwargs(settings))

    def fit(self, X: np.ndarray, y: np.ndarray, names: tuple[str, ...], seed: int) -> list[Equation]:
        self._model.set_params(random_state=seed)
        self._model.fit(X, y, variable_names=list(names))
        return [Equation(str(row.equation), int(row.complexity), float(row.loss))
                for row in self._model.equations_.itertuples()]
