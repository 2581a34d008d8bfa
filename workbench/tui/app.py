"""The Textual application: screens, global keys, command palette, quitting with runs in flight."""

from __future__ import annotations

import gc
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from .. import control
from ..config import RunConfig
from ..store import DB_NAME, RunStore
from .launcher import Launcher, ProcessLauncher
from .screens.modals import HelpScreen, QuitModal
from .screens.new_run import NewRunScreen
from .screens.run_view import RunView
from .screens.runs import RunsScreen


class FrameGapMeter:
    """Records the largest gap between ticks of a fast timer: a frozen UI shows up as a big gap."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last: float | None = None
        self.max_gap = 0.0
        self.ticks = 0
        self.gaps: list[float] = []

    def reset(self) -> None:
        self.last, self.max_gap, self.ticks, self.gaps = None, 0.0, 0, []

    def tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.max_gap = max(self.max_gap, now - self.last)
            if len(self.gaps) < 100_000:
                self.gaps.append(now - self.last)
        self.last = now
        self.ticks += 1


class WorkbenchApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "RL Discovery Workbench"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("question_mark", "help", "Help"),
                Binding("t", "toggle_theme", "Theme")]

    def __init__(self, workspace: str | Path = "runs", launcher: Launcher | None = None,
                 clock: Callable[[], float] = time.time, poll_interval: float = 0.5,
                 theme: str = "textual-dark") -> None:
        super().__init__()
        self.workspace = Path(workspace)
        self.launcher = launcher or ProcessLauncher()
        self.now = clock
        self.poll_interval = poll_interval
        self.started: set[Path] = set()  # runs this session started or resumed
        self.frame_gap = FrameGapMeter(0.05)
        self.theme = theme

    def on_mount(self) -> None:
        self.set_interval(self.frame_gap.interval, self.frame_gap.tick)
        self.push_screen(RunsScreen())
        self.call_after_refresh(self.frame_gap.reset)  # the first paint is startup, not a freeze
        self.call_after_refresh(self.settle_heap)

    def settle_heap(self) -> None:
        """Take everything allocated so far out of the cyclic garbage collector's scans.

        Once Textual, pygments and the screens are loaded the process holds ~300k long-lived
        objects; every full collection walks all of them, which stalled the UI for 0.3-0.4 s
        every few seconds while a run view followed a busy run.  `gc.freeze()` moves them to a
        permanent generation (called after the app's and each run view's first paint, undone at
        exit), so collections only scan what was allocated since."""
        gc.freeze()

    def on_unmount(self) -> None:
        gc.unfreeze()  # frozen objects become collectable again (tests start many apps)
        # WORKBENCH_TUI_FRAME_GAP=FILE: write the largest frame gap (ms) at exit, for measurements
        target = os.environ.get("WORKBENCH_TUI_FRAME_GAP")
        if target:
            gaps = sorted(self.frame_gap.gaps) or [0.0]
            Path(target).write_text(json.dumps({
                "max_ms": self.frame_gap.max_gap * 1000,
                "p99_ms": gaps[int(0.99 * (len(gaps) - 1))] * 1000, "ticks": len(gaps)}))

    # -- navigation used by screens ----------------------------------------------------------
    def open_run(self, run_dir: str | Path) -> None:
        self.push_screen(RunView(run_dir))

    def new_run(self) -> None:
        self.push_screen(NewRunScreen())

    def start_run(self, config: RunConfig) -> None:
        try:
            run_dir = Path(self.launcher.start(config))
        except OSError as exc:
            self.notify(f"could not start the run: {exc}", severity="error")
            return
        self.started.add(run_dir)
        self.notify(f"started {run_dir.name}")
        self.switch_screen(RunView(run_dir))

    def resume_run(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        with RunStore(run_dir) as store:
            control.clear_requests(store)
        self.launcher.resume(run_dir)
        self.started.add(run_dir)

    # -- global actions ----------------------------------------------------------------------
    def in_flight(self) -> list[Path]:
        """Runs this session started, resumed or is viewing whose status is `running`."""
        dirs = set(self.started) | {s.run_dir for s in self.screen_stack if isinstance(s, RunView)}
        out = []
        for d in sorted(dirs):
            if (d / DB_NAME).exists():
                with RunStore(d, readonly=True) as store:
                    if (store.run_info() or {}).get("status") == "running":
                        out.append(d)
        return out

    async def action_quit(self) -> None:
        runs = self.in_flight()
        if not runs:
            self.exit()
            return

        def done(choice: str | None) -> None:
            if choice == "stop":
                for d in runs:
                    with RunStore(d) as store:
                        control.request_stop(store)
                self.exit(f"asked {len(runs)} run(s) to stop")
            elif choice == "leave":
                self.exit(f"{len(runs)} run(s) keep running headless; reopen to reattach")
        self.push_screen(QuitModal([d.name for d in runs]), done)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New run", "Open the new-run form", self.new_run)
        yield SystemCommand("Toggle dark/light", "Switch between dark and light themes",
                            self.action_toggle_theme)
        yield SystemCommand("Workbench help", "Key bindings of every screen", self.action_help)
