"""One interface over symbolic-regression backends, and the `auto` choice between them.

A backend fits X -> y and returns its Pareto front as `Equation`s whose text uses the column names
given to it; each `fit` continues the previous one (warm start) on the new data.  PySR (SPEC §6) needs
Julia and its packages already installed (no runtime `Pkg.add`); pyoperon installs from PyPI alone
and is the offline default.  `auto` probes PySR in a subprocess with a timeout, so a missing or
half-installed Julia can neither hang nor crash the run, and says why it chose what it chose.
The shared types live in `backend_base.py` (the backend modules import that, not this module).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from .backend_base import (BINARY, UNARY, Backend, BackendUnavailable, Equation, SearchSettings,
                           search_settings)
from .operon_backend import OperonBackend
from .pysr_backend import PySRBackend

PYSR_PROBE_TIMEOUT_S = 120.0


def pysr_status(timeout_s: float = PYSR_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """(usable, why): pysr must import and Julia must start, checked in a child process with a
    timeout and juliapkg offline, so nothing is downloaded and a broken install cannot hang us."""
    if importlib.util.find_spec("pysr") is None:
        return False, "the pysr package is not installed (it also needs a working Julia)"
    env = {**os.environ, "PYTHON_JULIAPKG_OFFLINE": "yes", "JULIA_PKG_OFFLINE": "true"}
    probe = "import pysr\nfrom juliacall import Main as jl\nassert jl.seval('1 + 1') == 2\n"
    try:
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                             text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, f"pysr imports but Julia did not start within {timeout_s:g} s"
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return False, f"pysr is installed but Julia did not start ({tail[0][:300]})"
    return True, "pysr imports and Julia starts"


def select_backend(requested: str, settings: SearchSettings) -> tuple[Backend, str]:
    """The backend to use and a sentence saying why; BackendUnavailable for an impossible request."""
    if requested == "operon":
        return OperonBackend(settings), "operon requested in the config (symbolic.backend=operon)"
    ok, why = pysr_status()
    if requested == "pysr":
        if not ok:
            raise BackendUnavailable(f"symbolic.backend=pysr cannot run here: {why}; install PySR "
                                     "with its Julia packages, or set symbolic.backend=operon")
        return PySRBackend(settings), f"pysr requested and available ({why})"
    if requested != "auto":
        raise ValueError(f"symbolic.backend: unknown {requested!r}; use auto, pysr or operon")
    if ok:
        return PySRBackend(settings), f"auto: PySR, because {why}"
    return OperonBackend(settings), f"auto: operon, because {why}"


__all__ = ["BINARY", "UNARY", "Backend", "BackendUnavailable", "Equation", "SearchSettings",
           "pysr_status", "search_settings", "select_backend"]
