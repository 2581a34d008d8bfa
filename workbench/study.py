"""Studies: several run configs executed into one directory, then compared in one report.

A study file lists runs, each a config file plus optional overrides:

    name: cpu-study
    runs:
      - {name: lpo-es, config: configs/cpu/lpo_es.yaml}
      - {name: lpo-llm, config: configs/cpu/lpo_llm.yaml, set: ["llm.generations=5"]}

Runs go to STUDY_DIR/<name>; `{study_dir}` in an override is replaced by STUDY_DIR, so a later
run can name an earlier one, e.g. `distill.teacher={study_dir}/lpo-es` distils that run's best network.  Re-running the study resumes unfinished runs and skips finished
ones, so a killed study continues where it stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import ConfigError, load_config
from .runs import create_run, execute, open_run
from .store import DB_NAME


class StudyRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    config: str
    set: list[str] = Field(default_factory=list)


class Study(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "study"
    runs: list[StudyRun]


def load_study(path: str | Path) -> Study:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
        return Study.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"cannot read study file {path}: {exc.strerror}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: not a valid study file: {exc}") from None


def run_study(path: str | Path, study_dir: str | Path,
              on_run: Callable[[str, Path, str], None] | None = None) -> list[tuple[str, str]]:
    """Run (or resume) every run of the study; returns (name, final status) pairs."""
    study = load_study(path)
    base = Path(path).parent
    out = Path(study_dir)
    # validate every config before spending compute on any of them
    configs = []
    for r in study.runs:
        cfg_path = Path(r.config) if Path(r.config).is_absolute() or Path(r.config).exists() else base / r.config
        overrides = [o.replace("{study_dir}", str(out)) for o in r.set]
        configs.append((r, load_config(cfg_path, [*overrides, f"name={r.name}"])))
    results = []
    for r, config in configs:
        run_dir = out / r.name
        if (run_dir / DB_NAME).exists():
            config, store = open_run(run_dir)
            if (store.run_info() or {}).get("status") == "finished":
                results.append((r.name, "finished"))
                store.close()
                continue
        else:
            store = create_run(config, run_dir)
        if on_run:
            on_run(r.name, run_dir, "start")
        try:
            status = execute(config, store)
        except Exception as exc:  # noqa: BLE001 - one failed run must not sink the study
            status = "failed"
            if on_run:
                on_run(r.name, run_dir, f"failed: {type(exc).__name__}: {exc}")
        finally:
            store.close()
        results.append((r.name, status))
    return results
