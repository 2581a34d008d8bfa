import pytest

from workbench.config import ConfigError, build_config, load_config
from workbench.store import RunStore


def test_store_round_trip(tmp_path):
    store = RunStore(tmp_path / "run")
    store.init_run("t", "lpo", "llm", {"family": "lpo"})
    a = store.add_candidate(method="user", kind="code", source="def f(): pass", label="a")
    b = store.add_candidate(method="user", kind="code", source="x", parents=[a], generation=1)
    store.finish_candidate(a, "ok", fitness=0.5, info={"tokens": 3})
    store.finish_candidate(b, "crashed", reason="boom")
    store.add_evaluation(a, "cartpole", "train", {"return_mean": 400.0, "normalized": 0.84}, 8, 0)
    store.log_metrics(1, {"best": 0.5, "bad": float("nan")})
    assert [c.id for c in store.best_candidates()] == [a]
    assert store.candidate(b).parents == [a] and store.candidate(b).reason == "boom"
    assert store.candidate(a).info == {"tokens": 3}
    assert store.metric("bad") == [(1, None)] and store.metric("best") == [(1, 0.5)]
    kinds = [e["kind"] for e in store.events()]
    assert kinds.count("candidate") == 2 and "outcome" in kinds
    store.close()
    reopened = RunStore(tmp_path / "run")
    assert reopened.run_info()["family"] == "lpo" and len(reopened.candidates()) == 2


def test_config_errors_name_the_field_and_the_fix(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_config({"es": {"popsize": "many", "colour": 1}, "envs": ["cartpole", "nope"]})
    text = str(err.value)
    assert "es.popsize" in text and "--set es.popsize=" in text
    assert "es.colour: unknown key" in text and "sigma" in text
    assert "unknown environment 'nope'" in text
    bad = tmp_path / "bad.yaml"
    bad.write_text("family: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_overrides_apply_with_yaml_types():
    cfg = build_config({"family": "open"}, ["es.popsize=16", "envs=[cartpole, acrobot]", "wandb.enabled=true"])
    assert cfg.es.popsize == 16 and cfg.envs == ["cartpole", "acrobot"] and cfg.wandb.enabled
    with pytest.raises(ConfigError, match="key=value"):
        build_config({}, ["es.popsize"])


def test_resume_overrides_extend_budgets_but_not_the_search(tmp_path):
    import pytest as _pytest

    from workbench.config import ConfigError, build_config
    from workbench.runs import create_run, open_run

    create_run(build_config({"method": "es", "envs": ["cartpole"]}), tmp_path / "r").close()
    config, store = open_run(tmp_path / "r", ["es.generations=1234"])
    store.close()
    assert config.es.generations == 1234
    config, store = open_run(tmp_path / "r")  # the extension is remembered
    store.close()
    assert config.es.generations == 1234
    with _pytest.raises(ConfigError, match="family: cannot change when resuming"):
        open_run(tmp_path / "r", ["family=open"])
