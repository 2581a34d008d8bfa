"""Worker directories a killed pool left behind, and whether their owner process still lives.

Each worker's private directory is named `wb-sandbox-<role>-<pid of the pool's process>-<random>`,
so any later pool can tell whose it is.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

DIR_PREFIX = "wb-sandbox-"  # + role-<pid of the pool's process>-<random>: the owner is on the name


def pid_alive(pid: int) -> bool:
    """True while `pid` names a process (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_dirs(root: str | Path | None = None) -> list[Path]:
    """Remove worker dirs whose pool process is gone (killed before it could clean up).

    A worker dies with its parent (parent-death signal), but a SIGKILLed pool cannot remove the
    private directories it made; the next pool on this machine does."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{DIR_PREFIX}*-*-*"):
        try:
            pid = int(path.name[len(DIR_PREFIX):].split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
