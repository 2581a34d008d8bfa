"""Runs screen: every run directory under the workspace, with open/resume/delete/new."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ...runs import list_runs
from ...store import StoreVersionError
from ...run_rows import RunRow, read_run
from .modals import ConfirmModal

__all__ = ["RunRow", "RunsScreen", "age", "read_run"]

STATUS_STYLE = {"running": "bold green", "finished": "cyan", "stopped": "yellow",
                "failed": "bold red", "created": "dim", "interrupted": "bold magenta"}


def age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


class RunsScreen(Screen):
    """The home screen."""

    BINDINGS = [Binding("enter", "open", "Open", show=False), Binding("n", "new", "New run"),
                Binding("r", "resume", "Resume"), Binding("d", "delete", "Delete"),
                Binding("f5", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="workspace", classes="banner")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        # "on": what `best` was measured on and over how many seeds ("search, 2", "held-out, 16")
        for col in ("run", "family", "method", "status", "best", "on", "cands", "$", "age"):
            table.add_column(col, key=col)
        self.action_refresh()
        self.set_interval(2.0, self._tick)

    def _tick(self) -> None:
        if self.app.screen is self:  # no work while a run view covers this screen
            self.action_refresh()

    @property
    def rows(self) -> list[RunRow]:
        return self._rows

    def action_refresh(self) -> None:
        ws = Path(self.app.workspace)
        self._rows = []
        for p in list_runs(ws):
            try:
                self._rows.append(read_run(p, ws))
            except (sqlite3.Error, StoreVersionError):
                continue  # a store being created right now (next refresh), or unreadable here

        self._rows.sort(key=lambda r: -r.created)
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        now = self.app.now()
        for r in self._rows:
            table.add_row(r.name, r.family, r.method, f"[{STATUS_STYLE.get(r.status, '')}]{r.status}",
                          "-" if r.best is None else f"{r.best:.3f}",
                          r.best_how.replace(" seeds", "").replace(" seed", ""), str(r.candidates),
                          f"{r.cost:.2f}", age(now - r.created), key=str(r.path))
        if self._rows:
            table.move_cursor(row=min(cursor, len(self._rows) - 1))
        self.query_one("#workspace", Static).update(
            f"workspace [b]{ws}[/b] — {len(self._rows)} run(s) · n new · enter open · ? help")

    def selected(self) -> RunRow | None:
        table = self.query_one(DataTable)
        if not self._rows or table.cursor_row < 0:
            return None
        return self._rows[table.cursor_row]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row:
            self.app.open_run(row.path)

    def action_new(self) -> None:
        self.app.new_run()

    def action_resume(self) -> None:
        row = self.selected()
        if row is None:
            return
        if row.status == "running":
            self.notify("that run is already running; opening it", severity="warning")
            self.app.open_run(row.path)
            return
        if row.status == "finished":
            self.notify("that run has finished; nothing to resume", severity="warning")
            return
        if row.status == "interrupted":  # its owner died (kill -9, reboot): take it over
            self.notify(f"{row.name} was interrupted (its process "
                        f"{(row.owner or {}).get('pid', '?')} is gone); resuming it")
        self.app.resume_run(row.path)
        self.action_refresh()

    def action_delete(self) -> None:
        row = self.selected()
        if row is None:
            return
        if row.status == "running":
            self.notify("stop the run before deleting it", severity="error")
            return

        def done(ok: bool | None) -> None:
            if ok:
                shutil.rmtree(row.path)
                self.notify(f"deleted {row.name}")
                self.action_refresh()
        self.app.push_screen(ConfirmModal(f"Delete run {row.name} and all its files?"), done)


