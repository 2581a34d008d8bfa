import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def workbench(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_eval_json_plot_and_exit_status(tmp_path):
    plot = tmp_path / "curves.png"
    out = workbench("eval", "--family", "lpo", "--env", "cartpole", "--test-env", "acrobot",
                    "--timesteps", "4096", "--seeds", "2", "--json", "--plot", str(plot))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) >= {"family", "outcome", "reason", "envs", "fitness"}
    assert data["family"] == "lpo" and data["outcome"] == "ok"
    row = data["envs"]["cartpole"]
    assert set(row) == {"return_mean", "return_stderr", "normalized", "sps", "compile_s", "seed_returns"}
    assert row["sps"] > 0 and row["compile_s"] > 0 and "acrobot" in data["test_envs"]
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_unknown_family_is_a_usage_error():
    out = workbench("eval", "--family", "lpg")
    assert out.returncode == 2 and "invalid choice: 'lpg'" in out.stderr and "open_ff" in out.stderr


def test_unknown_env_names_the_choices():
    out = workbench("eval", "--family", "lpo", "--env", "pong")
    assert out.returncode == 2 and "unknown environment 'pong'" in out.stdout and "cartpole" in out.stdout


def test_wrong_signature_is_an_invalid_candidate(tmp_path):
    code = tmp_path / "drift.py"
    code.write_text("def drift(r, a):\n    return r * 0\n")
    out = workbench("eval", "--family", "lpo", "--code", str(code), "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["outcome"] == "invalid"
    assert "expected drift(ratio, advantage, epsilon)" in data["reason"]


@pytest.mark.parametrize("expr, needle", [("r * B", "unknown symbol 'B'"), ("erf(r)", "unknown function 'erf'"), ("foo(r)", "unknown function"), ("__import__('os')", "unknown function '__import__'"), ("r.__class__", "attribute access is not allowed")])
def test_bad_expressions_are_invalid_with_the_reason(expr, needle):
    out = workbench("eval", "--family", "lpo", "--expr", expr, "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 1 and data["outcome"] == "invalid" and needle in data["reason"]


def test_symbolic_open_is_refused_clearly():
    out = workbench("eval", "--family", "open", "--expr", "g", "--json")
    data = json.loads(out.stdout)
    assert data["outcome"] == "invalid" and "recurrent" in data["reason"]
