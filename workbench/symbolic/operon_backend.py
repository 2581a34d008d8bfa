"""The offline backend: pyoperon (C++ genetic programming with least-squares constants, from PyPI).

Multi-objective (R² and length), so one fit returns a whole Pareto front; offspring selection
('os' generator) recovered PPO's clip drift far more often than the basic generator in our trials.  `warm_start` makes each
fit start from the previous fit's population, which is how PySR's `warm_start=True` epochs behave.
The population lives in memory only (operon individuals cannot be pickled), so a resumed run keeps
its epoch counter and stored fronts but restarts the population.
"""

from __future__ import annotations

import numpy as np

from .backend_base import Equation, SearchSettings

# PySR operator name -> operon symbols; neg is covered by sub, relu by max with a constant.
# pyoperon 0.6.2's `fmax` node evaluates (and prints) as min and `fmin` as max; the printed text
# matches the evaluation (tests/test_symbolic.py checks), so max and min always come as a pair.
_OPERON = {"+": "add", "-": "sub", "*": "mul", "/": "div", "max": "fmax,fmin", "min": "fmax,fmin",
           "square": "square", "tanh": "tanh", "abs": "abs", "exp": "exp", "neg": "sub",
           "relu": "fmax,fmin"}
COEFFICIENT_DIGITS = 12


def operon_symbols(operators: tuple[str, ...]) -> str:
    names = sorted({n for o in operators for n in _OPERON[o].split(",")})
    return ",".join(names + ["constant", "variable"])


class OperonBackend:
    name = "operon"

    def __init__(self, settings: SearchSettings):
        self.settings = settings
        self._model = None

    def _make(self, seed: int):
        from pyoperon.sklearn import SymbolicRegressor

        s = self.settings
        return SymbolicRegressor(
            allowed_symbols=operon_symbols(s.operators), objectives=["r2", "length"],
            max_length=s.maxsize, max_depth=s.maxdepth, population_size=s.population_size,
            generations=s.generations, max_evaluations=10**12, n_threads=s.threads,
            max_time=int(s.time_limit_s) if s.time_limit_s else None, optimizer_iterations=1,
            offspring_generator="os",
            random_state=seed, warm_start=True)

    def fit(self, X: np.ndarray, y: np.ndarray, names: tuple[str, ...], seed: int) -> list[Equation]:
        import pyoperon as op

        if self._model is None:
            self._model = self._make(seed)
        else:
            self._model.set_params(random_state=seed)
        self._model.fit(np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64))
        # operon calls the columns X1..Xn; give them the family's symbol names
        mapping = {h: names[int(v[1:]) - 1] for h, v in self._model.variables_.items()}
        return [Equation(op.InfixFormatter.Format(s["tree"], mapping, COEFFICIENT_DIGITS),
                         int(s["length"]), float(s["mean_squared_error"]))
                for s in self._model.pareto_front_]
