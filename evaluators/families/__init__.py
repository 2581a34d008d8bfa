"""The family registry: adding a family is one module plus one line here."""

from __future__ import annotations

from .base import (Algorithm, Candidate, CandidateError, Family, SymbolicDefaults, TeacherInputs,
                   ppo_clip_drift)
from .lpo import LPO
from .no_features import NO_FEATURES
from .open import OPEN
from .open_ff import OPEN_FF

FAMILIES: dict[str, Family] = {f.name: f for f in (LPO, OPEN, OPEN_FF, NO_FEATURES)}


class UnknownFamilyError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise UnknownFamilyError(
            f"unknown family {name!r}; choose one of: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


__all__ = ["Algorithm", "Candidate", "CandidateError", "Family", "FAMILIES", "get_family",
           "ppo_clip_drift", "SymbolicDefaults", "TeacherInputs", "UnknownFamilyError"]
