"""Proposal sources the agent graph draws from: the archive-driven mutation search and the LLM.

Both read the archive from the run store (`workbench.proposers.archive`), so a resumed run proposes
from exactly what was recorded.
"""

from __future__ import annotations

import random
from typing import Any

from evaluators.families import Family
from workbench.proposers import Proposal
from workbench.proposers.archive import archive, known_hashes, warm_start_source
from workbench.proposers.llm import LLMSource
from workbench.proposers.mutation import MutationProposer, select_parents
from workbench.proposers.program_hash import program_hash
from workbench.store import RunStore


class MutationSource:
    """Offline proposals: one AST edit (or crossover) of rank-sampled archive parents."""

    method = "mutation"

    def __init__(self, family: Family, seed: int, top_k: int):
        self.family = family
        self.seed = seed
        self.top_k = top_k

    def propose(self, store: RunStore, generation: int, inbox: list[str]) -> Proposal:
        del inbox  # a program search has no use for prose
        rng = random.Random(self.seed * 100_003 + generation)  # reproducible across resumes
        arch = archive(store)
        if arch:
            parents = select_parents(arch, rng, k=2, top=self.top_k)
        else:  # nothing scored yet: the warm start, then (while it trains) edits of it
            start = next((c for c in store.candidates() if c.method == "warm_start" and c.source),
                         None)
            if start is None:
                return Proposal(name="warm-start", code=warm_start_source(self.family),
                                thought="the family's warm start", operator="warm_start")
            parents = [(start.id, start.source)]
        proposer = MutationProposer(self.family.code_signature, seed=rng.randrange(2**31))
        return proposer.propose(parents, known_hashes(store))


def make_source(config: Any, family: Family) -> Any:
    """`llm.proposer`: auto → the LLM if a model is configured, else mutation."""
    llm = config.llm
    use_llm = llm.proposer == "llm" or (llm.proposer == "auto" and (llm.model or llm.models))
    if use_llm:
        return LLMSource(config, family)
    return MutationSource(family, config.seed, llm.archive_top_k)


__all__ = ["LLMSource", "MutationSource", "archive", "known_hashes", "make_source", "program_hash",
           "warm_start_source"]
