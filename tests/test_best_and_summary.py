"""The one definition of a run's best candidate, where it shows, and the 80-column final table.

Nothing here trains a candidate: stores are filled by hand, so every test is fast.
"""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from tests.test_tui_fake import WARM, make_run
from workbench.agent.finalists import HELDOUT
from workbench.candidate_ref import best_candidate, resolve_candidate
from workbench.cli import main
from workbench.params_io import load_params, save_npz, save_params
from workbench.run_rows import read_run
from workbench.summary import print_summary

LONG = "a rather long candidate label that never fits in any column at all"
STATS = {"return_mean": 100.0, "return_stderr": 1.0, "normalized": 0.5, "sps": 1.0, "compile_s": 1.0}


def _searched(tmp_path, heldout: bool):
    """A run with three scored programs (search seeds: 2) and, optionally, held-out re-scores of
    two of them (16 seeds) that rank them the other way round."""
    store = make_run(tmp_path / "run", status="finished")
    ids = []
    for i, fit in enumerate((0.9, 0.7, 0.2)):
        cid = store.add_candidate(method="mutation", kind="code", label=f"{LONG} {i}",
                                  source=WARM + "\n" * i)
        store.add_evaluation(cid, "cartpole", "train", STATS, seeds=2, seed=0)
        store.finish_candidate(cid, "ok", fitness=fit, test_fitness=fit / 2)
        ids.append(cid)
    if heldout:
        for cid, fit in ((ids[0], 0.6), (ids[1], 0.8)):
            store.add_evaluation(cid, "cartpole", "train", STATS, seeds=16, seed=1_000_003)
            store.merge_info(cid, {HELDOUT: {"fitness": fit, "test_fitness": fit / 2,
                                             "seed": 1_000_003, "seeds": 16, "outcome": "ok"}})
    return store, ids


@pytest.mark.parametrize("heldout", [False, True])
def test_best_is_held_out_when_finalists_were_rescored_else_search(tmp_path, heldout):
    store, ids = _searched(tmp_path, heldout)
    best = best_candidate(store)
    if heldout:
        assert best.candidate.id == ids[1] and best.fitness == 0.8 and best.how == "held-out, 16 seeds"
    else:
        assert best.candidate.id == ids[0] and best.fitness == 0.9 and best.how == "search, 2 seeds"
    store.close()
    # every display of it agrees: the runs list, `compare best` / `eval --from`, the report
    row = read_run(tmp_path / "run")
    assert row.best == best.fitness and row.best_how == best.how and best.how in row.best_text()
    ref = resolve_candidate(tmp_path / "run", "best")
    assert ref.label.startswith(f"#{best.candidate.id} ") and best.how in ref.label
    assert ref.fields == {"code": best.candidate.source}
    from workbench.report import summarise
    assert summarise(tmp_path / "run").best.id == best.candidate.id


def test_no_ok_candidate_means_no_best(tmp_path):
    store = make_run(tmp_path / "run")
    cid = store.add_candidate(method="mutation", kind="code", source=WARM)
    store.finish_candidate(cid, "crashed", reason="boom")
    assert best_candidate(store) is None
    store.close()
    assert read_run(tmp_path / "run").best_text() == "-"


@pytest.mark.parametrize("heldout", [False, True])
def test_final_table_fits_80_columns_with_whole_headers(tmp_path, heldout):
    store, _ = _searched(tmp_path, heldout)
    console = Console(record=True, width=80, color_system=None)
    print_summary(store, console)
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert "…" not in text, text  # nothing cut by rich: no header (nor cell) is truncated
    headers = ["id", "kind", "label"] + (["held-out", "h-o test", "search"] if heldout
                                         else ["fitness", "meta-test"])
    header_line = next(line for line in lines if "label" in line)
    assert all(h in header_line for h in headers), header_line
    basis = "held-out, 16 seeds" if heldout else "search, 2 seeds"
    assert text.count(basis) >= 2  # the title and the `best:` line both say what it is
    assert "workbench report" in text


def test_npz_writes_are_atomic_and_leave_no_temporary(tmp_path):
    path = save_npz(tmp_path / "ck" / "state.npz", {"a": np.arange(3), "b": np.asarray(2.0)})
    with np.load(path) as data:
        assert data["a"].tolist() == [0, 1, 2] and float(data["b"]) == 2.0
    save_npz(path, {"a": np.arange(5)})  # over an existing file
    with np.load(path) as data:
        assert data.files == ["a"] and data["a"].size == 5
    params = save_params(tmp_path / "p.npz", {"w": {"k": np.ones(2)}}, "lpo", 8)
    assert load_params(params)[1:] == ("lpo", 8)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["p.npz", "state.npz"]


def test_cli_workspace_default_comes_from_the_config(tmp_path, monkeypatch, capsys):
    from workbench.config import RunConfig

    default = RunConfig.model_fields["workspace"].default
    make_run(tmp_path / default / "a-run").close()
    monkeypatch.chdir(tmp_path)
    assert main(["runs"]) == 0
    assert "a-run" in capsys.readouterr().out
