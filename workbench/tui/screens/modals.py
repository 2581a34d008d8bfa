"""Small modal dialogs: confirmation, quit-with-runs-in-flight, source editing, help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Markdown, TextArea


class ConfirmModal(ModalScreen[bool]):
    """Yes/no question; dismisses with True on confirm."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str, confirm: str = "Delete") -> None:
        super().__init__()
        self.question, self.confirm = question, confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(self.confirm, variant="error", id="yes")
                yield Button("Cancel", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class QuitModal(ModalScreen[str]):
    """Runs are in flight: stop them (state saved), leave them running headless, or cancel."""

    BINDINGS = [Binding("escape", "dismiss('cancel')", "Cancel")]

    def __init__(self, runs: list[str]) -> None:
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{len(self.runs)} run(s) in flight:\n  " + "\n  ".join(self.runs)
                        + "\nStop them (state is saved) or leave them running headless?",
                        classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Stop", variant="error", id="stop")
                yield Button("Leave running", variant="primary", id="leave")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")


class EditSourceModal(ModalScreen[str | None]):
    """Edit a pending candidate's source before approving it; dismisses with the text or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel"),
                Binding("ctrl+s", "save", "Approve edited")]

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Edit the candidate, then approve it (ctrl+s) or cancel (esc)")
            yield TextArea(self.source, id="editor")
            with Horizontal(classes="buttons"):
                yield Button("Approve edited", variant="success", id="save")
                yield Button("Cancel", id="cancel")

    def action_save(self) -> None:
        self.dismiss(self.query_one("#editor", TextArea).text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)


HELP = """\
# RL Discovery Workbench — keys

**Runs list**: `enter` open · `n` new run · `r` resume · `d` delete · `f5` refresh

**New run**: fields are checked as you type with the CLI's own messages; `ctrl+s` start ·
`ctrl+o` load a config file · `esc` back

**Run view**: tabs `1` overview · `2` candidate · `3` conversation · `4` approvals
`p` pause/resume · `x` stop (state saved) · `R` resume a stopped run · `s` sort candidates ·
`m` message the agent · `a` approve · `e` edit · `j` reject the selected pending candidate ·
`esc` back

**Everywhere**: `ctrl+p` command palette · `t` dark/light theme · `?` this help · `q` quit
(asks whether to stop runs in flight or leave them running headless)
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Markdown(HELP)
            yield Button("Close", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)
