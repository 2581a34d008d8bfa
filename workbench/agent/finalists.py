"""Held-out re-scoring of a discovery run's finalists.

The search ranks programs by their fitness on the search seeds, so the best of many is biased
upwards (winner's curse). When the search ends, the `llm.final_top_k` best programs are trained
again on seeds drawn from `eval_seed`, never used during the search; the report ranks and shows a
discovery run by these held-out scores. Each finalist is re-scored once: a resumed or re-run
finish only scores what is missing.
"""

from __future__ import annotations

from concurrent.futures import as_completed
from typing import Any, Callable

from workbench.agent.scoring import record_result, sandbox_job
from workbench.store import RunStore

HELDOUT = "heldout"  # candidate info key: {"fitness", "test_fitness", "seed", "seeds", "outcome"}


def finalists(store: RunStore, k: int) -> list[Any]:
    """The k best programs by search fitness (ok, scored, with source), plus the warm start.

    The warm start is re-scored on the same held-out seeds as the reference: did the search beat
    where it started?
    """
    rows = [c for c in store.candidates() if c.outcome == "ok" and c.fitness is not None
            and c.kind in ("code", "warm_start", "symbolic") and c.source]
    top = sorted(rows, key=lambda c: (-c.fitness, c.id))[:k]
    chosen = {c.id for c in top}
    start = [c for c in rows if c.method == "warm_start" and c.id not in chosen]
    return top + start[:1] if k > 0 else []


def score_finalists(config: Any, store: RunStore, pool: Any,
                    progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Re-score the finalists on held-out seeds in the sandbox; returns one record per finalist.

    The missing re-scores are all submitted at once, so up to the executor's concurrency train
    together; each is recorded as it arrives, here, in the store's own thread."""
    chosen = finalists(store, config.llm.final_top_k)
    records = {row.id: {"id": row.id, **row.info[HELDOUT]} for row in chosen if HELDOUT in row.info}
    pending = {}
    for row in chosen:
        if row.id in records:
            continue
        store.emit("heldout", {"id": row.id, "seed": config.eval_seed})
        job = sandbox_job(config, row.source, config.eval_seed,
                          kind="symbolic" if row.kind == "symbolic" else "code",
                          label=f"held-out re-score of #{row.id}")
        pending[pool.submit(job, config.sandbox.time_limit_s)] = row.id
    done = len(records)
    for future in as_completed(pending):
        cid, r = pending[future], future.result()
        record_result(store, config, cid, r, config.eval_seed)
        record = {"fitness": r.fitness, "test_fitness": r.test_fitness, "seed": config.eval_seed,
                  "seeds": config.seeds, "outcome": r.outcome, "reason": r.reason,
                  "isolation": r.isolation}
        store.merge_info(cid, {HELDOUT: record})  # the columns keep the search's result
        records[cid] = {"id": cid, **record}
        done += 1
        if progress:
            progress(done, len(chosen))
    return [records[row.id] for row in chosen]
