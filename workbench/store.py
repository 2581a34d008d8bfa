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

Ownership (who executes the run, and whether it still lives) is `workbench.lease`; a run whose
status is `running` but whose lease is not held reads as `interrupted` in `run_info()`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from . import lease
from .errors import WorkbenchError
from .store_schema import (CANDIDATE_KINDS, MIGRATIONS, OUTCOMES, SCHEMA, SCHEMA_VERSION,
                           CandidateRow, statements)

__all__ = ["CANDIDATE_KINDS", "DB_NAME", "INTERRUPTED", "OUTCOMES", "RUN_STATUSES", "SCHEMA_VERSION",
           "CandidateRow", "RunStore", "StoreVersionError"]

DB_NAME = "run.sqlite"
RUN_STATUSES = ("created", "running", "stopped", "finished", "failed")
INTERRUPTED = "interrupted"  # shown, never stored: `running` whose owner is gone


class StoreVersionError(WorkbenchError):
    """A run store this workbench cannot read or migrate (newer, or of an unknown schema)."""


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
                for st in statements(SCHEMA):
                    self._conn.execute(st)
            else:
                for v in range(version, SCHEMA_VERSION):
                    if v not in MIGRATIONS:
                        raise StoreVersionError(
                            f"{self.path} has store schema {version}, which this workbench "
                            f"(schema {SCHEMA_VERSION}) cannot migrate",
                            fix="open it with the workbench that wrote it, or start a new run")
                    for st in statements(MIGRATIONS[v]):
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
        if info["status"] == "running" and owner is not None and not lease.lease_held(owner):
            info["status"] = INTERRUPTED
        return info

    # -- ownership (workbench.lease) -----------------------------------------------------------
    def owner(self) -> dict[str, Any] | None:
        """The lease row (who executes or last executed this run), or None."""
        return lease.read_owner(self)

    def acquire_lease(self) -> str:
        """Take this run for this process, atomically; `RunOwned` if a live process holds it."""
        self._lease_token = lease.acquire(self, self._lease_token)
        return self._lease_token

    def heartbeat(self) -> bool:
        """Refresh this process's lease; False if it is no longer ours (taken over)."""
        return lease.heartbeat(self, self._lease_token)

    def release_lease(self) -> None:
        """Give the run up (a clean exit); a lease taken over by another process is left alone."""
        lease.release(self, self._lease_token)
        self._lease_token = None

    def check_not_owned(self) -> None:
        """`RunOwned` if another live process holds this run (a check before writing to it)."""
        lease.check_not_owned(self, self._lease_token)

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

    def candidates_with_info(self, key: str) -> list[CandidateRow]:
        """The candidates whose info has a non-null `key` (e.g. a held-out re-score), by id."""
        return [CandidateRow.from_row(r) for r in self._all(
            "SELECT * FROM candidates WHERE json_extract(info, ?) IS NOT NULL ORDER BY id",
            (f'$."{key}"',))]

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
