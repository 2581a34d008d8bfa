"""Method `llm`: LLM-driven program discovery, or its offline twin (mutation) without a model.

Starts or resumes the LangGraph agent of `workbench.agent.graph` on the run store.
"""

from __future__ import annotations

from typing import Any

from workbench.config import RunConfig
from workbench.store import RunStore


def _progress_printer(config: RunConfig) -> Any:
    from tqdm import tqdm

    total = config.llm.max_candidates or config.llm.generations
    bar = tqdm(total=total, desc="candidates", unit="cand")

    def progress(row: Any, best: Any) -> None:
        bar.n = row.id
        fit = f"{row.fitness:.3f}" if row.fitness is not None else "-"
        bar.set_postfix_str(f"last={row.outcome}:{fit} best={best.fitness:.3f}" if best else row.outcome)
        bar.refresh()
    return progress


def run(config: RunConfig, store: RunStore) -> None:
    from workbench.agent.graph import run_agent

    run_agent(config, store, progress=_progress_printer(config))
