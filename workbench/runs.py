"""Run directories: creating, finding, listing and resuming runs.

A run lives in one directory: `run.sqlite` (the store, and LangGraph checkpoints), `config.yaml`
(the resolved config), checkpoints of long methods, artefacts and the report.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml

from .config import ConfigError, RunConfig, build_config
from .errors import RunExists, RunNotFound
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
        raise RunExists(f"{path} already holds a run",
                        fix=f"continue it with `workbench resume {path}`, or choose another --run-dir")
    store = RunStore(path)
    data = config.model_dump(mode="json")
    (path / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    store.init_run(config.name, config.family, config.method, data)
    return store


ACTIVE_KEY = "active_seconds"  # wall-clock seconds the method has run, summed over sessions
# Fields (dotted paths) a resume cannot change, each with why: they set the shapes of checkpointed
# state, or what the results stored so far mean.  Everything else (budgets such as es.generations,
# llm.generations, llm.max_cost_usd; sandbox limits; schedules' decays and floors) may change.
FIXED_ON_RESUME: dict[str, str] = {
    "family": "every candidate and checkpoint of the run belongs to it",
    "method": "the store and checkpoints are this method's",
    "envs": "the stored fitnesses are scores on these environments",
    "test_envs": "the stored meta-test fitnesses are scores on these environments",
    "seed": "the search's random streams (and ES's bit-identical resume) derive from it",
    "seeds": "the stored fitnesses are means over this many training seeds",
    "eval_seed": "the held-out scores already stored used these seeds",
    "timesteps": "the stored fitnesses are scores after this many environment steps",
    "num_envs": "the stored fitnesses are scores of PPO with this many environments",
    "pipeline": "finished steps are recorded by their position in it",
    "es.strategy": "the checkpointed ES state is this strategy's",
    "es.popsize": "the checkpointed ES state and the population have this size",
    "es.hsize": "the searched network's parameter shapes are in the checkpoint",
    "es.init": "the search started from it (the checkpoint holds the mean since)",
    "es.sigma": "the checkpoint holds the decayed sigma; a new start value would be ignored",
    "es.lr": "the checkpoint holds the decayed learning rate; a new start value would be ignored",
    "es.rollouts": "each stored fitness averages this many rollouts",
    "distill.teacher": "the teacher was resolved once and stored in the run",
    "distill.hsize": "the checkpointed student's parameter shapes",
    "distill.data": "the checkpointed student was trained on this data",
    "distill.record_points": "the student was trained on this many recorded inputs",
    "distill.test_points": "the stored test losses are on a test set of this size",
    "symbolic.teacher": "the stored expressions were fitted to this teacher",
    "symbolic.grad_loss": "the stored fronts fit the teacher's value or its gradient by it",
    "symbolic.operators": "the stored fronts were searched over these operators",
    "symbolic.maxsize": "the stored fronts were searched up to this size",
    "symbolic.maxdepth": "the stored fronts were searched up to this depth",
    "llm.loop": "the checkpointed discovery graph or tool conversation is this loop's",
}


def _field(config: RunConfig, dotted: str) -> object:
    value: object = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _as_override(value: object) -> str:
    """A value as `--set key=VALUE` writes it (YAML)."""
    if isinstance(value, list):
        return "[" + ",".join(str(v) for v in value) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def check_resume_overrides(run_dir: str | Path, old: RunConfig, new: RunConfig) -> None:
    """ConfigError naming every `FIXED_ON_RESUME` field that differs, its old and new value, why
    it is fixed, and the fix (a new run from this run's config with the change)."""
    changed = [k for k in FIXED_ON_RESUME if _field(new, k) != _field(old, k)]
    if not changed:
        return
    lines = [f"{k}: cannot change when resuming (was {_as_override(_field(old, k))}, now "
             f"{_as_override(_field(new, k))}): {FIXED_ON_RESUME[k]}" for k in changed]
    sets = " ".join(f"--set {k}={_as_override(_field(new, k))}" for k in changed)
    raise ConfigError("\n".join(lines),
                      fix=f"start a new run instead: workbench run --config "
                          f"{Path(run_dir) / 'config.yaml'} {sets}")


def open_run(run_dir: str | Path, overrides: list[str] = ()) -> tuple[RunConfig, RunStore]:
    """Open a run; `overrides` (key=value) may extend budgets but not change what is being searched."""
    if not (Path(run_dir) / DB_NAME).is_file():
        raise RunNotFound(f"{run_dir} is not a run directory (no {DB_NAME} in it)")
    store = RunStore(run_dir)
    try:
        info = store.run_info()
        if info is None:
            raise RunNotFound(f"{run_dir} has a store but no run record")
        config = build_config(info["config"])
        if overrides:
            new = build_config(info["config"], list(overrides))
            check_resume_overrides(run_dir, config, new)
            store.check_not_owned()  # never change the config under a live run (RunOwned)
            store.update_config(new.model_dump(mode="json"))
            config = new
    except BaseException:
        store.close()
        raise
    return config, store


HEARTBEAT_S = 5.0  # how often the owner refreshes its lease (readers call it stale after 30 s)


@contextmanager
def own_run(store: RunStore) -> Iterator[None]:
    """Hold the run's ownership lease (host, PID, start time, heartbeat) while the body runs.

    The lease is taken atomically (`RunOwned` names the live owner if there is one), refreshed
    every `HEARTBEAT_S` by a daemon thread, and released on any clean exit, including errors and
    Ctrl-C.  After `kill -9` it stays behind naming a dead process, so the run reads as
    `interrupted` and the next `workbench resume` takes it over."""
    store.acquire_lease()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT_S):
            try:
                store.heartbeat()
            except sqlite3.Error:
                pass  # busy or closing: the next beat tries again

    thread = threading.Thread(target=beat, name="run-lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=HEARTBEAT_S)
        store.release_lease()


def execute(config: RunConfig, store: RunStore) -> str:
    """Run (or continue) the method; the run's status says how it ended.  Refused with
    `RunOwned` while another live process executes the same run."""
    method = get_method(config.method)
    with own_run(store):
        store.set_status("running")
        mirror = start_mirror(config, store)
        started = time.monotonic()
        try:
            method.run(config, store)
        except KeyboardInterrupt:
            store.set_status("stopped")
            raise
        except BaseException as exc:
            # the reason first: a viewer woken by the `failed` status event can already read it
            store.set_state("failure_reason", f"{type(exc).__name__}: {exc}")
            store.set_status("failed")
            raise
        finally:
            # time spent running, over every session (a resume days later must not count the
            # gap); a killed session adds nothing, so this is a lower bound after kill -9
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
