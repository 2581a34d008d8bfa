"""The run view's failure panel: why a failed (or interrupted) run ended, and the tail of its log.

The reason is what `runs.execute` stored (`failure_reason` in the run's state table) when the
method raised; the log is `RUN_DIR/process.log`, the output of the detached process the UI
started (a run started from a shell printed to that shell instead).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from ..launcher import LOG_NAME

TAIL_LINES = 20
TAIL_BYTES = 64 * 1024  # enough for 20 lines of any log; a huge log is never read whole


def log_tail(path: Path, n: int = TAIL_LINES) -> list[str] | None:
    """The last n lines of a text file, or None if it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except FileNotFoundError:
        return None
    lines = data.decode("utf-8", "replace").splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first line read is probably cut
    return lines[-n:]


class FailurePanel(Vertical):
    """Hidden until `show` gets a reason; then the reason and the log's last lines."""

    DEFAULT_CSS = """
    FailurePanel {
        display: none;
        height: auto;
        max-height: 14;
        border-top: solid $error;
        border-title-color: $error;
    }
    FailurePanel #failure-reason {
        height: auto;
        max-height: 3;
        padding: 0 1;
    }
    FailurePanel #failure-log-box {
        height: auto;
        max-height: 10;
    }
    FailurePanel #failure-log {
        padding: 0 1;
    }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.shown: tuple | None = None  # what is on screen: re-sent only when it changes

    def compose(self) -> ComposeResult:
        yield Static(id="failure-reason")
        with VerticalScroll(id="failure-log-box"):
            yield Static(id="failure-log")

    def show(self, reason: str, run_dir: Path) -> None:
        """Show `reason` and the run's log tail; an empty reason hides the panel.  Cheap to call
        on every poll: the log is read again only when its size or time changed (the process
        may still be writing its last lines after the run was marked failed)."""
        path = run_dir / LOG_NAME
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        shown = (reason, stamp if reason else None)
        if shown == self.shown:
            return
        self.shown = shown
        self.display = bool(reason)
        if not reason:
            return
        log = log_tail(path)
        self.border_title = f"why it ended · {LOG_NAME}"
        self.query_one("#failure-reason", Static).update(Text(reason, style="bold red"))
        if log is None:
            body = Text(f"no {LOG_NAME} in {run_dir} (a run started from a shell printed its "
                        "output there)", style="dim")
        else:
            body = Text("\n".join(log) or "(the log is empty)", style="dim" if not log else "")
        self.query_one("#failure-log", Static).update(body)
        self.query_one("#failure-log-box", VerticalScroll).scroll_end(animate=False)
