"""Pipeline: steps run in order, unavailable methods are skipped, finished steps are not redone."""

from workbench.methods import pipeline
from workbench.config import build_config
from workbench.runs import create_run, execute


def test_pipeline_skips_missing_and_runs_llm(tmp_path, monkeypatch):
    import workbench.methods as methods
    monkeypatch.setitem(methods.METHODS, "es", "workbench.methods.not_there_es")
    cfg = build_config({"family": "lpo", "method": "pipeline", "pipeline": ["es", "llm"],
                        "envs": ["cartpole"], "seeds": 1, "timesteps": 4096, "num_envs": 4,
                        "llm": {"proposer": "mutation", "generations": 2}, "sandbox": {"time_limit_s": 60}})
    store = create_run(cfg, tmp_path / "run")
    assert execute(cfg, store) == "finished"
    kinds = [e["payload"] for e in store.events() if e["kind"] == "pipeline"]
    assert "skipped" in kinds[0] and kinds[-1] == {"step": "llm", "finished": True}
    assert len(store.candidates()) == 2
    assert store.get_state(pipeline.DONE_KEY) == ["0:es", "1:llm"]
    execute(cfg, store)  # nothing left to do: no new candidates
    assert len(store.candidates()) == 2
