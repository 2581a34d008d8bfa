"""The run view's Candidate tab: one candidate's header, scores per environment, its code (or
expression) highlighted, and its diff against its first parent."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from ...store import CandidateRow
from ..run_view_text import header, lexer_for, parent_diff, score_cells, source_text

SCORE_COLUMNS = ("split", "env", "return", "± s.e.", "normalised", "seeds")


class CandidateDetail(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static(id="cand-meta")
        yield DataTable(id="scores", cursor_type="none")
        yield Static(id="code")
        yield Static(id="diff")

    def on_mount(self) -> None:
        scores = self.query_one("#scores", DataTable)
        for col in SCORE_COLUMNS:
            scores.add_column(col)

    def show(self, c: CandidateRow, evaluations: list[dict], parent: CandidateRow | None,
             theme: str) -> str:
        """Fill the tab with `c`; returns its diff against `parent` ('' without one)."""
        self.query_one("#cand-meta", Static).update(header(c))
        scores = self.query_one("#scores", DataTable)
        scores.clear()
        for ev in evaluations:
            scores.add_row(*score_cells(ev))
        self.query_one("#code", Static).update(
            Syntax(source_text(c), lexer_for(c), theme=theme, line_numbers=True, word_wrap=True))
        target = self.query_one("#diff", Static)
        if parent is None or not parent.source or not c.source:
            target.update(Text("no parent to diff against", style="dim"))
            return ""
        diff = parent_diff(parent, c)
        target.update(Syntax(diff or "(identical to its parent)", "diff", theme=theme))
        return diff
