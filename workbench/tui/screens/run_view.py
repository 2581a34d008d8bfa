"""Run view: a live (or finished) run read from its store, with steering controls.

A timer polls the store every `poll_interval` seconds, reading only events newer than the last
one seen, and redraws only what those events touched, so the UI stays responsive however long the
run is.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import (Button, DataTable, Footer, Header, Input, Label, ProgressBar,
                             RichLog, Static, TabbedContent, TabPane)

from ... import control
from ...store import DB_NAME, CandidateRow, RunStore
from ..run_view_text import (FAILURE_STATUSES, SORTS, failure_reason, run_budget,
                             sorted_candidates, status_line, table_cells)
from ..widgets.approvals import ApprovalsPane
from ..widgets.candidate_detail import CandidateDetail
from ..widgets.failure import FailurePanel
from ..widgets.plot import FitnessPlot, fitness_series, metric_series
from .modals import EditSourceModal

ROLE_STYLE = {"user": "bold cyan", "assistant": "green", "tool": "yellow", "system": "dim"}


class RunView(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("p", "pause", "Pause/resume"),
        Binding("x", "stop", "Stop"),
        Binding("R", "resume_run", "Resume run"),
        Binding("s", "sort", "Sort"),
        Binding("m", "message", "Message"),
        Binding("a", "approve", "Approve", show=False),
        Binding("e", "edit", "Edit", show=False),
        Binding("j", "reject", "Reject", show=False),
        Binding("1", "tab('overview')", "Overview", show=False),
        Binding("2", "tab('candidate')", "Candidate", show=False),
        Binding("3", "tab('conversation')", "Chat", show=False),
        Binding("4", "tab('approvals')", "Approvals", show=False),
    ]

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.store: RunStore | None = None
        self.last_event = 0
        self.last_message = 0
        self.cands: dict[int, CandidateRow] = {}
        self.sort_by = "id"
        self.selected_id: int | None = None
        self.info: dict = {}
        self.progress: dict = {}
        self.last_step = -1
        self.diff_text = ""  # the shown candidate's diff against its parent (tests read it)
        # what is on screen already: unchanged content is not re-sent, since every changed
        # widget costs a repaint (and a layout pass) of the whole screen
        self._status_text: str | None = None
        self._pending_ids: list[int] | None = None

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status", classes="banner")
        with Horizontal(id="meters"):
            yield Label("budget", classes="meter-label")
            yield ProgressBar(total=1, id="budget", show_eta=False)
            yield Label("eval", classes="meter-label")
            yield ProgressBar(total=1, id="evalprog", show_eta=False)
        with TabbedContent(initial="overview", id="tabs"):
            with TabPane("Overview", id="overview"):
                yield FailurePanel(id="failure")
                yield FitnessPlot(id="plot")
                yield DataTable(id="cands", cursor_type="row", zebra_stripes=True)
            with TabPane("Candidate", id="candidate"):
                yield CandidateDetail()
            with TabPane("Conversation", id="conversation"):
                yield RichLog(id="log", wrap=True, markup=False)
                yield Input(placeholder="message the agent (enter to send)", id="chat")
            with TabPane("Approvals", id="approvals"):
                yield ApprovalsPane()
        yield Footer()

    def on_mount(self) -> None:
        cands = self.query_one("#cands", DataTable)
        for col in ("id", "gen", "kind", "outcome", "fitness", "test", "label / reason"):
            cands.add_column(col, key=col)
        self.title = self.run_dir.name
        self.poll()
        self.set_interval(self.app.poll_interval, self.poll)
        self.call_after_refresh(self.app.settle_heap)  # the view's widgets and lexers are loaded

    # -- polling -----------------------------------------------------------------------------
    def _open_store(self) -> RunStore | None:
        if self.store is None and (self.run_dir / DB_NAME).exists():
            self.store = RunStore(self.run_dir, readonly=True)
        return self.store

    def poll(self) -> None:
        try:
            self._poll()
        except sqlite3.OperationalError as exc:  # a store still being created, or busy
            self._set_status(f"waiting for the store: {exc}")

    def _poll(self) -> None:
        store = self._open_store()
        if store is None:
            self._set_status(f"waiting for {self.run_dir} to start…")
            return
        events = store.events(self.last_event, limit=2000)
        first = self.last_event == 0
        if events:
            self.last_event = events[-1]["id"]
        kinds = {e["kind"] for e in events}
        changed = {int(e["payload"]["id"]) for e in events
                   if e["kind"] in ("candidate", "outcome") and "id" in e["payload"]}
        for e in events:
            if e["kind"] == "progress":
                self.progress = e["payload"]
            elif e["kind"] == "metrics":
                self.last_step = max(self.last_step, int(e["payload"].get("step", 0)))
        if first or changed:
            self._refresh_candidates(store, None if first else changed)
        if "metrics" in kinds and not changed:
            self._refresh_plot(store)
        if first or "message" in kinds:
            self._refresh_messages(store)
        if first or kinds & {"approval_requested", "approval", "candidate"}:
            self._refresh_pending(store)
        if first or events:
            self._refresh_status(store)
        elif self.has_class("failed"):
            self._refresh_failure(store)  # the log's last lines may come after the last event

    def _refresh_candidates(self, store: RunStore, ids: set[int] | None) -> None:
        if ids is None:
            self.cands = {c.id: c for c in store.candidates()}
        else:
            for cid in ids:
                try:
                    self.cands[cid] = store.candidate(cid)
                except KeyError:
                    pass
        if ids is not None and self.sort_by == "id":
            self._update_candidate_rows(sorted(ids))
        else:
            self._fill_candidate_table()
        self._refresh_plot(store)
        if self.selected_id is None and self.cands:
            self.selected_id = self._sorted()[0].id
        if self.selected_id in (ids or self.cands):
            self.show_candidate(self.selected_id)

    def _refresh_plot(self, store: RunStore) -> None:
        data = fitness_series([self.cands[k] for k in sorted(self.cands)])
        if not any(ser.points for ser in data.series):
            names = [n for n in store.metric_names()]
            fallback = metric_series({n: store.metric(n) for n in names})
            if fallback.series:
                data = fallback
        self.query_one(FitnessPlot).set_data(data)

    def _sorted(self) -> list[CandidateRow]:
        return sorted_candidates(list(self.cands.values()), self.sort_by)

    def _update_candidate_rows(self, ids: list[int]) -> None:
        """Change only the rows of candidates that events touched (id order: append new ones)."""
        table = self.query_one("#cands", DataTable)
        columns = [c.key for c in table.ordered_columns]
        for cid in ids:
            if cid not in self.cands:
                continue
            cells = table_cells(self.cands[cid])
            if str(cid) in table.rows:
                for col, value in zip(columns, cells):
                    table.update_cell(str(cid), col, value)
            else:
                table.add_row(*cells, key=str(cid))

    def _fill_candidate_table(self) -> None:
        table = self.query_one("#cands", DataTable)
        keep = self.selected_id
        table.clear()
        for c in self._sorted():
            table.add_row(*table_cells(c), key=str(c.id))
        if keep is not None and str(keep) in {str(k) for k in self.cands}:
            table.move_cursor(row=table.get_row_index(str(keep)), animate=False)

    def _refresh_messages(self, store: RunStore) -> None:
        log = self.query_one("#log", RichLog)
        for m in store.messages():
            if m["id"] <= self.last_message:
                continue
            self.last_message = m["id"]
            tool = m["info"].get("tool")
            head = Text(f"{m['role']}" + (f" [{tool}]" if tool else "") + ": ",
                        style=ROLE_STYLE.get(m["role"], ""))
            log.write(head + Text(m["content"]))

    def _refresh_pending(self, store: RunStore) -> None:
        ids = control.pending_approvals(store)
        if ids == self._pending_ids:
            return
        self._pending_ids = ids
        self.query_one(ApprovalsPane).fill([self.cands.get(i) or store.candidate(i) for i in ids])
        pane = self.query_one("#tabs", TabbedContent)
        pane.get_tab("approvals").label = f"Approvals ({len(ids)})" if ids else "Approvals"
        self._show_pending()

    def _refresh_status(self, store: RunStore) -> None:
        self.info = store.run_info() or {}
        cfg = self.info.get("config", {})
        paused = control.is_paused(store) and self.info.get("status") == "running"
        n = len(self.cands)
        self._set_status(status_line(self.info, list(self.cands.values()), paused))
        self._refresh_failure(store)
        budget = run_budget(cfg)
        bar = self.query_one("#budget", ProgressBar)
        used = n if cfg.get("method") == "llm" or self.last_step < 0 else self.last_step + 1
        if budget:
            bar.update(total=budget, progress=min(used, budget))
        if self.progress:
            self.query_one("#evalprog", ProgressBar).update(
                total=max(float(self.progress.get("total", 1)), 1e-9),
                progress=float(self.progress.get("done", 0)))

    def _refresh_failure(self, store: RunStore) -> None:
        """A failed or interrupted run: why, and its log's last lines (in place of the plot)."""
        failed = self.info.get("status") in FAILURE_STATUSES
        reason = failure_reason(self.info, store.get_state("failure_reason") if failed else None)
        self.query_one(FailurePanel).show(reason, self.run_dir)
        self.set_class(bool(reason), "failed")

    def _set_status(self, text: str) -> None:
        if text != self._status_text:  # a fixed height: no layout pass needed
            self._status_text = text
            self.query_one("#status", Static).update(text, layout=False)

    # -- candidate details -----------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "cands" and event.row_key is not None:
            self.selected_id = int(event.row_key.value)
            self.show_candidate(self.selected_id)
        elif event.data_table.id == "pending":
            self._show_pending()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "cands":
            self.action_tab("candidate")

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.data_table.id == "cands":
            by = {"id": "id", "fitness": "fitness", "test": "test", "outcome": "outcome"}
            if str(event.column_key.value) in by:
                self.sort_by = by[str(event.column_key.value)]
                self._fill_candidate_table()

    def show_candidate(self, cid: int | None) -> None:
        if cid is None or cid not in self.cands or self.store is None:
            return
        c = self.cands[cid]
        parent = self.cands.get(c.parents[0]) if c.parents else None
        self.diff_text = self.query_one(CandidateDetail).show(
            c, self.store.evaluations(cid), parent, self._syntax_theme())

    def _syntax_theme(self) -> str:
        return "monokai" if self.app.current_theme.dark else "default"

    def _pending_id(self) -> int | None:
        return self.query_one(ApprovalsPane).selected_id()

    def _show_pending(self) -> None:
        cid = self._pending_id()
        c = None if cid is None or self.store is None else (self.cands.get(cid)
                                                             or self.store.candidate(cid))
        self.query_one(ApprovalsPane).show_code(c, self._syntax_theme())

    # -- steering ----------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "chat" or self.store is None:
            return
        try:
            control.inject_message(self.store, event.value)
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        event.input.value = ""
        self.poll()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"approve": self.action_approve, "edit": self.action_edit,
         "reject": self.action_reject}[event.button.id]()

    def _decide(self, decision: str, source: str | None = None) -> None:
        cid = self._pending_id()
        if cid is None or self.store is None:
            self.notify("no candidate is waiting for approval", severity="warning")
            return
        try:
            control.decide(self.store, cid, decision, source)
        except (KeyError, ValueError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"candidate {cid}: {decision}")
        self.poll()

    def action_approve(self) -> None:
        self._decide("approve")

    def action_reject(self) -> None:
        self._decide("reject")

    def action_edit(self) -> None:
        cid = self._pending_id()
        if cid is None or self.store is None:
            self.notify("no candidate is waiting for approval", severity="warning")
            return
        c = self.cands.get(cid) or self.store.candidate(cid)

        def done(text: str | None) -> None:
            if text is not None:
                self._decide("edit", text)
        self.app.push_screen(EditSourceModal(c.source or ""), done)

    def action_pause(self) -> None:
        if self.store is None:
            return
        if control.is_paused(self.store):
            control.request_resume(self.store)
            self.notify("resume requested")
        else:
            control.request_pause(self.store)
            self.notify("pause requested; the run pauses at its next checkpoint")
        self.poll()

    def action_stop(self) -> None:
        if self.store is None:
            return
        control.request_stop(self.store)
        self.notify("stop requested; the run saves its state and stops at its next checkpoint")
        self.poll()

    def action_resume_run(self) -> None:
        status = (self.info or {}).get("status")
        if status == "running":
            self.notify("the run is already running", severity="warning")
            return
        if status == "finished":
            self.notify("the run has finished; nothing to resume", severity="warning")
            return
        self.app.resume_run(self.run_dir)
        self.notify("resuming")

    def action_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self._fill_candidate_table()
        self.notify(f"sorted by {self.sort_by}")

    def action_message(self) -> None:
        self.action_tab("conversation")
        self.query_one("#chat", Input).focus()

    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_back(self) -> None:
        if isinstance(self.focused, Input):  # esc first leaves the chat box, then the view
            self.query_one("#cands", DataTable).focus()
            return
        self.app.pop_screen()

    def on_unmount(self) -> None:
        if self.store is not None:
            self.store.close()
