"""Human-in-the-loop controls: what the TUI (or any other process) calls to steer a running agent.

Every function only writes to the run store (`state` rows and an `events` entry); the running
graph polls the store between steps, so the controls work across processes and survive restarts.
"""

from __future__ import annotations

from typing import Any

from workbench import control as ui_control
from workbench.store import RunStore

CONTROL_KEY = "agent.control"  # {"pause": bool, "stop": bool}
APPROVAL_KEY = "agent.approval.{cid}"  # {"decision": "approve"|"reject", "code": str|None}
INBOX_KEY = "agent.inbox"  # user messages not yet shown to the proposer


def _control(store: RunStore) -> dict[str, Any]:
    return dict(store.get_state(CONTROL_KEY, {}) or {})


def pause(store: RunStore) -> None:
    """The agent finishes the current step, then waits until `resume_agent`."""
    store.set_state(CONTROL_KEY, {**_control(store), "pause": True})
    store.emit("control", {"action": "pause"})


def resume_agent(store: RunStore) -> None:
    store.set_state(CONTROL_KEY, {**_control(store), "pause": False})
    store.emit("control", {"action": "resume"})


def stop(store: RunStore) -> None:
    """Clean stop after the current candidate; `workbench resume RUN_DIR` continues later."""
    store.set_state(CONTROL_KEY, {**_control(store), "stop": True})
    store.emit("control", {"action": "stop"})


def pending_approvals(store: RunStore) -> list[int]:
    """Candidate ids waiting for a human decision (when `llm.approval` is on)."""
    return list(store.get_state("agent.awaiting_approval", []) or [])


def approve(store: RunStore, candidate_id: int, code: str | None = None) -> None:
    """Let the candidate be evaluated, optionally with edited `code` instead of the proposal."""
    store.set_state(APPROVAL_KEY.format(cid=candidate_id), {"decision": "approve", "code": code})
    store.emit("control", {"action": "approve", "id": candidate_id, "edited": code is not None})


def reject(store: RunStore, candidate_id: int, reason: str = "rejected by the user") -> None:
    store.set_state(APPROVAL_KEY.format(cid=candidate_id), {"decision": "reject", "reason": reason})
    store.emit("control", {"action": "reject", "id": candidate_id})


def send_message(store: RunStore, text: str) -> None:
    """A user message the proposer sees in its next prompt (the LLM proposer; mutation ignores it)."""
    inbox = list(store.get_state(INBOX_KEY, []) or [])
    store.set_state(INBOX_KEY, inbox + [text])
    store.add_message("user", text, {"source": "steering"})
    store.emit("control", {"action": "message"})


def take_inbox(store: RunStore) -> list[str]:
    """Messages from `send_message` and from the TUI's chat box (workbench.control)."""
    inbox = list(store.get_state(INBOX_KEY, []) or [])
    if inbox:
        store.set_state(INBOX_KEY, [])
    return inbox + ui_control.take_messages(store)


def wants_stop(store: RunStore) -> bool:
    return bool(_control(store).get("stop")) or ui_control.stop_requested(store)


def paused(store: RunStore) -> bool:
    return bool(_control(store).get("pause")) or ui_control.is_paused(store)


def decision(store: RunStore, candidate_id: int) -> dict[str, Any] | None:
    """The decision on a candidate awaiting approval, from either protocol, or None.

    Returned as {"decision": "approve"|"reject", "code": str|None, "reason": str}.
    """
    own = store.get_state(APPROVAL_KEY.format(cid=candidate_id))
    if own is not None:
        return own
    ui = store.get_state(f"{ui_control.APPROVAL}{candidate_id}") or {}
    if ui.get("status") in ("approve", "edit"):
        return {"decision": "approve", "code": ui.get("source") if ui["status"] == "edit" else None}
    if ui.get("status") == "reject":
        return {"decision": "reject", "reason": ui.get("reason") or "rejected by the user"}
    return None
