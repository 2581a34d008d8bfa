"""Frame gaps of the TUI while a real run compiles and trains, against the same app idle.

    python bench/tui_frame_gap.py [--timesteps 4096] [--generations 3] [--idle-s 20] [--max-run-s 300]
        [--no-freeze]

The app (headless, `App.run_test`) records the gaps between ticks of its 50 ms timer
(`app.frame_gap`); a frozen UI shows up as a large gap.  Two phases in one process:

* reference: the same app idle on the Runs screen of an empty workspace, no run anywhere;
* running: the app starts a tiny offline LPO/CartPole run (mutation proposer) through its own
  launcher (`app.start_run` → a detached `python -m workbench.cli run`, as the New run screen
  does) and shows its run view while the run's process and its sandbox worker compile and train,
  until the run finishes (or --max-run-s, then it is stopped).  The run view's first paint
  (opening the screen) is excluded, as in the app's own measurement; polling and redraws are not.

Prints max / p99 / p50 gap per phase and the running/idle ratios; writes
bench/results/tui_frame_gap-<stamp>.json.  The figures depend on the machine's load (the 1-minute
load average is recorded at both ends of each phase).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.config import build_config  # noqa: E402
from workbench.store import RunStore  # noqa: E402
from workbench.tui.app import WorkbenchApp  # noqa: E402
from workbench.tui.launcher import ProcessLauncher  # noqa: E402
from workbench.tui.screens.run_view import RunView  # noqa: E402


def stats(gaps: list[float]) -> dict[str, float]:
    g = sorted(gaps) or [0.0]
    pick = lambda q: g[min(len(g) - 1, int(q * (len(g) - 1)))] * 1000  # noqa: E731
    return {"max_ms": g[-1] * 1000, "p99_ms": pick(0.99), "p50_ms": pick(0.5), "ticks": len(gaps)}



async def measure(workspace: Path, args: argparse.Namespace, freeze: bool = True) -> dict:
    launcher = ProcessLauncher()
    app = WorkbenchApp(workspace, launcher=launcher)
    if not freeze:  # the app as it was before gc.freeze(): every full collection scans everything
        app.settle_heap = lambda: None
    out: dict = {}
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(1.0)  # startup and first paint are not measured
        # -- reference: idle app, no run ------------------------------------------------------
        load0 = os.getloadavg()[0]
        app.frame_gap.reset()
        end = time.monotonic() + args.idle_s
        while time.monotonic() < end:
            await pilot.pause(0.2)
        out["idle"] = {**stats(app.frame_gap.gaps), "seconds": args.idle_s,
                       "load_start": load0, "load_end": os.getloadavg()[0]}
        # -- running: a real run started the way the New run screen starts it -----------------
        cfg = build_config({"name": "bench", "family": "lpo", "method": "llm",
                            "envs": ["cartpole"], "seeds": 1, "timesteps": args.timesteps,
                            "num_envs": 4, "workspace": str(workspace),
                            "llm": {"proposer": "mutation", "generations": args.generations},
                            "sandbox": {"time_limit_s": 300}})
        app.start_run(cfg)
        while not isinstance(app.screen, RunView):
            await pilot.pause(0.05)
        view = app.screen
        await pilot.pause(0.5)  # the view's first paint (imports pygments) is opening, not polling
        load0 = os.getloadavg()[0]
        app.frame_gap.reset()
        t0, wall0 = time.monotonic(), time.time()
        status = None
        while time.monotonic() - t0 < args.max_run_s:
            await pilot.pause(0.2)
            status = view.info.get("status")
            if status in ("finished", "stopped", "failed"):
                break
        seconds = time.monotonic() - t0
        gaps = list(app.frame_gap.gaps)
        with RunStore(view.run_dir) as store:
            if status not in ("finished", "stopped", "failed"):
                from workbench import control
                control.request_stop(store)
            cands = store.candidates()
            compiles = [c.info.get("timings", {}).get("compile_s") for c in cands]
            events = store.events(0, limit=1_000_000)
        # where the largest gaps fell (seconds after the run view opened), next to the run's own
        # events of the second before each, to tell polling/redraw stalls from CPU starvation
        ends = [sum(gaps[:i + 1]) for i in range(len(gaps))]
        worst = []
        for i in sorted(range(len(gaps)), key=lambda i: -gaps[i])[:8]:
            at = ends[i]
            near = sorted({e["kind"] for e in events
                           if at - gaps[i] - 1.0 <= e["created"] - wall0 <= at})
            worst.append({"gap_ms": gaps[i] * 1000, "at_s": at, "events_before": near})
        out["running"] = {**stats(gaps), "seconds": seconds, "status": status,
                          "candidates": [(c.id, c.outcome) for c in cands],
                          "sandbox_compile_s": compiles,
                          "load_start": load0, "load_end": os.getloadavg()[0],
                          "largest_gaps": worst, "run_dir": str(view.run_dir)}
    for p in launcher.procs:
        try:
            p.wait(120)
        except Exception:  # noqa: BLE001 - reported, not fatal for the measurement
            out.setdefault("notes", []).append(f"run process {p.pid} still running at exit")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timesteps", type=int, default=4096)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--idle-s", type=float, default=20.0)
    ap.add_argument("--max-run-s", type=float, default=300.0)
    ap.add_argument("--workspace", default=None, help="default: a fresh temporary directory")
    ap.add_argument("--no-freeze", action="store_true",
                    help="also measure the running phase with the app's gc.freeze() disabled "
                         "(a second run, right after the first)")
    args = ap.parse_args()
    workspace = Path(args.workspace or tempfile.mkdtemp(prefix="tui-frame-gap-"))
    res = asyncio.run(measure(workspace, args))
    if args.no_freeze:
        res["running_no_freeze"] = asyncio.run(measure(workspace / "nofreeze", args, False))["running"]
    idle, run = res["idle"], res["running"]
    ratio = {k: run[k] / idle[k] if idle[k] else float("nan") for k in ("max_ms", "p99_ms", "p50_ms")}
    print(f"TUI frame gaps (50 ms timer), cpu count {os.cpu_count()}, load avg "
          f"{idle['load_start']:.1f} → {run['load_end']:.1f}")
    print(f"{'phase':<28}{'max ms':>9}{'p99 ms':>9}{'p50 ms':>9}{'ticks':>8}{'s':>7}")
    print(f"{'idle (reference)':<28}{idle['max_ms']:>9.0f}{idle['p99_ms']:>9.0f}"
          f"{idle['p50_ms']:>9.0f}{idle['ticks']:>8}{idle['seconds']:>7.0f}")
    print(f"{'running (compile + train)':<28}{run['max_ms']:>9.0f}{run['p99_ms']:>9.0f}"
          f"{run['p50_ms']:>9.0f}{run['ticks']:>8}{run['seconds']:>7.0f}")
    if "running_no_freeze" in res:
        nf = res["running_no_freeze"]
        print(f"{'running, gc.freeze() off':<28}{nf['max_ms']:>9.0f}{nf['p99_ms']:>9.0f}"
              f"{nf['p50_ms']:>9.0f}{nf['ticks']:>8}{nf['seconds']:>7.0f}")
    print(f"{'ratio running / idle':<28}{ratio['max_ms']:>9.2f}{ratio['p99_ms']:>9.2f}"
          f"{ratio['p50_ms']:>9.2f}")
    print(f"run: {run['status']}, candidates {run['candidates']}, sandbox compile s "
          f"{[round(c, 1) if c else c for c in run['sandbox_compile_s']]}")
    print("largest running gaps: " + "; ".join(
        f"{w['gap_ms']:.0f} ms at {w['at_s']:.1f} s ({','.join(w['events_before']) or '-'})"
        for w in run["largest_gaps"][:5]))
    out = ROOT / "bench" / "results" / f"tui_frame_gap-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "cpu_count": os.cpu_count(), **res,
                               "ratio": ratio}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
