"""End to end: the real `python -m workbench.cli tui` in tmux, steering a fake method process.

The test types keys into tmux, reads the screen with capture-pane and checks the run store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.test_tui_fake import make_run
from workbench import control
from workbench.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install -y tmux)")


class Tmux:
    def __init__(self, command: str, width: int = 100, height: int = 30):
        self.name = f"wbtui-{uuid.uuid4().hex[:8]}"
        self.tmux = ["tmux", "-L", self.name]  # a private server: our options touch no one else
        subprocess.run([*self.tmux, "new-session", "-d", "-s", self.name, "-x", str(width),
                        "-y", str(height), command], check=True)
        # without this, Escape followed by a key within 500 ms arrives as Alt+key
        subprocess.run([*self.tmux, "set-option", "-g", "escape-time", "0"], check=True)

    def screen(self) -> str:
        out = subprocess.run([*self.tmux, "capture-pane", "-p", "-t", self.name],
                             capture_output=True, text=True)
        return out.stdout

    def keys(self, *keys: str) -> None:
        for k in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, k], check=True)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; screen was:\n{self.screen()}")

    def alive(self) -> bool:
        return subprocess.run([*self.tmux, "has-session", "-t", self.name],
                              capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


def _wait(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_tui_in_tmux_steers_a_running_method(tmp_path):
    ws = tmp_path / "ws"
    run = ws / "live-run"
    make_run(run, approval=True).close()
    method = subprocess.Popen([sys.executable, "-m", "tests.test_tui_fake", str(run), "20",
                               "--approval", "--delay", "0.05"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = RunStore(run)
    gap_file = tmp_path / "gap.json"
    tui = Tmux(f"cd {ROOT} && WORKBENCH_TUI_FRAME_GAP={gap_file} "
               f"{sys.executable} -m workbench.cli tui {ws}")
    try:
        tui.wait_for("live-run")
        assert "running" in tui.screen()
        tui.keys("Enter")
        tui.wait_for("Approvals (1)")
        tui.keys("4")
        tui.wait_for("Approve (a)")
        tui.keys("a")
        assert _wait(lambda: store.candidates() and store.candidates()[0].outcome == "ok")
        tui.wait_for("Approvals (1)")  # the next proposal waits
        tui.keys("j")
        assert _wait(lambda: len(store.candidates()) > 1
                     and store.candidates()[1].outcome == "invalid")
        tui.keys("m")
        tui.type("please try tanh")
        tui.keys("Enter")
        assert _wait(lambda: any(m["content"] == "please try tanh" for m in store.messages()))
        tui.wait_for("user: please try tanh")
        tui.keys("Escape", "1")
        tui.wait_for("rejected by")  # outcome reason in the candidate table
        tui.keys("x")
        assert method.wait(20) == 130
        tui.wait_for("stopped")
        assert store.run_info()["status"] == "stopped"
        assert control.pending_approvals(store)  # the waiting proposal survives the stop
        tui.keys("Escape")
        tui.wait_for("workspace")
        tui.keys("q")
        assert _wait(lambda: not tui.alive(), 10), tui.screen()
        gap = json.loads(gap_file.read_text())
        print(f"real terminal: max frame gap {gap['max_ms']:.0f} ms, p99 {gap['p99_ms']:.0f} ms "
              f"over {gap['ticks']} ticks")
        assert gap["ticks"] > 20
    finally:
        tui.kill()
        if method.poll() is None:
            method.kill()
