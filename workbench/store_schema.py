"""The run store's schema: the SQLite tables, the migrations between schema versions and the
candidate row type.  `workbench.store` opens, creates and migrates stores with it."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 2
CANDIDATE_KINDS = ("warm_start", "code", "symbolic", "network")
OUTCOMES = ("pending", "ok", "invalid", "forbidden", "crashed", "timeout", "oom", "nan",
            "no_code", "duplicate")

SCHEMA = """
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
MIGRATIONS = {
    1: """CREATE TABLE IF NOT EXISTS owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    boot_id TEXT NOT NULL DEFAULT '', proc_start TEXT NOT NULL DEFAULT '',
    since REAL NOT NULL, heartbeat REAL NOT NULL
)""",
}


def statements(script: str) -> list[str]:
    return [st for st in script.split(";") if st.strip()]


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
