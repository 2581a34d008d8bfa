"""Studies: a run that fails is recorded with its reason and the study goes on; re-running resumes."""

from pathlib import Path

import yaml

from workbench.report import study_report
from workbench.study import run_study

ROOT = Path(__file__).resolve().parents[1]


def test_failed_run_does_not_sink_the_study(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    study = tmp_path / "study.yaml"
    tiny = ["timesteps=2048", "seeds=1", "num_envs=4", "test_envs=[]"]
    study.write_text(yaml.safe_dump({"name": "t", "runs": [
        {"name": "broken", "config": "configs/cpu/lpo_es.yaml",
         "set": ["family=open", "method=symbolic", "symbolic.backend=operon"]},  # refused at its start
        {"name": "es", "config": "configs/cpu/lpo_es.yaml",
         "set": [*tiny, "es.generations=1", "es.popsize=2", "es.rollouts=1", "es.save_every=1"]}]}))
    events = []
    results = run_study(study, tmp_path / "out", on_run=lambda n, d, what: events.append((n, what)))
    assert results == [("broken", "failed"), ("es", "finished")]
    assert any(n == "broken" and "OPEN is recurrent" in what for n, what in events)
    md = study_report(tmp_path / "out").read_text()
    assert "failed: SymbolicRefused: symbolic distillation of 'open' is not possible" in md
    # re-running skips the finished run and retries the failed one
    again = run_study(study, tmp_path / "out")
    assert again == [("broken", "failed"), ("es", "finished")]
