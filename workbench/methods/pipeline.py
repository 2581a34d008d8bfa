"""Method `pipeline`: run several methods in order on one run store, e.g. [es, distill, symbolic, llm].

Each finished step is recorded in the store, so `workbench resume` skips completed steps and
continues the interrupted one (every method resumes from the store itself).  A method that is not
available in this installation is skipped with an event, not a crash.
"""

from __future__ import annotations

from workbench.config import RunConfig
from workbench.store import RunStore

from . import MethodUnavailable, get_method

DONE_KEY = "pipeline.done"


def run(config: RunConfig, store: RunStore) -> None:
    # the config allows only PIPELINE_STEPS (never 'pipeline' itself) and no empty pipeline
    done = list(store.get_state(DONE_KEY, []) or [])
    for i, step in enumerate(config.pipeline):
        tag = f"{i}:{step}"
        if tag in done:
            continue
        try:
            module = get_method(step)
        except MethodUnavailable as exc:
            store.emit("pipeline", {"step": step, "skipped": str(exc)})
            done.append(tag)
            store.set_state(DONE_KEY, done)
            continue
        store.emit("pipeline", {"step": step, "started": True})
        store.set_state("final_status", None)
        module.run(config.model_copy(update={"method": step}), store)
        if store.get_state("final_status") == "stopped":
            return
        done.append(tag)
        store.set_state(DONE_KEY, done)
        store.emit("pipeline", {"step": step, "finished": True})
    store.set_state("final_status", "finished")
