"""The smallest real discovery run (LPO, CartPole, offline mutation proposer) as a config file.

Tests that drive the real agent through the UI share it, so "tiny" means the same thing in each.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def write_tiny_llm_config(path: Path, name: str, generations: int, **llm: object) -> Path:
    """Write the config to `path`; `llm` adds fields of the `llm` section (e.g. approval=True)."""
    config = {"name": name, "family": "lpo", "method": "llm", "envs": ["cartpole"], "seeds": 1,
              "timesteps": 4096, "num_envs": 4,
              "llm": {"proposer": "mutation", "generations": generations, **llm},
              "sandbox": {"time_limit_s": 150}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
