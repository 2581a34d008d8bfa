"""Method `llm`: LLM-driven program discovery, or its offline twin (mutation) without a model.

`llm.loop: propose` (default) starts or resumes the discovery graph of `workbench.agent.graph`;
`llm.loop: tools` the tool-calling agent of `workbench.agent.tool_loop`, which needs a model.
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from workbench.agent.finalists import finalists, score_finalists
from workbench.agent.graph import run_agent
from workbench.agent.scoring import open_pool
from workbench.agent.tool_loop import run_tool_loop
from workbench.config import ConfigError, RunConfig, tool_mode_problem
from workbench.store import RunStore

from . import get_method


def _progress_printer(config: RunConfig, store: RunStore) -> Any:
    total = config.llm.max_candidates or config.llm.generations
    done = len(store.candidates())  # a resumed run continues its bar
    bar = tqdm(total=max(total, done), initial=done, desc="candidates", unit="cand")

    def progress(row: Any, best: Any) -> None:
        bar.n = row.id
        fit = f"{row.fitness:.3f}" if row.fitness is not None else "-"
        bar.set_postfix_str(f"last={row.outcome}:{fit} best={best.fitness:.3f}" if best else row.outcome)
        bar.refresh()
    return progress


def _tool_step_printer(config: RunConfig) -> Any:
    def progress(step: int, tool: str, result: dict[str, Any]) -> None:
        if "error" in result:
            what = f"error: {str(result['error'])[:120]}"
        elif "new_candidates" in result:
            what = f"{len(result['new_candidates'])} new candidates"
        elif "outcome" in result:
            what = f"candidate {result.get('id')}: {result['outcome']} fitness={result.get('fitness')}"
        else:
            what = "ok"
        tqdm.write(f"[tool step {step}/{config.llm.max_tool_steps}] {tool}: {what}")
    return progress


def run(config: RunConfig, store: RunStore) -> None:
    if config.llm.loop == "tools":
        problem = tool_mode_problem(config.llm)
        if problem:  # configs built without validation (e.g. model_copy) get the same message
            raise ConfigError(problem)
        # the method tools run the other methods: the tool loop gets this package's lookup
        run_tool_loop(config, store, progress=_tool_step_printer(config), methods=get_method)
    else:
        run_agent(config, store, progress=_progress_printer(config, store))
    rescore_finalists(config, store)


def rescore_finalists(config: RunConfig, store: RunStore) -> None:
    """Held-out re-scores of the best programs once the search has ended (see agent.finalists)."""
    if config.llm.final_top_k <= 0:
        return
    todo = [c for c in finalists(store, config.llm.final_top_k) if "heldout" not in c.info]
    if not todo:
        return
    bar = tqdm(total=len(todo), desc="held-out re-scores", unit="cand")
    with open_pool(config, spares=1) as pool:
        records = score_finalists(config, store, pool, progress=lambda i, n: bar.update(1))
    bar.close()
    for r in records:
        fit = "-" if r.get("fitness") is None else f"{r['fitness']:.3f}"
        tqdm.write(f"held-out (seed {r['seed']}, {r['seeds']} seeds): candidate {r['id']} fitness {fit}")
