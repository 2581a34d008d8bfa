"""Pre-started sandbox workers: each serves one step of one candidate, then is replaced.

A candidate never runs in the caller's process.  The pool keeps `spares` tracers and scorers that
have already imported JAX (so a candidate pays no import), each in its jail (`sandbox.jail`); a job
goes to a tracer (the candidate's code, exported) and then to a scorer (trusted training) over
pipes, with one wall-clock limit; on expiry the worker's whole process group is killed.  Outcomes
are typed: ok, invalid, forbidden, crashed, timeout, oom, nan, each with a reason meant for the
proposer, and every result records the isolation its workers actually had.
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
import threading
import time
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Sequence

from sandbox.accelerators import Slot, scorer_slots, visible_gpus
from sandbox.jail import jail_command, probe
from sandbox.stale_dirs import DIR_PREFIX, sweep_stale_dirs

# all a worker may read of the project: the packages it imports, where this process found them
# (the repo's evaluators/ and sandbox/ in a checkout, site-packages' in an installed package)
CODE_DIRS = tuple(Path(find_spec(name).origin).resolve().parent
                  for name in ("evaluators", "sandbox"))
# the worker's PYTHONPATH: the directories holding those packages
CODE_PATH = os.pathsep.join(dict.fromkeys(str(d.parent) for d in CODE_DIRS))
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")
STARTUP_LIMIT_S = 300.0
# the parent's own compilation cache: a scorer is given the pool's cache explicitly, a tracer none
PARENT_ONLY = ("JAX_COMPILATION_CACHE_DIR",)
TRACER_FAILURES = ("invalid", "forbidden", "crashed", "oom")  # all a tracer's reply may claim


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment minus anything that looks like a secret.

    The platform is inherited, not forced: a scorer on a GPU machine trains on its GPU (its
    slot's environment pins the device, `sandbox.accelerators`); the tracer asks for the CPU."""
    env = {k: v for k, v in os.environ.items()
           if not any(m in k.upper() for m in SECRET_MARKERS) and k not in PARENT_ONLY}
    env["PYTHONPATH"] = CODE_PATH
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


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
    isolation: dict[str, Any] = field(default_factory=dict)  # what each worker actually ran under

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("outcome", "reason", "fitness", "test_fitness", "envs",
                                               "test_envs", "env_steps", "timings", "isolation")}


class SandboxUnavailable(RuntimeError):
    """The isolation the caller asked for cannot be had on this machine (message says what to do)."""


class _Worker:
    """One pre-started worker process of one role (`trace` or `score`), jailed."""

    def __init__(self, role: str, env_extra: dict[str, str] | None, isolation: str,
                 writable: Sequence[Path] = (), slot: int = 0):
        self.role = role
        self.slot = slot  # which accelerator slot (scorers) it was started for
        self.dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{role}-{os.getpid()}-"))
        self.stderr_path = self.dir / "stderr.log"
        env = scrubbed_env({"TMPDIR": str(self.dir), "HOME": str(self.dir), **(env_extra or {})})
        cmd, self.isolation = jail_command([sys.executable, "-m", "sandbox.worker", role],
                                           private_dir=self.dir, read_only=CODE_DIRS,
                                           writable=writable, isolation=isolation,
                                           gpu_devices=role == "score")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr,
                                     start_new_session=True)
        self.started = time.perf_counter()
        self.ready: dict[str, Any] | None = None
        self.boot_s = 0.0  # start to ready: jail, interpreter, JAX import (hidden by spares)

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

    def wait_ready(self, limit: float = STARTUP_LIMIT_S) -> dict[str, Any]:
        if self.ready is None:
            line = self.read_line(time.perf_counter() + limit)
            try:
                hello = json.loads(line) if line else {}
            except json.JSONDecodeError:
                hello = {}
            if not hello.get("ready"):
                tail = self.stderr_tail()
                self.kill()
                raise RuntimeError(f"sandbox {self.role} worker failed to start: {tail}")
            self.ready = hello
            self.boot_s = time.perf_counter() - self.started
        return self.ready

    def ask(self, job: dict[str, Any], deadline: float) -> str | None:
        """Send the one job; the reply line, '' if the worker died, None on the deadline."""
        try:
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            return ""
        return self.read_line(deadline)

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
        return "oom", f"out of memory (data-memory limit): {stderr[-400:]}"
    if returncode == -signal.SIGKILL:
        return "oom", "killed by SIGKILL (most likely the memory limit)"
    return "crashed", f"worker died with exit code {returncode}: {stderr[-600:]}"


class SandboxPool:
    """Runs jobs in fresh pre-started workers.  Use as a context manager or call close().

    Each job passes through two processes: a tracer (candidate code, untrusted) and a scorer
    (trusted code only); see `sandbox.worker`.  `isolation`: 'full' refuses to start unless every
    jail layer works here (`SandboxUnavailable` says what is missing and how to opt out); 'auto'
    jails where it can and records what each worker had; 'none' runs unjailed, recorded too.
    """

    def __init__(self, spares: int = 1, time_limit_s: float = 600.0, memory_limit_mb: int = 8192,
                 cpu_time_limit_s: float | None = None, env_extra: dict[str, str] | None = None,
                 compile_cache_dir: str | Path | None = None, isolation: str = "auto",
                 concurrency: int = 1):
        """`compile_cache_dir`: JAX's persistent compilation cache for the scorers.  Each worker is
        a fresh process, so without it a program compiled before is compiled again; with it a
        re-evaluation of an identical program (the warm start of every run, a candidate resumed
        after a kill, `workbench eval` of a stored program) loads its executable instead.  Only
        scorers, which run no candidate Python, can write it; tracers never see it.

        `concurrency`: how many jobs may run at once (`evaluate` is thread-safe); each running
        scorer gets its own accelerator slot where the machine has GPUs."""
        if isolation not in ("auto", "full", "none"):
            raise ValueError(f"isolation must be 'auto', 'full' or 'none', not {isolation!r}")
        available = probe()
        if isolation == "full" and not available.full:
            raise SandboxUnavailable(
                f"sandbox isolation is incomplete here ({available.summary()}: {available.reason}); "
                "run where user namespaces are allowed, or set sandbox.isolation: none to run "
                "candidates without the jail (recorded with every candidate)")
        self.isolation = "none" if isolation == "none" else "full"
        self.concurrency = max(1, concurrency)
        self.spares = max(1, spares, self.concurrency)
        self.slots: list[Slot] = scorer_slots(self.concurrency, visible_gpus())
        self._writable: tuple[Path, ...] = ()
        scorer_env: dict[str, str] = {}
        if compile_cache_dir is not None:
            cache = Path(compile_cache_dir).resolve()
            cache.mkdir(parents=True, exist_ok=True)
            scorer_env["JAX_COMPILATION_CACHE_DIR"] = str(cache)
            self._writable = (cache,)
        # the tracer only traces and lowers: the CPU serves it on any machine
        self._env = {"trace": {**(env_extra or {}), "JAX_PLATFORMS": "cpu"},
                     "score": {**(env_extra or {}), **scorer_env}}
        self.time_limit_s = time_limit_s
        self.memory_limit_mb = memory_limit_mb
        self.cpu_time_limit_s = cpu_time_limit_s
        self._idle: dict[str, list[_Worker]] = {"trace": [], "score": []}
        self._running = [0] * len(self.slots)  # jobs now scoring on each slot
        self._lock = threading.Lock()
        sweep_stale_dirs()
        self._fill()

    def worker_env(self, role: str, slot: int = 0) -> dict[str, str]:
        """The extra environment a `role` worker on `slot` is started with (over `scrubbed_env`)."""
        extra = dict(self._env[role])
        if role == "score":
            extra.update(self.slots[slot].env())
        return extra

    def _new(self, role: str, slot: int = 0) -> _Worker:
        return _Worker(role, self.worker_env(role, slot), self.isolation,
                       self._writable if role == "score" else (), slot)

    def _fill(self) -> None:
        """Top up the spares; a new scorer goes to the slot with the fewest workers."""
        for role, idle in self._idle.items():
            while len(idle) < self.spares:
                load = list(self._running)
                for w in idle:
                    load[w.slot] += 1
                slot = min(range(len(load)), key=load.__getitem__) if role == "score" else 0
                idle.append(self._new(role, slot))

    def _take(self, role: str) -> _Worker:
        """An idle worker (a scorer on the least busy slot), or a fresh one if none is idle."""
        with self._lock:
            idle = self._idle[role]
            if role == "score" and idle:
                worker = min(idle, key=lambda w: self._running[w.slot])
                idle.remove(worker)
            elif idle:
                worker = idle.pop(0)
            else:
                slot = min(range(len(self._running)), key=self._running.__getitem__)
                worker = self._new(role, slot if role == "score" else 0)
            if role == "score":
                self._running[worker.slot] += 1
        try:
            worker.wait_ready()
        except RuntimeError:
            worker = self._new(role, worker.slot)
            worker.wait_ready()
        return worker

    def _release(self, scorer: _Worker) -> None:
        with self._lock:
            self._running[scorer.slot] -= 1

    def evaluate(self, job: dict[str, Any], time_limit_s: float | None = None) -> SandboxResult:
        """Trace then score one job in fresh workers; never raises for a candidate's failure.

        The wall-clock limit covers both stages; the tracer's reply is the candidate's claim and
        can only be modules or a failure, the outcome and fitness come from the scorer."""
        limit = time_limit_s or self.time_limit_s
        t0 = time.perf_counter()
        scorer, tracer = self._take("score"), self._take("trace")
        wait_s = time.perf_counter() - t0
        with self._lock:
            self._fill()  # the replacements import JAX while this candidate runs
        job = {"cpu_time_limit_s": self.cpu_time_limit_s or limit * 2,
               "memory_limit_mb": self.memory_limit_mb, **job}
        t1, started_at = time.perf_counter(), time.time()
        deadline = t1 + limit
        isolation = {"trace": tracer.isolation.to_json(), "score": scorer.isolation.to_json()}
        try:
            result, reply = self._stage(tracer, {**job, "platform": scorer.ready["platform"]},
                                        deadline, limit)
            if result is None:
                result = _tracer_claim(reply)
            if result is None:
                scored, reply = self._stage(scorer, {**job, "exports": reply["exports"],
                                                     "trace_timings": reply.get("timings")},
                                            deadline, limit)
                result = scored or _result(reply)
        finally:
            tracer.kill()
            scorer.kill()
            self._release(scorer)
        result.timings = {**result.timings, "wait_s": wait_s,
                          "boot_s": max(tracer.boot_s, scorer.boot_s),
                          "eval_wall_s": time.perf_counter() - t1,
                          "started_at": started_at, "ended_at": time.time()}
        result.isolation = isolation
        return result

    @staticmethod
    def _stage(worker: _Worker, job: dict[str, Any], deadline: float,
               limit: float) -> tuple[SandboxResult | None, dict[str, Any]]:
        """(failure, {}) if the worker timed out, died or answered garbage; else (None, reply)."""
        line = worker.ask(job, deadline)
        if line is None:
            return SandboxResult("timeout", f"wall-clock limit of {limit:g} s exceeded; "
                                 "the candidate was killed"), {}
        if not line:
            try:
                worker.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            return SandboxResult(*_classify_death(worker.proc.returncode, worker.stderr_tail())), {}
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            reply = None
        if not isinstance(reply, dict):
            return SandboxResult("crashed", f"the {worker.role} worker answered garbage"), {}
        return None, reply

    def close(self) -> None:
        with self._lock:
            workers = [w for idle in self._idle.values() for w in idle]
            for idle in self._idle.values():
                idle.clear()
        for w in workers:
            w.kill()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _text(value: Any, limit: int = 2000) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _tracer_claim(reply: dict[str, Any]) -> SandboxResult | None:
    """A tracer's failure as a result; None when it delivered modules to score."""
    outcome = reply.get("outcome")
    if outcome == "traced" and isinstance(reply.get("exports"), list):
        return None
    if outcome in TRACER_FAILURES:
        return SandboxResult(outcome, _text(reply.get("reason")) or outcome)
    return SandboxResult("crashed", f"the program's process answered {str(outcome)[:40]!r}, which "
                         "only the trusted scorer may decide; nothing was scored")


def _result(reply: dict[str, Any]) -> SandboxResult:
    return SandboxResult(**{k: v for k, v in reply.items() if k in SandboxResult.__dataclass_fields__
                            and k != "isolation"})
