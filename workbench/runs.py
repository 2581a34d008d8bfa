"""Run directories: creating, finding, listing and resuming runs.

A run lives in one directory: `run.sqlite` (the store, and LangGraph checkpoints), `config.yaml`
(the resolved config), checkpoints of long methods, artefacts and the report.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from .config import ConfigError, RunConfig, build_config
from .methods import get_method
from .store import DB_NAME, RunStore
from .tracking import start_mirror


def new_run_dir(config: RunConfig, run_dir: str | Path | None = None) -> Path:
    if run_dir is not None:
        return Path(run_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(config.workspace) / f"{config.name}-{config.family}-{config.method}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def create_run(config: RunConfig, run_dir: str | Path | None = None) -> RunStore:
    path = new_run_dir(config, run_dir)
    if (path / DB_NAME).exists():
        raise FileExistsError(f"{path} already holds a run; use `workbench resume {path}`")
    store = RunStore(path)
    data = config.model_dump(mode="json")
    (path / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    store.init_run(config.name, config.family, config.method, data)
    return store


ACTIVE_KEY = "active_seconds"  # wall-clock seconds the method has run, summed over sessions
FIXED_ON_RESUME = ("family", "method", "envs", "seed", "timesteps", "num_envs", "pipeline")


def open_run(run_dir: str | Path, overrides: list[str] = ()) -> tuple[RunConfig, RunStore]:
    """Open a run; `overrides` (key=value) may extend budgets but not change what is being searched."""
    store = RunStore(run_dir, readonly=not (Path(run_dir) / DB_NAME).exists())
    info = store.run_info()
    if info is None:
        raise FileNotFoundError(f"{run_dir} has a store but no run record")
    config = build_config(info["config"])
    if overrides:
        new = build_config(info["config"], list(overrides))
        changed = [k for k in FIXED_ON_RESUME if getattr(new, k) != getattr(config, k)]
        if changed:
            raise ConfigError(f"{', '.join(changed)}: cannot change when resuming (the search so far "
                              f"depends on it); start a new run with `workbench run --set ...` instead")
        store.update_config(new.model_dump(mode="json"))
        config = new
    return config, store


def execute(config: RunConfig, store: RunStore) -> str:
    """Run (or continue) the method; the run's status says how it ended."""
    method = get_method(config.method)
    store.set_status("running")
    mirror = start_mirror(config, store)
    started = time.monotonic()
    try:
        method.run(config, store)
    except KeyboardInterrupt:
        store.set_status("stopped")
        raise
    except BaseException as exc:
        store.set_status("failed")
        store.set_state("failure_reason", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        # time spent running, over every session (a resume days later must not count the gap);
        # a killed session adds nothing, so this is a lower bound after kill -9
        store.set_state(ACTIVE_KEY, float(store.get_state(ACTIVE_KEY, 0.0) or 0.0)
                        + time.monotonic() - started)
        if mirror is not None:
            mirror.finish()
    status = store.get_state("final_status", "finished")
    store.set_status(status)
    return status


def list_runs(workspace: str | Path) -> list[Path]:
    root = Path(workspace)
    if not root.exists():
        return []
    return sorted({p.parent for p in root.glob(f"**/{DB_NAME}")})
