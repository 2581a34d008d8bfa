"""Shared by the jail tests (test_sandbox_isolation.py, test_sandbox_jail_fs.py) and the pool
attack tests: a jailed `python -c` runner whose inner scripts report one JSON line, its fixtures,
and where this checkout lies."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sandbox.jail import REPO_ROOT, Isolation, jail_command, probe

# a checkout under /tmp (a CI clone): its path then lies inside the jail's private /tmp, where a
# write beside the project's read-only mounts lands in that tmpfs, never on the host
REPO_UNDER_TMP = Path("/tmp") in REPO_ROOT.parents

PROJECT_DIRS = (REPO_ROOT / "evaluators", REPO_ROOT / "sandbox")

# Shared prelude of the inner scripts: `attempt(name, fn)` records "ok" or the errno name.
PRELUDE = r"""
import errno, json, os, sys
results = {}
def attempt(name, fn):
    try:
        value = fn()
        results[name] = "ok" if value is None else ["ok", value]
    except OSError as exc:
        results[name] = errno.errorcode.get(exc.errno, str(exc.errno))
def write(path, text="x", mode="w"):
    with open(path, mode) as f:
        f.write(text)
def done():
    print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def isolation() -> Isolation:
    found = probe()
    if not found.full:
        pytest.skip(f"the jail cannot start on this machine: {found.reason}")
    return found


@pytest.fixture
def private_dir():
    path = Path(tempfile.mkdtemp(prefix="wb-sandbox-test-"))  # where the pool puts them: /tmp
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(private: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    return {**env, "HOME": str(private), "TMPDIR": str(private), "PYTHONPATH": str(REPO_ROOT),
            "JAX_PLATFORMS": "cpu"}


def _run(cmd: list[str], private: Path, *, timeout: float = 60, stdin: str | None = None,
         ) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=private, env=_env(private), capture_output=True, text=True,
                          timeout=timeout, input=stdin)


def run_jailed(script: str, private: Path, *, read_only=PROJECT_DIRS, writable=(),
               timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess:
    cmd, used = jail_command([sys.executable, "-c", script], private_dir=private,
                             read_only=read_only, writable=writable)
    assert used.full and cmd[0] == sys.executable and "--" in cmd, used
    return _run(cmd, private, timeout=timeout, stdin=stdin)


def results_of(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def jailed_results(body: str, private: Path, **kw) -> dict:
    return results_of(run_jailed(PRELUDE + body + "\ndone()\n", private, **kw))


def plain_results(body: str, private: Path) -> dict:
    return results_of(_run([sys.executable, "-c", PRELUDE + body + "\ndone()\n"], private))
