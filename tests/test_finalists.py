"""Held-out re-scores of a discovery run's best programs, and the report ranking by them."""

from __future__ import annotations

import math

from workbench.agent.finalists import HELDOUT, finalists, score_finalists
from workbench.candidate_ref import best_candidate
from workbench.agent.scoring import open_pool
from workbench.config import build_config
from workbench.report import summarise
from workbench.runs import create_run

PPO = """import jax
import jax.numpy as jnp

def drift(ratio, advantage, epsilon):
    return jax.nn.relu((ratio - jnp.clip(ratio, 1 - epsilon, 1 + epsilon)) * advantage)
"""


def test_best_programs_are_rescored_once_on_held_out_seeds(tmp_path):
    config = build_config({"family": "lpo", "method": "llm", "envs": ["cartpole"], "seeds": 2,
                           "timesteps": 2048, "num_envs": 4,
                           "llm": {"proposer": "mutation", "final_top_k": 1}})
    store = create_run(config, tmp_path / "run")
    # what a search leaves: scored programs (search-seed fitness), one crash
    best = store.add_candidate(method="mutation", kind="code", label="best", source=PPO)
    store.finish_candidate(best, "ok", fitness=0.9)
    other = store.add_candidate(method="mutation", kind="code", label="other", source=PPO + "\n")
    store.finish_candidate(other, "ok", fitness=0.4)
    bad = store.add_candidate(method="mutation", kind="code", label="bad", source="def drift(")
    store.finish_candidate(bad, "crashed", reason="boom")
    start = store.add_candidate(method="warm_start", kind="code", label="warm start",
                                source=PPO + "\n\n")
    store.finish_candidate(start, "ok", fitness=0.3)
    assert [c.id for c in finalists(store, 3)] == [best, other, start]
    assert [c.id for c in finalists(store, 1)] == [best, start]  # the start: the reference

    with open_pool(config, spares=1) as pool:
        record, ref = score_finalists(config, store, pool)
        assert ref["id"] == start and ref["fitness"] == record["fitness"]  # same program, same seeds
        assert record["id"] == best and record["seed"] == config.eval_seed != config.seed
        assert record["outcome"] == "ok" and math.isfinite(record["fitness"])
        rows = [e for e in store.evaluations(best) if e["seed"] == config.eval_seed]
        assert len(rows) == 1 and abs(rows[0]["normalized"] - record["fitness"]) < 1e-6
        # the search's own columns are untouched; a second call re-scores nothing
        row = store.candidate(best)
        assert row.fitness == 0.9 and row.outcome == "ok" and row.info[HELDOUT] == {
            k: record[k] for k in row.info[HELDOUT]}
        score_finalists(config, store, pool)
    assert len(store.evaluations(best)) == 1 and store.evaluations(other) == []

    chosen = best_candidate(store)  # a tie goes to the earlier candidate
    assert chosen.candidate.id == best and chosen.how.startswith("held-out")
    summary = summarise(store.run_dir)
    assert summary.best.id == best
    assert [e["seed"] for e in summary.best_evals] == [config.eval_seed]
    from rich.console import Console

    from workbench.summary import best_table
    console = Console(record=True, width=160)
    console.print(best_table(store))
    text = console.export_text()
    assert "held-out" in text and f"{record['fitness']:.4f}" in text
