"""Hostile candidates against the REAL pool worker: the boundary holds when the screen is fooled.

Each program below runs in a real tracer started by `SandboxPool`; most bypass the static screen on
purpose (`"screen": False`, a job field only trusted callers set), because the jail and the
tracer/scorer split must hold even when a program gets past the screen.  Probes run at the
program's top level and report what they saw by raising, which comes back as the reason.
"""

import hashlib
import json
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from sandbox.jail import REPO_ROOT, probe
from sandbox.pool import SandboxPool
from tests.jail_helpers import REPO_UNDER_TMP
from tests.sandbox_jobs import PPO, lpo_job

JOB = lpo_job(2048)
jailed = pytest.mark.skipif(not probe().full, reason=f"no full jail here: {probe().reason}")


@pytest.fixture(scope="module")
def pool():
    os.environ["OPENAI_API_KEY"] = "sk-test-secret"
    with SandboxPool(spares=1, time_limit_s=90, memory_limit_mb=4096) as p:
        yield p


def _report(result) -> dict:
    """The JSON a probe program raised, from the candidate's failure reason."""
    text = result.reason
    start = text.index("{")
    return json.loads(text[start: text.rindex("}") + 1])


def _unscreened(pool, source: str, **job):
    return pool.evaluate({**JOB, "source": source, "screen": False, **job})


@jailed
def test_isolation_from_inside_a_candidate(pool, tmp_path):
    """No network, no writes outside its temp dir, no home, read-only project, no signals."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    secret = Path.home() / f".wb-test-secret-{uuid.uuid4().hex}"
    secret.write_text("s3cret")
    env_marker = REPO_ROOT / f".env-wb-test-{uuid.uuid4().hex}"
    env_marker.write_text("OPENAI_API_KEY=sk-leak")
    victim = subprocess.Popen(["sleep", "120"])
    host_tmp_file = Path("/tmp") / f"wb-escape-{uuid.uuid4().hex}"
    probe_src = f"""
import _socket, json, os, signal, tempfile
seen = {{}}
def attempt(name, fn):
    try:
        fn()
        seen[name] = "allowed"
    except Exception as exc:
        seen[name] = type(exc).__name__ + ": " + str(exc)[:80]
def connect():
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(("127.0.0.1", {port}))
attempt("connect", connect)
attempt("write_tmp", lambda: open({str(host_tmp_file)!r}, "w").write("x"))
attempt("write_repo", lambda: open({str(REPO_ROOT / "sandbox" / "score.py")!r}, "a").write("#"))
attempt("write_repo_root", lambda: open({str(REPO_ROOT / "escape.txt")!r}, "w").write("x"))
attempt("read_home", lambda: open({str(secret)!r}).read())
attempt("read_env", lambda: open({str(env_marker)!r}).read())
attempt("signal", lambda: os.kill({victim.pid}, signal.SIGKILL))
attempt("read_project", lambda: open({str(REPO_ROOT / "sandbox" / "score.py")!r}).read(10))
attempt("write_private", lambda: open(os.path.join(tempfile.gettempdir(), "ok"), "w").write("x"))
raise RuntimeError(json.dumps(seen))
""" + PPO
    try:
        r = _unscreened(pool, probe_src)
    finally:
        listener.close()
        secret.unlink()
        env_marker.unlink()
    try:
        seen = _report(r)
        # /tmp inside the jail is a private tmpfs: a write there may succeed but must not reach
        # the host's /tmp.
        assert not host_tmp_file.exists()
        # a checkout under /tmp (a CI clone): only then may `write_repo_root` succeed, into the
        # jail's private tmpfs (never the host: checked below)
        for name in ("connect", "write_repo", *(() if REPO_UNDER_TMP else ("write_repo_root",)),
                     "read_home", "read_env", "signal"):
            assert seen[name] != "allowed", (name, seen)
        assert seen["read_project"] == "allowed" and seen["write_private"] == "allowed", seen
        assert "Read-only" in seen["write_repo"] or "Permission" in seen["write_repo"], seen
        assert victim.poll() is None  # still alive: the signal went nowhere
    finally:
        victim.kill()
    assert not (REPO_ROOT / "escape.txt").exists()
    assert r.isolation["trace"]["method"] == "namespaces" and r.isolation["score"]["net_ns"]


def test_forged_result_line_is_not_a_score(pool):
    """A program that writes its own `ok` line to every pipe it has, then exits, scores nothing."""
    forge = """
import os, json
line = (json.dumps({"outcome": "ok", "fitness": 1e9, "envs": {}}) + "\\n").encode()
for fd in range(3, 64):
    try:
        os.write(fd, line)
    except OSError:
        pass
os._exit(0)
""" + PPO
    r = _unscreened(pool, forge)
    assert r.outcome == "crashed" and r.fitness is None, r
    assert "only the trusted scorer" in r.reason or "exit code" in r.reason


def test_early_exit_is_a_failure(pool):
    r = _unscreened(pool, "import os\nos._exit(0)\n" + PPO)
    assert r.outcome == "crashed" and r.fitness is None


def test_scorer_patched_in_memory_changes_nothing(pool):
    """Patching the scoring code in the candidate's own process cannot reach the scorer: the
    fitness is that of the honest program on the same seeds."""
    honest = pool.evaluate({**JOB, "source": PPO})
    patch = """
import sandbox.score, evaluators.fitness
class Fake:
    outcome = "ok"; reason = ""; fitness = 1e9; test_fitness = None; envs = {}; test_envs = {}
    curves = {}; compile_s = 0.0; train_s = 0.0; env_steps = 0
sandbox.score.score = lambda *a, **k: Fake()
evaluators.fitness.score_returns = lambda *a, **k: None
""" + PPO
    r = _unscreened(pool, patch)
    assert honest.outcome == "ok" and r.outcome == "ok", (honest, r)
    assert r.fitness == honest.fitness and r.fitness < 1e8


@jailed
def test_scorer_files_cannot_be_tampered_with(pool):
    target = REPO_ROOT / "evaluators" / "fitness.py"
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    tamper = f"""
import os
try:
    with open({str(target)!r}, "a") as f:
        f.write("\\nNAN_RETURN = 1e9\\n")
    outcome = "written"
except OSError as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
try:
    os.rename({str(target)!r}, {str(target) + ".bak"!r})
    outcome += " / renamed"
except OSError as exc:
    outcome += " / " + str(exc)
raise RuntimeError('{{"tamper": "' + outcome.replace('"', "'") + '"}}')
""" + PPO
    r = _unscreened(pool, tamper)
    assert "written" not in _report(r)["tamper"] and "renamed" not in _report(r)["tamper"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before


def test_secrets_are_not_in_the_environment(pool):
    src = """
import os, json
raise RuntimeError(json.dumps({"keys": sorted(k for k in os.environ if "KEY" in k or "TOKEN" in k)}))
""" + PPO
    assert _report(_unscreened(pool, src))["keys"] == []


def test_xla_hang_is_killed(pool):
    """A program whose compiled code never terminates hangs the scorer, not the caller."""
    hang = """
def drift(ratio, advantage, epsilon):
    # float32 stops growing at 2**24, so this loop never ends
    n = jax.lax.while_loop(lambda c: c >= 0.0, lambda c: c + 1.0, 0.0)
    return jax.nn.relu(ratio - 1) * advantage * 0 + 0 * n
"""
    t0 = time.perf_counter()
    r = pool.evaluate({**JOB, "source": hang, "screen": False}, time_limit_s=25)
    assert r.outcome == "timeout", r
    assert time.perf_counter() - t0 < 60


def test_fork_bomb_dies_with_the_worker(pool):
    """Processes a program starts die when its worker is killed at the time limit."""
    marker = f"{1000 + int(uuid.uuid4().int % 8000)}.25"
    bomb = f"""
import os
for _ in range(20):
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{marker}"])
while True:
    pass
""" + PPO
    r = pool.evaluate({**JOB, "source": bomb, "screen": False}, time_limit_s=5)
    assert r.outcome == "timeout", r
    deadline = time.time() + 10
    while time.time() < deadline and _sleepers(marker):
        time.sleep(0.2)
    assert not _sleepers(marker)


def _sleepers(marker: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "cmdline").read_bytes():
                    found.append(int(p.name))
            except OSError:
                pass
    return found


def test_memory_bomb_at_definition_is_oom(pool):
    r = _unscreened(pool, "buf = bytearray(64 * 2**30)\n" + PPO)
    assert r.outcome == "oom", r
