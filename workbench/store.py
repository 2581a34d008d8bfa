"""The run store: one SQLite file per run directory (`RUN_DIR/run.sqlite`).

Everything a run produces lands here as it happens, so that a killed run loses nothing already
recorded and the TUI and report can read a live run: candidates (including failed ones) with their
parents and outcomes, per-environment evaluations, metric time series, the conversation with a
model, an append-only event stream, artefacts on disk, and small pieces of method state.

WAL mode lets readers (TUI, report) follow a run while its writer works.  A reader opens the file
read-only (`RunStore(dir, readonly=True)`: SQLite's `mode=ro`, and `query_only`), so it can never
write to a live run: no schema script, no inserts.  Steering requests from a reader go through
`RunStore.writer()`, a short-lived writable connection (see `workbench.control`).

`SCHEMA_VERSION` is checked on every open: a store of a newer workbench, or of an older schema
that cannot be migrated, raises `StoreVersionError` saying what to do; an older schema that can
be migrated is migrated by the first writer that opens it (readers read it as it is).

Ownership: the process executing a run holds a lease in the `owner` table (host, PID, the
process's start time, boot id, a heartbeat refreshed by `workbench.runs`), taken in one
`BEGIN IMMEDIATE` transaction so two racing resumes cannot both win (`acquire_lease` raises
`RunOwned` naming the owner).  A lease is *held* while its owner lives: on the same host (and
boot) while that PID exists, is not a zombie and is the same process (start time); on another
host while its heartbeat is younger than `LEASE_STALE_S`.  A run whose status is `running` but
whose lease is not held is reported as `interrupted` by `run_info()` (killed, or the machine
rebooted) and can be resumed.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sandbox.pool import pid_alive

from .errors import WorkbenchError

SCHEMA_VERSION = 2
DB_NAME = "run.sqlite"
RUN_STATUSES = ("created", "running", "stopped", "finished", "failed")
INTERRUPTED = "interrupted"  # shown, never stored: `running` whose owner is gone
LEASE_STALE_S = 30.0  # a lease of another host whose heartbeat is older than this is not held
CANDIDATE_KINDS = ("warm_start", "code", "symbolic", "network")
OUTCOMES = ("pending", "ok", "invalid", "forbidden", "crashed", "timeout", "oom", "nan",
            "no_code", "duplicate")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS run (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL, family TEXT NOT NULL, method TEXT NOT NULL,
    status TEXT NOT NULL, config TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL,
    cost_usd REAL NOT NULL DEFAULT 0, env_steps INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    method TEXT NOT NULL,             -- es / distill / symbolic / llm / mutation / user
    kind TEXT NOT NULL,               -- warm_start / code / symbolic / network
    label TEXT NOT NULL DEFAULT '',
    source TEXT,                      -- program text or expression (NULL for networks)
    params_path TEXT,                 -- .npz relative to the run directory (networks)
    hsize INTEGER,
    parents TEXT NOT NULL DEFAULT '[]',  -- JSON list of candidate ids
    generation INTEGER NOT NULL DEFAULT 0,
    source_hash TEXT,                 -- normalised-AST / expression hash for dedup
    outcome TEXT NOT NULL DEFAULT 'pending',
    reason TEXT NOT NULL DEFAULT '',
    fitness REAL,                     -- meta-train fitness (mean normalised return)
    test_fitness REAL,                -- meta-test fitness (held-out envs)
    info TEXT NOT NULL DEFAULT '{}'   -- JSON: thought, model, tokens, timings ...
);
CREATE INDEX IF NOT EXISTS candidates_hash ON candidates(source_hash);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    created REAL NOT NULL,
    env TEXT NOT NULL, split TEXT NOT NULL,      -- split: train / test
    seeds INTEGER NOT NULL, seed INTEGER NOT NULL,
    return_mean REAL, return_stderr REAL, normalized REAL,
    sps REAL, compile_s REAL, env_steps INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL, value REAL
);
CREATE INDEX IF NOT EXISTS metrics_name ON metrics(name, step);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS artefacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL,
    info TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    boot_id TEXT NOT NULL DEFAULT '', proc_start TEXT NOT NULL DEFAULT '',
    since REAL NOT NULL, heartbeat REAL NOT NULL
);
"""
# schema version -> the statements that bring a store of that version to the next one
_MIGRATIONS = {
    1: """CREATE TABLE IF NOT EXISTS owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    boot_id TEXT NOT NULL DEFAULT '', proc_start TEXT NOT NULL DEFAULT '',
    since REAL NOT NULL, heartbeat REAL NOT NULL
)""",
}


def _statements(script: str) -> list[str]:
    return [st for st in script.split(";") if st.strip()]


class StoreVersionError(WorkbenchError):
    """A run store this workbench cannot read or migrate (newer, or of an unknown schema)."""


class RunOwned(WorkbenchError):
    """The run is being executed by another live process (its lease is held)."""

    fix = ("wait for that process to end, stop it (the TUI's run view: s), or kill it; "
           "then `workbench resume RUN_DIR`")


# -- process identity (for leases) --------------------------------------------------------------
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of a live PID, or None if unknown."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("X", "")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], fields[19]


def this_process() -> dict[str, Any]:
    stat = _proc_stat(os.getpid())
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot_id": _boot_id(),
            "proc_start": stat[1] if stat else ""}


def lease_held(owner: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether the process named by an `owner` row is still alive (see the module docstring)."""
    if not owner:
        return False
    me = this_process()
    if owner["host"] == me["host"] and (not owner["boot_id"] or not me["boot_id"]
                                        or owner["boot_id"] == me["boot_id"]):
        if not pid_alive(int(owner["pid"])):
            return False
        stat = _proc_stat(int(owner["pid"]))
        if stat is None:
            return True
        state, start = stat
        if state in ("Z", "X"):  # killed, not yet reaped by its parent (e.g. the TUI)
            return False
        return not (owner["proc_start"] and start and start != owner["proc_start"])  # PID reused
    if owner["host"] == me["host"]:
        return False  # the machine rebooted since
    return (now or time.time()) - float(owner["heartbeat"]) <= LEASE_STALE_S


def describe_owner(owner: dict[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner["since"])))
    return (f"PID {owner['pid']} on {owner['host']} since {since} "
            f"(heartbeat {max(0.0, time.time() - float(owner['heartbeat'])):.0f} s ago)")


@dataclass
class CandidateRow:
    id: int
    created: float
    method: str
    kind: str
    label: str
    source: str | None
    params_path: str | None
    hsize: int | None
    parents: list[int]
    generation: int
    source_hash: str | None
    outcome: str
    reason: str
    fitness: float | None
    test_fitness: float | None
    info: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "CandidateRow":
        d = dict(row)
        d["parents"] = json.loads(d["parents"])
        d["info"] = json.loads(d["info"])
        return cls(**d)


class RunStore:
    """Thread-safe access to one run's SQLite file."""

    def __init__(self, run_dir: str | Path, *, readonly: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.readonly = readonly
        self._lock = threading.RLock()
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._lease_token: str | None = None
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"{self.run_dir} is not a run directory (no {DB_NAME})")
            self._conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True,
                                         check_same_thread=False, timeout=30, isolation_level=None)
            self._conn.execute("PRAGMA query_only=ON")
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30,
                                         isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        try:
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self.schema_version = self._open_schema()
        except BaseException:
            self._conn.close()
            raise

    # -- schema -----------------------------------------------------------------------------
    def _stored_version(self) -> int | None:
        """The stored schema version; None for an empty file (a store not created yet)."""
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return None
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() \
            if "meta" in tables else None
        try:
            version = int(row[0]) if row else 0
        except ValueError:
            version = 0
        if version < 1:
            raise StoreVersionError(
                f"{self.path} is not a run store of any schema this workbench knows "
                f"(schema version {row[0] if row else 'missing'}); it cannot be migrated",
                fix="open it with the workbench that wrote it, or start a new run")
        return version

    def _open_schema(self) -> int:
        version = self._stored_version()
        if version is not None and version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{self.path} was written by a newer workbench (store schema {version}; this "
                f"one reads up to {SCHEMA_VERSION})",
                fix="upgrade the workbench (pip install -U the package) to open this run")
        if self.readonly:
            if version is None:  # the writer is creating it right now: the caller retries
                raise sqlite3.OperationalError(f"{self.path} is being created (no tables yet)")
            return version
        if version == SCHEMA_VERSION:
            return version  # nothing to write: a writer opening a current store never writes
        with self.transaction():
            version = self._stored_version()  # again, under the write lock
            if version is None:
                for st in _statements(_SCHEMA):
                    self._conn.execute(st)
            else:
                for v in range(version, SCHEMA_VERSION):
                    if v not in _MIGRATIONS:
                        raise StoreVersionError(
                            f"{self.path} has store schema {version}, which this workbench "
                            f"(schema {SCHEMA_VERSION}) cannot migrate",
                            fix="open it with the workbench that wrote it, or start a new run")
                    for st in _statements(_MIGRATIONS[v]):
                        self._conn.execute(st)
            self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT(key) "
                               "DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
        return SCHEMA_VERSION

    @contextmanager
    def transaction(self) -> Iterator["RunStore"]:
        """One IMMEDIATE transaction (cross-process read-modify-write); nested calls join it."""
        with self._lock:
            if self._conn.in_transaction:
                yield self
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def writer(self) -> Iterator["RunStore"]:
        """This store if it is writable, else a short-lived writable one on the same file (what a
        reader such as the TUI uses for the few steering writes it makes)."""
        if not self.readonly:
            yield self
            return
        other = RunStore(self.run_dir)
        try:
            yield other
        finally:
            other.close()

    # -- plumbing ---------------------------------------------------------------------------
    def _exec(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, tuple(params))

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the run ----------------------------------------------------------------------------
    def init_run(self, name: str, family: str, method: str, config: dict[str, Any]) -> None:
        now = time.time()
        self._exec("INSERT OR IGNORE INTO run (id, name, family, method, status, config, created, "
                   "updated) VALUES (1, ?, ?, ?, 'created', ?, ?, ?)",
                   (name, family, method, json.dumps(config), now, now))

    def update_config(self, config: dict[str, Any]) -> None:
        """Replace the stored config (a resume that extends the budget, e.g. more generations)."""
        self._exec("UPDATE run SET config = ?, updated = ? WHERE id = 1", (json.dumps(config), time.time()))

    def run_info(self) -> dict[str, Any] | None:
        """The run's record; `status` is `interrupted` for a `running` run whose owner is gone
        (`stored_status` keeps what the table says), `owner` the lease row or None."""
        rows = self._all("SELECT * FROM run WHERE id = 1")
        if not rows:
            return None
        info = dict(rows[0])
        info["config"] = json.loads(info["config"])
        owner = self.owner()
        info["stored_status"] = info["status"]
        info["owner"] = owner
        if info["status"] == "running" and owner is not None and not lease_held(owner):
            info["status"] = INTERRUPTED
        return info

    # -- ownership ----------------------------------------------------------------------------
    def owner(self) -> dict[str, Any] | None:
        """The lease row (who executes or last executed this run), or None."""
        if self.schema_version < 2:
            return None
        rows = self._all("SELECT * FROM owner WHERE id = 1")
        return dict(rows[0]) if rows else None

    def acquire_lease(self) -> str:
        """Take this run for this process, atomically; `RunOwned` if a live process holds it."""
        me = this_process()
        token = self._lease_token or uuid.uuid4().hex
        now = time.time()
        with self.transaction():
            current = self.owner()
            if current is not None and current["token"] != token and lease_held(current, now):
                raise RunOwned(f"{self.run_dir} is already being run by {describe_owner(current)}")
            self._conn.execute(
                "INSERT INTO owner (id, token, host, pid, boot_id, proc_start, since, heartbeat) "
                "VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET token = excluded.token, "
                "host = excluded.host, pid = excluded.pid, boot_id = excluded.boot_id, "
                "proc_start = excluded.proc_start, since = excluded.since, heartbeat = excluded.heartbeat",
                (token, me["host"], me["pid"], me["boot_id"], me["proc_start"], now, now))
        self._lease_token = token
        self.emit("owner", {"host": me["host"], "pid": me["pid"]})
        return token

    def heartbeat(self) -> bool:
        """Refresh this process's lease; False if it is no longer ours (taken over)."""
        if self._lease_token is None:
            return False
        cur = self._exec("UPDATE owner SET heartbeat = ? WHERE id = 1 AND token = ?",
                         (time.time(), self._lease_token))
        return cur.rowcount == 1

    def release_lease(self) -> None:
        """Give the run up (a clean exit); a lease taken over by another process is left alone."""
        if self._lease_token is None:
            return
        self._exec("DELETE FROM owner WHERE id = 1 AND token = ?", (self._lease_token,))
        self._lease_token = None

    def check_not_owned(self) -> None:
        """`RunOwned` if another live process holds this run (a check before writing to it)."""
        current = self.owner()
        if current is not None and current["token"] != self._lease_token and lease_held(current):
            raise RunOwned(f"{self.run_dir} is already being run by {describe_owner(current)}")

    def set_status(self, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self._exec("UPDATE run SET status = ?, updated = ? WHERE id = 1", (status, time.time()))
        self.emit("status", {"status": status})

    def add_cost(self, usd: float = 0.0, env_steps: int = 0) -> None:
        self._exec("UPDATE run SET cost_usd = cost_usd + ?, env_steps = env_steps + ?, updated = ? "
                   "WHERE id = 1", (usd, int(env_steps), time.time()))

    # -- candidates -------------------------------------------------------------------------
    def add_candidate(self, *, method: str, kind: str, label: str = "", source: str | None = None,
                      params_path: str | None = None, hsize: int | None = None,
                      parents: Iterable[int] = (), generation: int = 0,
                      source_hash: str | None = None, info: dict[str, Any] | None = None) -> int:
        if kind not in CANDIDATE_KINDS:
            raise ValueError(f"unknown candidate kind {kind!r}")
        cur = self._exec(
            "INSERT INTO candidates (created, method, kind, label, source, params_path, hsize, "
            "parents, generation, source_hash, info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (time.time(), method, kind, label, source, params_path, hsize,
             json.dumps(list(parents)), generation, source_hash, json.dumps(info or {})))
        cid = int(cur.lastrowid)
        self.emit("candidate", {"id": cid, "kind": kind, "generation": generation})
        return cid

    def finish_candidate(self, candidate_id: int, outcome: str, reason: str = "",
                         fitness: float | None = None, test_fitness: float | None = None,
                         info: dict[str, Any] | None = None) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        with self._lock:
            if info:
                self._merge_info(candidate_id, info)
            self._conn.execute("UPDATE candidates SET outcome = ?, reason = ?, fitness = ?, "
                               "test_fitness = ? WHERE id = ?",
                               (outcome, reason, fitness, test_fitness, candidate_id))
        self.emit("outcome", {"id": candidate_id, "outcome": outcome, "fitness": fitness})

    def merge_info(self, candidate_id: int, info: dict[str, Any]) -> None:
        """Add keys to a candidate's info without touching its outcome or fitness."""
        with self._lock:
            self._merge_info(candidate_id, info)

    def _merge_info(self, candidate_id: int, info: dict[str, Any]) -> None:
        old = json.loads(self._conn.execute(
            "SELECT info FROM candidates WHERE id = ?", (candidate_id,)).fetchone()[0])
        old.update(info)
        self._conn.execute("UPDATE candidates SET info = ? WHERE id = ?", (json.dumps(old), candidate_id))

    def candidate(self, candidate_id: int) -> CandidateRow:
        rows = self._all("SELECT * FROM candidates WHERE id = ?", (candidate_id,))
        if not rows:
            raise KeyError(f"no candidate {candidate_id} in {self.run_dir}")
        return CandidateRow.from_row(rows[0])

    def candidates(self, outcome: str | None = None) -> list[CandidateRow]:
        if outcome:
            rows = self._all("SELECT * FROM candidates WHERE outcome = ? ORDER BY id", (outcome,))
        else:
            rows = self._all("SELECT * FROM candidates ORDER BY id")
        return [CandidateRow.from_row(r) for r in rows]

    def best_candidates(self, k: int = 5) -> list[CandidateRow]:
        rows = self._all("SELECT * FROM candidates WHERE outcome = 'ok' AND fitness IS NOT NULL "
                         "ORDER BY fitness DESC, id LIMIT ?", (k,))
        return [CandidateRow.from_row(r) for r in rows]

    def find_by_hash(self, source_hash: str) -> CandidateRow | None:
        rows = self._all("SELECT * FROM candidates WHERE source_hash = ? ORDER BY id LIMIT 1",
                         (source_hash,))
        return CandidateRow.from_row(rows[0]) if rows else None

    # -- evaluations, metrics, messages, events, artefacts, state ----------------------------
    def add_evaluation(self, candidate_id: int, env: str, split: str, stats: dict[str, float],
                       seeds: int, seed: int, env_steps: int = 0) -> None:
        self._exec("INSERT INTO evaluations (candidate_id, created, env, split, seeds, seed, "
                   "return_mean, return_stderr, normalized, sps, compile_s, env_steps) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (candidate_id, time.time(), env, split, seeds, seed, stats.get("return_mean"),
                    stats.get("return_stderr"), stats.get("normalized"), stats.get("sps"),
                    stats.get("compile_s"), int(env_steps)))

    def evaluations(self, candidate_id: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all(
            "SELECT * FROM evaluations WHERE candidate_id = ? ORDER BY id", (candidate_id,))]

    def log_metrics(self, step: int, values: dict[str, float]) -> None:
        now = time.time()
        with self._lock:
            self._conn.executemany("INSERT INTO metrics (created, step, name, value) VALUES (?, ?, ?, ?)",
                                   [(now, int(step), k, _finite_or_none(v)) for k, v in values.items()])
        self.emit("metrics", {"step": int(step), **{k: _finite_or_none(v) for k, v in values.items()}})

    def metric(self, name: str) -> list[tuple[int, float | None]]:
        return [(r["step"], r["value"]) for r in self._all(
            "SELECT step, value FROM metrics WHERE name = ? ORDER BY step, id", (name,))]

    def metric_names(self) -> list[str]:
        return [r[0] for r in self._all("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def add_message(self, role: str, content: str, info: dict[str, Any] | None = None) -> int:
        cur = self._exec("INSERT INTO messages (created, role, content, info) VALUES (?, ?, ?, ?)",
                         (time.time(), role, content, json.dumps(info or {})))
        self.emit("message", {"id": int(cur.lastrowid), "role": role})
        return int(cur.lastrowid)

    def messages(self) -> list[dict[str, Any]]:
        out = []
        for r in self._all("SELECT * FROM messages ORDER BY id"):
            d = dict(r)
            d["info"] = json.loads(d["info"])
            out.append(d)
        return out

    def emit(self, kind: str, payload: dict[str, Any] | None = None) -> int:
        cur = self._exec("INSERT INTO events (created, kind, payload) VALUES (?, ?, ?)",
                         (time.time(), kind, json.dumps(payload or {}, default=str)))
        for listener in self._listeners:
            listener(kind, payload or {})
        return int(cur.lastrowid)

    def add_listener(self, fn: Callable[[str, dict[str, Any]], None]) -> None:
        """Call `fn(kind, payload)` after every event of this process (mirrors such as wandb)."""
        self._listeners.append(fn)

    def events(self, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        rows = self._all("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in rows]

    def add_artefact(self, name: str, path: str | Path, info: dict[str, Any] | None = None) -> None:
        rel = str(Path(path).resolve().relative_to(self.run_dir.resolve())) \
            if Path(path).resolve().is_relative_to(self.run_dir.resolve()) else str(path)
        self._exec("INSERT INTO artefacts (created, name, path, info) VALUES (?, ?, ?, ?)",
                   (time.time(), name, rel, json.dumps(info or {})))
        self.emit("artefact", {"name": name, "path": rel})

    def artefacts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._all("SELECT * FROM artefacts ORDER BY id")]

    def set_state(self, key: str, value: Any) -> None:
        self._exec("INSERT INTO state (key, value, updated) VALUES (?, ?, ?) ON CONFLICT(key) "
                   "DO UPDATE SET value = excluded.value, updated = excluded.updated",
                   (key, json.dumps(value), time.time()))

    def get_state(self, key: str, default: Any = None) -> Any:
        rows = self._all("SELECT value FROM state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default


def _finite_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None
