"""Steering a running run through its store: pause, resume, stop, injected messages, approvals.

This is the one steering protocol: the TUI, the CLI and every method (the discovery agent, its
tool loop, ES, distillation, symbolic) use these functions and nothing else.  The UI and the
process running a method share nothing but the run's SQLite store, so the whole protocol lives in
the store's `state` table plus `events`:

    state key                    written by       meaning
    control.paused               UI               true while the user wants the run paused
    control.stop                 UI               a one-shot stop request (cleared when honoured)
    control.inbox                UI -> method     ids of user messages not yet taken by the method
    <key given to take_messages> method           ids taken for one step (kept until it re-runs)
    control.approval.<cid>       method / UI      {"status": "pending"|"approve"|"edit"|"reject",
                                                   "source": edited text or null}

What a method's loop must do (the LLM/mutation agent and any long method):

* call `checkpoint(store)` at safe points, i.e. right after its own state is saved (between
  generations / proposals).  It returns at once when nothing is requested, blocks while the run is
  paused, and raises `StopRequested` when a stop was requested.  `StopRequested` is a
  `KeyboardInterrupt`, so `workbench.runs.execute` records the run as `stopped` and
  `workbench resume RUN_DIR` continues it later, exactly as after Ctrl-C.
* call `take_messages(store)` before building the next prompt and add the returned texts to the
  conversation as user turns.  They are already stored in `store.messages` (role "user"), so do
  not store them again.
* with approval mode on (`llm.approval`), store the candidate first (`add_candidate`, outcome
  pending), then call `await_approval(store, candidate_id)`; it blocks until the user decides and
  returns a `Decision`.  On "reject" record the candidate with `finish_candidate(..., "invalid",
  reason=decision.reason)`; on "edit" evaluate `decision.source` instead of the proposal.
* optionally call `report_progress(store, done, total, label)` while an evaluation runs so the
  UI can show a progress bar.

Everything here is a plain function over a `RunStore`; writes that read-modify-write one key run
in an IMMEDIATE transaction so two processes cannot lose each other's updates.  The UI's requests
accept a read-only store (the TUI's): they write through `RunStore.writer()`, a short-lived
writable connection, so the reader itself never writes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .store import RunStore

PAUSED = "control.paused"
STOP = "control.stop"
INBOX = "control.inbox"
APPROVAL = "control.approval."
DECISIONS = ("approve", "edit", "reject")


class StopRequested(KeyboardInterrupt):
    """Raised by `checkpoint` when the user asked the run to stop (its state is saved)."""


@dataclass(frozen=True)
class Decision:
    """The user's verdict on a pending candidate; `source` is the text to evaluate on 'edit'."""

    candidate_id: int
    decision: str
    source: str | None = None
    reason: str = ""


# -- requests made by the UI --------------------------------------------------------------------
def request_pause(store: RunStore) -> None:
    """Ask the run to pause at its next `checkpoint`."""
    with store.writer() as w, w.transaction():
        w.set_state(PAUSED, True)
        w.emit("control", {"request": "pause"})


def request_resume(store: RunStore) -> None:
    """Lift a pause; a blocked `checkpoint` returns within its poll interval."""
    with store.writer() as w, w.transaction():
        w.set_state(PAUSED, False)
        w.emit("control", {"request": "resume"})


def request_stop(store: RunStore) -> None:
    """Ask the run to stop at its next `checkpoint` (a paused run stops too)."""
    with store.writer() as w, w.transaction():
        w.set_state(STOP, True)
        w.emit("control", {"request": "stop"})


def clear_requests(store: RunStore) -> None:
    """Forget pause and stop requests; the UI calls this before it resumes a stopped run."""
    with store.writer() as w, w.transaction():
        w.set_state(PAUSED, False)
        w.set_state(STOP, False)


def is_paused(store: RunStore) -> bool:
    return bool(store.get_state(PAUSED, False))


def stop_requested(store: RunStore) -> bool:
    return bool(store.get_state(STOP, False))


def inject_message(store: RunStore, text: str) -> int:
    """Store a user message in the conversation and queue it for the method; returns its id."""
    text = text.strip()
    if not text:
        raise ValueError("message is empty; type some text before sending")
    with store.writer() as w, w.transaction():  # stored and queued together, or neither
        mid = w.add_message("user", text, {"source": "tui"})
        w.set_state(INBOX, list(w.get_state(INBOX, [])) + [mid])
    return mid


def pending_approvals(store: RunStore) -> list[int]:
    """Candidate ids waiting for the user's decision, oldest first."""
    rows = store._all("SELECT key, value FROM state WHERE key LIKE ?",  # noqa: SLF001
                      (APPROVAL + "%",))
    ids = [int(r["key"][len(APPROVAL):]) for r in rows
           if json.loads(r["value"]).get("status") == "pending"]
    return sorted(ids)


def decide(store: RunStore, candidate_id: int, decision: str,
           edited_source: str | None = None, reason: str = "") -> Decision:
    """Record the user's decision on a pending candidate ('approve', 'edit' or 'reject')."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if decision == "edit" and not (edited_source or "").strip():
        raise ValueError("an 'edit' decision needs the edited source")
    key = f"{APPROVAL}{candidate_id}"
    with store.writer() as w:
        with w.transaction():
            current = w.get_state(key)
            if current is None:
                raise KeyError(f"candidate {candidate_id} is not waiting for approval")
            if current.get("status") != "pending":
                raise ValueError(f"candidate {candidate_id} was already decided "
                                 f"({current.get('status')})")
            w.set_state(key, {"status": decision, "source": edited_source, "reason": reason})
        w.emit("approval", {"id": candidate_id, "decision": decision})
    return Decision(candidate_id, decision, edited_source, reason)


def decision(store: RunStore, candidate_id: int) -> Decision | None:
    """The user's decision on a candidate, or None while it is pending (or never requested)."""
    state = store.get_state(f"{APPROVAL}{candidate_id}") or {}
    if state.get("status") not in DECISIONS:
        return None
    return Decision(candidate_id, state["status"], state.get("source"), state.get("reason") or "")


# -- calls made by a method's loop ---------------------------------------------------------------
def checkpoint(store: RunStore, poll_s: float = 0.2) -> None:
    """Return if nothing is requested; block while paused; raise `StopRequested` on stop.

    Call it where the method's state is saved, so stopping there loses nothing.
    """
    announced = False
    while True:
        if stop_requested(store):
            store.set_state(STOP, False)  # one-shot: a later resume must not stop at once
            store.emit("control", {"honoured": "stop"})
            raise StopRequested("stop requested from the UI")
        if not is_paused(store):
            if announced:
                store.emit("control", {"honoured": "resume"})
            return
        if not announced:
            store.emit("control", {"honoured": "pause"})
            announced = True
        time.sleep(poll_s)


def take_messages(store: RunStore, key: str | None = None) -> list[str]:
    """Texts the user injected since the last call (already stored as user messages).

    The inbox is read and emptied in one IMMEDIATE transaction, so a message injected meanwhile
    is either taken now or left for the next call, never lost.  With `key` (one per step, e.g.
    the generation) the taken ids are also kept under `key`, and a later call with the same key
    returns them again (plus anything new): a step killed before its checkpoint and re-run does
    not lose the messages it had taken."""
    with store.transaction():
        ids = list(store.get_state(INBOX, []) or [])
        if key is not None:
            ids = list(store.get_state(key, []) or []) + ids
            store.set_state(key, ids)
        if store.get_state(INBOX) is not None:
            store.set_state(INBOX, [])
    if not ids:
        return []
    by_id = {m["id"]: m["content"] for m in store.messages() if m["id"] in set(ids)}
    return [by_id[i] for i in ids if i in by_id]


def request_approval(store: RunStore, candidate_id: int) -> None:
    """Mark a stored candidate as waiting for the user (idempotent across resumes)."""
    key = f"{APPROVAL}{candidate_id}"
    with store.transaction():
        if store.get_state(key) is None:
            store.set_state(key, {"status": "pending", "source": None, "reason": ""})
            created = True
        else:
            created = False
    if created:
        store.emit("approval_requested", {"id": candidate_id})


def await_approval(store: RunStore, candidate_id: int, poll_s: float = 0.2,
                   timeout_s: float | None = None) -> Decision:
    """Request approval (if not yet) and block until the user decides.

    Honours pause/stop while waiting (raises `StopRequested`); after a resume the same candidate
    is still pending, so calling this again simply keeps waiting.  `timeout_s` (None: forever)
    raises TimeoutError.
    """
    request_approval(store, candidate_id)
    key = f"{APPROVAL}{candidate_id}"
    start = time.monotonic()
    while True:
        state = store.get_state(key) or {}
        if state.get("status") in DECISIONS:
            return Decision(candidate_id, state["status"], state.get("source"),
                            state.get("reason", ""))
        if stop_requested(store):
            checkpoint(store)
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"no decision on candidate {candidate_id} after {timeout_s} s")
        time.sleep(poll_s)


def report_progress(store: RunStore, done: float, total: float, label: str = "") -> None:
    """Tell readers how far the current evaluation is (shown as a progress bar)."""
    store.emit("progress", {"done": done, "total": total, "label": label})
