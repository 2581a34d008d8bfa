"""The Textual TUI: list, start, watch, steer and resume runs.

It only reads run stores (and writes steering requests through `workbench.control`); work runs in
detached `python -m workbench.cli run|resume` processes started by `launcher.py`.
"""

from __future__ import annotations

from pathlib import Path


def run_tui(workspace: str | Path = "runs") -> int:
    from .app import WorkbenchApp
    WorkbenchApp(workspace=workspace).run()
    return 0
