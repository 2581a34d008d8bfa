"""Export SVG screenshots of the main screens (the fixed data of the snapshot tests).

The data is illustrative: the runs are written by the scripted fake method of the TUI tests
(`tests/test_tui_fake.py`: programs with the LPO signature, but fitnesses made up from the
candidate index, nothing trained), and each SVG's title says so.
Run from the repository root: `python docs/screenshots/make_screenshots.py`.
"""
import asyncio, os, sys, tempfile
from pathlib import Path
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.test_tui_snapshots import build_workspace, build_failed_run, T0
from workbench.tui.app import WorkbenchApp
LABEL = "illustrative data from a scripted method"
out = ROOT / "docs" / "screenshots"
tmp = Path(tempfile.mkdtemp())
build_workspace(tmp)
os.chdir(tmp)
failed = build_failed_run(Path("."))
async def shoot(name, steps, theme="textual-dark", data=True):
    app = WorkbenchApp(Path("ws"), clock=lambda: T0, theme=theme)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await steps(pilot)
        await pilot.pause(0.3)
        title = app.screen.title or app.title
        svg = app.export_screenshot(title=f"{title} · {LABEL}" if data else title)
        (out / f"{name}.svg").write_text(svg, encoding="utf-8")
async def nothing(p): pass
def opener(run, tab=None, cid=None):
    async def f(p):
        p.app.open_run(run if isinstance(run, Path) else Path("ws") / run); await p.pause(0.3)
        if cid: p.app.screen.selected_id = cid; p.app.screen.show_candidate(cid)
        if tab: await p.press(tab)
    return f
async def newrun(p):
    await p.press("n"); await p.pause(0.1)
    p.app.screen.query_one("#envs").value = "cartpole,pong"
async def main():
    await shoot("runs", nothing)
    await shoot("runs-light", nothing, "textual-light")
    await shoot("run-view", opener("lpo-llm-demo"))
    await shoot("run-view-failed", opener(failed))
    await shoot("candidate", opener("lpo-llm-demo", "2", 5))
    await shoot("conversation", opener("lpo-llm-demo", "3"))
    await shoot("approvals", opener("lpo-llm-approval", "4"))
    await shoot("new-run", newrun, data=False)  # a form and the help: no run data to label
    await shoot("help", lambda p: p.press("question_mark"), data=False)
asyncio.run(main())
