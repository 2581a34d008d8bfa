"""A report built from small real runs: real PPO evaluations recorded in real run stores."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from evaluators.envs import get_env_config
from evaluators.families import get_family
from sandbox.expressions import compile_expression
from evaluators.families import Candidate
from workbench.config import build_config
from workbench.drift_figure import ADVANTAGES, candidate_drift, drift_curves
from workbench.params_io import save_params
from workbench.report import run_report
from workbench.evaluate import record_result, score_candidate
from workbench.runs import create_run

ROOT = Path(__file__).resolve().parents[1]


def _small_run(study: Path, name: str, expression: str | None) -> Path:
    config = build_config({"name": name, "family": "lpo", "method": "symbolic",
                           "envs": ["cartpole"], "test_envs": ["acrobot"], "seeds": 2})
    store = create_run(config, study / name)
    fam = get_family("lpo")
    train = [get_env_config("cartpole").scaled(total_timesteps=4096)]
    test = [get_env_config("acrobot").scaled(total_timesteps=4096)]
    warm = store.add_candidate(method="user", kind="warm_start", label="PPO",
                               source="def ppo_clip(ratio, advantage, epsilon): ...")
    record_result(store, warm, score_candidate(fam, fam.warm_start(), {}, train, test, 2, 0), 2, 0,
                  {e.key: e.steps_per_run for e in train + test})
    if expression:
        cid = store.add_candidate(method="symbolic", kind="symbolic", source=expression, parents=[warm])
        cand = Candidate("symbolic", fn=compile_expression(expression, fam.symbol_names))
        record_result(store, cid, score_candidate(fam, cand, {}, train, test, 2, 0), 2, 0,
                      {e.key: e.steps_per_run for e in train + test})
    store.log_metrics(0, {"best_fitness": store.best_candidates(1)[0].fitness})
    store.set_status("finished")
    store.close()
    return study / name


def test_run_and_study_reports_from_real_runs(tmp_path):
    run_a = _small_run(tmp_path, "a", None)
    _small_run(tmp_path, "b", "relu((r - 1) * A - 0.2 * Abs(A))")
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "report", str(run_a)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    md = (run_a / "report" / "report.md").read_text()
    assert "| lpo | symbolic | finished |" in md and "cartpole" in md and "acrobot" in md
    assert (run_a / "report" / "fitness.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_a / "report" / "returns.png").stat().st_size > 5_000
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "report", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    study = (tmp_path / "report" / "report.md").read_text()
    assert "## lpo" in study and study.count("| symbolic | [") == 2 and "OOD return" in study
    assert (tmp_path / "report" / "comparison.png").exists()


def test_report_of_an_empty_directory_says_so(tmp_path):
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "report", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "holds no runs" in out.stdout


def test_lpo_report_draws_the_best_candidates_drift_against_ppo(tmp_path):
    config = build_config({"name": "d", "family": "lpo", "method": "es", "envs": ["cartpole"]})
    store = create_run(config, tmp_path / "d")
    lpo = get_family("lpo")
    start = lpo.es_start(jax.random.PRNGKey(0), 8, "zero_output")  # exactly PPO
    moved = {**start, "w2": start["w2"] + 0.5}
    rows = {}
    for name, params, fitness in (("start", start, 0.4), ("moved", moved, 0.6)):
        path = save_params(tmp_path / "d" / "params" / f"{name}.npz", params, "lpo", 8)
        cid = store.add_candidate(method="es", kind="network", label=name, hsize=8,
                                  params_path=str(path.relative_to(tmp_path / "d")))
        store.finish_candidate(cid, "ok", fitness=fitness)
        rows[name] = store.candidate(cid)
    expr = store.add_candidate(method="symbolic", kind="symbolic", source="relu((r - 1) * A - 0.2 * Abs(A))")
    rows["expr"] = store.candidate(expr)
    store.set_status("finished")
    store.close()

    curves = {k: drift_curves(candidate_drift(tmp_path / "d", row)) for k, row in rows.items()}
    for a in ADVANTAGES:
        np.testing.assert_array_equal(curves["start"]["candidate"][a], curves["start"]["PPO clip"][a])
        np.testing.assert_allclose(curves["expr"]["candidate"][a], curves["expr"]["PPO clip"][a], atol=1e-6)
        assert np.abs(curves["moved"]["candidate"][a] - curves["moved"]["PPO clip"][a]).max() > 1e-2

    md = run_report(tmp_path / "d").read_text()
    assert "Best candidate: #2" in md and "![drift](drift.png)" in md
    assert (tmp_path / "d" / "report" / "drift.png").read_bytes()[:4] == b"\x89PNG"
