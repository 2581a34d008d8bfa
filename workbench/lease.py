"""Run ownership: the lease the process executing a run holds in its store's `owner` table.

The lease names its holder (host, PID, the process's start time, boot id) and carries a heartbeat
the holder refreshes (`workbench.runs.own_run`).  It is taken in one `BEGIN IMMEDIATE`
transaction, so two racing resumes cannot both win (`acquire` raises `RunOwned` naming the owner).
A lease is *held* while its owner lives: on the same host (and boot) while that PID exists, is not
a zombie and is the same process (start time); on another host while its heartbeat is younger
than `LEASE_STALE_S`.  A run whose status is `running` but whose lease is not held is reported as
`interrupted` by `RunStore.run_info()` (killed, or the machine rebooted) and can be resumed.

The functions take the `RunStore` they work on; `RunStore.acquire_lease()` and its siblings are
one-line calls of them.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from sandbox.stale_dirs import pid_alive

from .errors import WorkbenchError

LEASE_STALE_S = 30.0  # a lease of another host whose heartbeat is older than this is not held


class RunOwned(WorkbenchError):
    """The run is being executed by another live process (its lease is held)."""

    fix = ("wait for that process to end, stop it (the TUI's run view: s), or kill it; "
           "then `workbench resume RUN_DIR`")


# -- process identity ---------------------------------------------------------------------------
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


# -- the lease row of a store ---------------------------------------------------------------------
def read_owner(store: Any) -> dict[str, Any] | None:
    """The lease row (who executes or last executed the run), or None."""
    if store.schema_version < 2:
        return None
    rows = store._all("SELECT * FROM owner WHERE id = 1")  # noqa: SLF001 - the store's own table
    return dict(rows[0]) if rows else None


def acquire(store: Any, token: str | None) -> str:
    """Take the run for this process, atomically; `RunOwned` if a live process holds it.
    Returns the lease's token (`token` again when this process held it already)."""
    me = this_process()
    token = token or uuid.uuid4().hex
    now = time.time()
    with store.transaction():
        current = read_owner(store)
        if current is not None and current["token"] != token and lease_held(current, now):
            raise RunOwned(f"{store.run_dir} is already being run by {describe_owner(current)}")
        store._exec(  # noqa: SLF001
            "INSERT INTO owner (id, token, host, pid, boot_id, proc_start, since, heartbeat) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET token = excluded.token, "
            "host = excluded.host, pid = excluded.pid, boot_id = excluded.boot_id, "
            "proc_start = excluded.proc_start, since = excluded.since, heartbeat = excluded.heartbeat",
            (token, me["host"], me["pid"], me["boot_id"], me["proc_start"], now, now))
    store.emit("owner", {"host": me["host"], "pid": me["pid"]})
    return token


def heartbeat(store: Any, token: str | None) -> bool:
    """Refresh the lease `token`; False if it is no longer ours (taken over) or there is none."""
    if token is None:
        return False
    cur = store._exec("UPDATE owner SET heartbeat = ? WHERE id = 1 AND token = ?",  # noqa: SLF001
                      (time.time(), token))
    return cur.rowcount == 1


def release(store: Any, token: str | None) -> None:
    """Give the run up (a clean exit); a lease taken over by another process is left alone."""
    if token is not None:
        store._exec("DELETE FROM owner WHERE id = 1 AND token = ?", (token,))  # noqa: SLF001


def check_not_owned(store: Any, token: str | None) -> None:
    """`RunOwned` if a live process other than the holder of `token` holds the run."""
    current = read_owner(store)
    if current is not None and current["token"] != token and lease_held(current):
        raise RunOwned(f"{store.run_dir} is already being run by {describe_owner(current)}")

