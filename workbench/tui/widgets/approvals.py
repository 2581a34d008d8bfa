"""The run view's Approvals tab: candidates waiting for a human, the buttons that decide them,
and the selected one's code.  The screen decides (through `workbench.control`); this only shows."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Static

from ...store import CandidateRow
from ..run_view_text import lexer_for


class ApprovalsPane(Vertical):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.shown: tuple | None = None  # the code on screen: re-sent only when it changes

    def compose(self) -> ComposeResult:
        yield DataTable(id="pending", cursor_type="row")
        with Horizontal(classes="row"):
            yield Button("Approve (a)", variant="success", id="approve")
            yield Button("Edit (e)", variant="primary", id="edit")
            yield Button("Reject (j)", variant="error", id="reject")
        with VerticalScroll():
            yield Static(id="pending-code")

    def on_mount(self) -> None:
        self.query_one("#pending", DataTable).add_columns("id", "kind", "label")

    def fill(self, rows: list[CandidateRow]) -> None:
        table = self.query_one("#pending", DataTable)
        table.clear()
        for c in rows:
            table.add_row(str(c.id), c.kind, c.label, key=str(c.id))

    def selected_id(self) -> int | None:
        table = self.query_one("#pending", DataTable)
        if table.row_count == 0:
            return None
        row = table.coordinate_to_cell_key((max(table.cursor_row, 0), 0)).row_key
        return int(row.value)

    def show_code(self, c: CandidateRow | None, theme: str) -> None:
        shown = (c.id if c is not None else None, theme)
        if shown == self.shown:
            return
        self.shown = shown
        target = self.query_one("#pending-code", Static)
        if c is None:
            target.update(Text("no candidate is waiting for approval", style="dim"))
        else:
            target.update(Syntax(c.source or "", lexer_for(c), theme=theme, line_numbers=True))
