"""Who may run without the jail: refusals are one clear line, opt-outs are recorded."""

import json

import pytest
import yaml

import sandbox.pool
import workbench.agent.scoring
from sandbox.jail import Isolation
from sandbox.pool import SandboxPool, SandboxUnavailable
from workbench.cli import main

BROKEN = Isolation(False, False, False, False, False, "none", "unshare(CLONE_NEWUSER): EPERM")


@pytest.fixture()
def no_jail(monkeypatch):
    """This machine as one where user namespaces are forbidden (a locked-down container)."""
    for module in (sandbox.pool, workbench.agent.scoring):
        monkeypatch.setattr(module, "probe", lambda: BROKEN)


def test_full_isolation_is_refused_with_the_fix_named(no_jail):
    with pytest.raises(SandboxUnavailable) as info:
        SandboxPool(spares=1, isolation="full")
    assert "EPERM" in str(info.value) and "sandbox.isolation: none" in str(info.value)


def test_llm_written_code_without_the_jail_stops_the_run_in_one_line(no_jail, tmp_path, capsys):
    config = {"family": "lpo", "method": "llm", "envs": ["cartpole"], "timesteps": 4096,
              "num_envs": 4, "llm": {"proposer": "llm", "model": "openai/none",
                                      "api_base": "http://127.0.0.1:9/v1", "generations": 1}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    code = main(["run", "--config", str(path), "--run-dir", str(tmp_path / "run")])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 2 and "sandbox.isolation: none" in text and "Traceback" not in text


def test_the_opt_out_is_recorded_with_the_candidate(tmp_path):
    job = {"family": "lpo", "kind": "code", "envs": ["cartpole"], "seeds": 1, "seed": 0,
           "timesteps": 2048, "num_envs": 4,
           "source": "def drift(ratio, advantage, epsilon):\n    return jax.nn.relu((ratio - 1) * advantage * 0)\n"}
    with SandboxPool(spares=1, isolation="none") as pool:
        r = pool.evaluate(job, time_limit_s=120)
    assert r.outcome == "ok", r
    for role in ("trace", "score"):
        assert r.isolation[role]["method"] == "none" and not r.isolation[role]["net_ns"]
        assert "isolation='none'" in r.isolation[role]["reason"]
    json.dumps(r.isolation)
