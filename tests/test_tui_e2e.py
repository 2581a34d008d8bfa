"""End to end: the real `python -m workbench.cli tui` in tmux, steering a fake method process and
running the real offline agent.

The test types keys into tmux, reads the screen with capture-pane and checks the run store.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.tiny_runs import write_tiny_llm_config
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


# a candidate-table row as the run view draws it: id, gen, kind, outcome, fitness, test
ROW = re.compile(r"^\W*(\d+)\s+(\d+)\s+code\s+([a-z_]+)\s+(-|-?\d+\.\d{3})\s+(-|-?\d+\.\d{3})(?:\s|$)")


def rows_on_screen(screen: str) -> dict[int, tuple[str, str]]:
    out = {}
    for line in screen.splitlines():
        m = ROW.match(line)
        if m:
            out[int(m.group(1))] = (m.group(3), m.group(4))
    return out


def rows_in_store(run_dir: Path) -> dict[int, tuple[str, str]]:
    with RunStore(run_dir) as s:
        return {c.id: (c.outcome, "-" if c.fitness is None else f"{c.fitness:.3f}")
                for c in s.candidates()}


@pytest.mark.slow
def test_tui_in_tmux_runs_the_real_agent(tmp_path):
    """New run (config loaded on the New run screen) → a real offline mutation run on LPO/CartPole
    → candidates in the run view agree with RUN_DIR/run.sqlite → `x` stops it."""
    ws = tmp_path / "ws"
    cfg = tmp_path / "tiny.yaml"
    write_tiny_llm_config(cfg, "tmuxreal", 12)
    tui = Tmux(f"cd {ROOT} && {sys.executable} -m workbench.cli tui {ws}", width=110, height=32)
    try:
        tui.wait_for("workspace")
        tui.keys("n")
        tui.wait_for("Start run")
        tui.keys("C-o")  # with no path yet: focuses the config-file box
        tui.wait_for("type the path of a config file")
        tui.type(str(cfg))
        tui.wait_for("tiny.yaml")
        tui.keys("Enter")  # load it: the form is rebuilt from the file
        tui.wait_for("tmuxreal")
        tui.wait_for("config is valid")
        tui.keys("C-s")
        tui.wait_for("lpo/llm", 30)
        runs = [p.parent for p in ws.glob("*/run.sqlite")]
        assert len(runs) == 1, runs
        run_dir = runs[0]
        assert run_dir.name.startswith("tmuxreal-lpo-llm-")

        def log() -> str:
            p = run_dir / "process.log"
            return p.read_text(errors="replace")[-3000:] if p.exists() else ""

        def scored() -> bool:
            return any(o == "ok" for o, _ in rows_in_store(run_dir).values())
        assert _wait(scored, 180), f"no candidate was scored; process.log:\n{log()}"

        seen = {}

        def agree() -> bool:
            """The table and the status line show exactly what the store holds (read before and
            after the capture, so no write fell in between)."""
            before = rows_in_store(run_dir)
            screen = seen["screen"] = tui.screen()
            if not rows_on_screen(screen) == before == rows_in_store(run_dir):
                return False
            scores = [float(f) for o, f in before.values() if o == "ok"]
            best = f"best {max(scores):.3f}" if scores else "best -"
            ok = sum(o == "ok" for o, _ in before.values())
            return f"{len(before)} cands ({ok} ok)" in screen and best in screen
        assert _wait(agree, 15), (tui.screen(), rows_in_store(run_dir))
        assert "running" in seen["screen"]
        # stop from the UI: the candidate being evaluated finishes, then the run stops
        tui.keys("x")
        with RunStore(run_dir) as s:
            assert _wait(lambda: s.run_info()["status"] != "running", 150), log()
            assert s.run_info()["status"] == "stopped", log()
            final = rows_in_store(run_dir)
            assert len(final) < 12  # stopped before its budget
            assert all(o != "pending" for o, _ in final.values())  # nothing left half-done
        tui.wait_for("stopped", 10)
        assert _wait(agree, 15), (tui.screen(), rows_in_store(run_dir))
        assert f"{run_dir} (stopped)" in log()  # the run process ended by itself, as stopped
        tui.keys("Escape")
        tui.wait_for("workspace")
        assert _wait(lambda: any("tmuxreal" in line and "stopped" in line
                                 for line in tui.screen().splitlines()), 10), tui.screen()
        tui.keys("q")
        assert _wait(lambda: not tui.alive(), 10), tui.screen()
    finally:
        tui.kill()
        for leftover in ws.glob("*/run.sqlite"):  # on failure: do not leave a run going
            with RunStore(leftover.parent) as s:
                if (s.run_info() or {}).get("status") == "running":
                    control.request_stop(s)
