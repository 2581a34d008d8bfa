"""Pre-started sandbox workers: each serves one candidate, then is replaced.

A candidate never runs in the caller's process.  The pool keeps `spares` workers that have already
imported JAX (so a candidate pays no import), hands one job to one worker over a pipe and waits with
a wall-clock limit; on expiry it kills the worker's whole process group.  Outcomes are typed:
ok, invalid, forbidden, crashed, timeout, oom, nan, each with a reason meant for the proposer.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
STARTUP_LIMIT_S = 300.0


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment minus anything that looks like a secret."""
    env = {k: v for k, v in os.environ.items()
           if not any(m in k.upper() for m in SECRET_MARKERS)}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@lru_cache(maxsize=1)
def network_namespace_available() -> bool:
    """True if `unshare -n` works here (root, or user namespaces allowed)."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class SandboxResult:
    outcome: str
    reason: str = ""
    fitness: float | None = None
    test_fitness: float | None = None
    envs: dict[str, dict[str, Any]] = field(default_factory=dict)
    test_envs: dict[str, dict[str, Any]] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    env_steps: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("outcome", "reason", "fitness", "test_fitness", "envs",
                                               "test_envs", "env_steps", "timings")}


class _Worker:
    def __init__(self, env_extra: dict[str, str] | None):
        self.dir = Path(tempfile.mkdtemp(prefix="wb-sandbox-"))
        self.stderr_path = self.dir / "stderr.log"
        cmd = [sys.executable, "-m", "sandbox.worker"]
        if network_namespace_available():
            cmd = ["unshare", "-n", *cmd]
        env = scrubbed_env({"TMPDIR": str(self.dir), "HOME": str(self.dir), **(env_extra or {})})
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr,
                                     start_new_session=True)
        self.started = time.perf_counter()
        self.ready = False

    def read_line(self, deadline: float) -> str | None:
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        buf = b""
        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                if not sel.select(timeout=min(left, 1.0)):
                    if self.proc.poll() is not None and not buf:
                        return ""
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return buf.decode(errors="replace") if buf else ""
                buf += chunk
                if buf.endswith(b"\n"):
                    return buf.decode(errors="replace")
        finally:
            sel.close()

    def wait_ready(self, limit: float = STARTUP_LIMIT_S) -> None:
        if self.ready:
            return
        line = self.read_line(time.perf_counter() + limit)
        if not line or not json.loads(line).get("ready"):
            tail = self.stderr_tail()
            self.kill()
            raise RuntimeError(f"sandbox worker failed to start: {tail}")
        self.ready = True

    def stderr_tail(self, n: int = 1500) -> str:
        try:
            return self.stderr_path.read_bytes()[-n:].decode(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._stderr.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _classify_death(returncode: int | None, stderr: str) -> tuple[str, str]:
    text = stderr.lower()
    if returncode in (-signal.SIGXCPU,) or "cpu time limit" in text:
        return "timeout", "CPU time limit exceeded"
    if any(m in text for m in ("memoryerror", "bad_alloc", "resource_exhausted", "cannot allocate",
                               "out of memory")):
        return "oom", f"out of memory (address-space limit): {stderr[-400:]}"
    if returncode == -signal.SIGKILL:
        return "oom", "killed by SIGKILL (most likely the memory limit)"
    return "crashed", f"worker died with exit code {returncode}: {stderr[-600:]}"


class SandboxPool:
    """Runs jobs in fresh pre-started workers.  Use as a context manager or call close()."""

    def __init__(self, spares: int = 1, time_limit_s: float = 600.0, memory_limit_mb: int = 8192,
                 cpu_time_limit_s: float | None = None, env_extra: dict[str, str] | None = None,
                 compile_cache_dir: str | Path | None = None):
        """`compile_cache_dir`: JAX's persistent compilation cache for the workers.  Each worker is a
        fresh process, so without it a program compiled before is compiled again; with it a
        re-evaluation of an identical program (the warm start of every run, a candidate resumed
        after a kill, `workbench eval` of a stored program) loads its executable instead.  Different
        programs lower to different HLO and gain nothing.  The directory holds native code that
        later workers load: keep it for sandbox workers only, never shared with the parent."""
        self.spares = max(1, spares)
        if compile_cache_dir is not None:
            cache = Path(compile_cache_dir).resolve()
            cache.mkdir(parents=True, exist_ok=True)
            env_extra = {"JAX_COMPILATION_CACHE_DIR": str(cache), **(env_extra or {})}
        self.time_limit_s = time_limit_s
        self.memory_limit_mb = memory_limit_mb
        self.cpu_time_limit_s = cpu_time_limit_s
        self.env_extra = env_extra
        self._idle: list[_Worker] = []
        self._fill()

    def _fill(self) -> None:
        while len(self._idle) < self.spares:
            self._idle.append(_Worker(self.env_extra))

    def evaluate(self, job: dict[str, Any], time_limit_s: float | None = None) -> SandboxResult:
        """Run one job in one worker; never raises for a candidate's failure."""
        limit = time_limit_s or self.time_limit_s
        t0 = time.perf_counter()
        worker = self._idle.pop(0)
        try:
            worker.wait_ready()
        except RuntimeError:
            worker = _Worker(self.env_extra)
            worker.wait_ready()
        wait_s = time.perf_counter() - t0
        self._fill()  # the replacement imports JAX while this candidate runs
        job = {"cpu_time_limit_s": self.cpu_time_limit_s or limit * 2,
               "memory_limit_mb": self.memory_limit_mb, **job}
        t1 = time.perf_counter()
        try:
            worker.proc.stdin.write((json.dumps(job) + "\n").encode())
            worker.proc.stdin.flush()
            line = worker.read_line(t1 + limit)
        except BrokenPipeError:
            line = ""
        elapsed = time.perf_counter() - t1
        try:
            if line is None:
                result = SandboxResult("timeout", f"wall-clock limit of {limit:g} s exceeded; "
                                       "the candidate was killed")
            elif line:
                data = json.loads(line)
                result = SandboxResult(**{k: v for k, v in data.items()
                                          if k in SandboxResult.__dataclass_fields__})
            else:
                worker.proc.wait(timeout=10)
                outcome, reason = _classify_death(worker.proc.returncode, worker.stderr_tail())
                result = SandboxResult(outcome, reason)
        finally:
            worker.kill()
        result.timings = {**result.timings, "wait_s": wait_s, "eval_wall_s": elapsed}
        return result

    def close(self) -> None:
        for w in self._idle:
            w.kill()
        self._idle = []

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
