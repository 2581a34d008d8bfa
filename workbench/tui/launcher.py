"""Starting and resuming runs as detached processes, so the UI never blocks and runs outlive it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Protocol

import yaml

from ..config import RunConfig
from ..runs import new_run_dir

LOG_NAME = "process.log"


class Launcher(Protocol):
    def start(self, config: RunConfig) -> Path: ...

    def resume(self, run_dir: Path) -> None: ...


class ProcessLauncher:
    """`python -m workbench.cli run/resume` in its own session (survives the TUI quitting).

    `procs` keeps the processes this launcher started, so a caller (a test, a benchmark) can wait
    for one or read its exit code; the UI itself only watches the run stores.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, config: RunConfig) -> Path:
        run_dir = new_run_dir(config)
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg_path = run_dir / "tui-config.yaml"
        cfg_path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        self.procs.append(self._spawn(["run", "--config", str(cfg_path), "--run-dir", str(run_dir)],
                                      run_dir))
        return run_dir

    def resume(self, run_dir: Path) -> None:
        self.procs.append(self._spawn(["resume", str(run_dir)], Path(run_dir)))

    @staticmethod
    def _spawn(args: list[str], run_dir: Path) -> subprocess.Popen:
        log = open(Path(run_dir) / LOG_NAME, "ab")
        return subprocess.Popen([sys.executable, "-m", "workbench.cli", *args],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)  # the caller's cwd: relative paths agree
