"""Proposers: where new candidate programs come from (offline mutation, or an LLM)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Proposal:
    """One proposed program; `outcome` is set only when no code could be produced (`no_code`)."""

    name: str
    code: str | None
    thought: str = ""
    parents: list[int] = field(default_factory=list)
    operator: str = ""
    outcome: str | None = None
    usage: dict[str, float] = field(default_factory=dict)
