"""wandb mirroring: offline without a key, resumed runs keep their wandb id, failures never stop a run."""

import glob

import pytest

from workbench.config import build_config
from workbench.runs import create_run, execute
from workbench.tracking import start_mirror, wandb_mode

TINY = {"family": "lpo", "method": "es", "envs": ["cartpole"], "timesteps": 2048, "seeds": 1,
        "num_envs": 4, "es": {"generations": 2, "popsize": 4, "save_every": 1}}


def test_mode_is_offline_without_a_key(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"
    assert wandb_mode("offline") == "offline"


def test_es_run_is_mirrored_offline(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    config = build_config({**TINY, "workspace": str(tmp_path), "wandb": {"enabled": True}})
    store = create_run(config, tmp_path / "run")
    assert execute(config, store) == "finished"
    info = store.get_state("wandb")
    assert info["mode"] == "offline"
    files = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(files) == 1 and info["id"] in files[0]
    data = open(files[0], "rb").read()
    for key in (b"mean_fitness", b"sigma", b"mean_eval_fitness", b"candidate/fitness"):
        assert key in data, key
    # a resumed run continues the same wandb run
    config2 = config.model_copy(update={"es": config.es.model_copy(update={"generations": 3})})
    assert execute(config2, store) == "finished"
    assert store.get_state("wandb")["id"] == info["id"]


def test_broken_wandb_does_not_stop_the_run(tmp_path, monkeypatch, capsys):
    import wandb

    def boom(*a, **k):
        raise RuntimeError("no wandb today")
    monkeypatch.setattr(wandb, "init", boom)
    config = build_config({**TINY, "wandb": {"enabled": True}})
    store = create_run(config, tmp_path / "run")
    assert start_mirror(config, store) is None
    assert "no wandb today" in capsys.readouterr().err
