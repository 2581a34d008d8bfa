"""Which ES strategy names exist: ours, or any evosax strategy.

Apart from `methods/evosax_strategy.py` so that config validation can check a name without
importing JAX (evosax is imported only when a name other than ours is given).
"""

from __future__ import annotations

from workbench.errors import WorkbenchError

OWN_STRATEGY = "open_es"  # the original's OpenAI-ES, implemented in methods/es.py


class UnknownStrategyError(WorkbenchError, ValueError):
    pass


def evosax_names() -> list[str]:
    from evosax.algorithms import algorithms  # optional heavy import, only for evosax names

    return sorted(algorithms)


def lookup_evosax(name: str) -> type:
    """The evosax strategy class `name` names (case-insensitive)."""
    from evosax.algorithms import algorithms

    by_lower = {k.lower(): v for k, v in algorithms.items()}
    cls = algorithms.get(name) or by_lower.get(name.lower())
    if cls is None:
        raise UnknownStrategyError(
            f"es.strategy: unknown strategy {name!r}; use {OWN_STRATEGY!r} (the original's OpenAI-ES) "
            f"or an evosax name: {', '.join(evosax_names())}")
    return cls


def check_strategy_name(name: str) -> str:
    if name != OWN_STRATEGY:
        lookup_evosax(name)
    return name
