"""Paired comparison on common seeds: the zero ES mean *is* PPO, so its per-seed difference is 0."""

import json
import subprocess
import sys
from pathlib import Path

from workbench.config import build_config
from workbench.runs import create_run, execute

ROOT = Path(__file__).resolve().parents[1]


def test_compare_pairs_seeds(tmp_path):
    config = build_config({"family": "lpo", "method": "es", "envs": ["cartpole"], "timesteps": 2048,
                           "seeds": 1, "num_envs": 4, "es": {"generations": 1, "popsize": 2, "save_every": 1}})
    store = create_run(config, tmp_path / "run")
    assert execute(config, store) == "finished"
    first = store.candidates()[0]
    assert first.generation == 0
    store.close()
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "compare", str(tmp_path / "run"),
                          "warm-start", str(first.id), "--seeds", "3", "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert [r["outcome"] for r in rows] == ["ok", "ok"]
    assert rows[1]["diff_mean"] == 0.0 and rows[1]["wins_losses_ties"] == "0/0/3"
    bad = subprocess.run([sys.executable, "-m", "workbench.cli", "compare", str(tmp_path / "run"),
                          "warm-start", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "use an id" in bad.stdout
