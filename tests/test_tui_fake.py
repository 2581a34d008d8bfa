"""A tiny fake method that writes to a run store like a real one, for the control and TUI tests.

Run in a thread (`fake_method(store, ...)`, or `ThreadLauncher` for the app) or as a process:
`python -m tests.test_tui_fake RUN_DIR [N] [--approval] [--delay S]`.
It never evaluates anything; fitnesses are a deterministic function of the candidate index.
Also the pilot tests' shared helpers (`finished_workspace`, `until`, `text_of`).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from workbench import control
from workbench.store import RunStore

# a program with the LPO family's signature (drift(ratio, advantage, epsilon)), >= 0, 0 at r = 1
WARM = ("def drift(ratio, advantage, epsilon):\n"
        "    return 1.0 * jnp.maximum(0.0, (ratio - 1.0) * advantage)\n")


def make_run(run_dir: Path, name: str = "fake", method: str = "llm", status: str = "created",
             approval: bool = False) -> RunStore:
    from workbench.config import build_config
    cfg = build_config({"name": name, "family": "lpo", "method": method, "envs": ["cartpole"],
                        "test_envs": ["acrobot"], "seeds": 2, "workspace": str(run_dir.parent),
                        "llm": {"proposer": "mutation", "generations": 6, "max_candidates": 6,
                                "approval": approval}})
    store = RunStore(run_dir)
    store.init_run(name, "lpo", method, cfg.model_dump(mode="json"))
    if status != "created":
        store.set_status(status)
    return store


def fake_method(store: RunStore, n: int = 6, approval: bool = False, delay: float = 0.05) -> None:
    """Propose n candidates; honour pause/stop/messages/approvals through `workbench.control`."""
    existing = store.candidates()
    parent = next((c.id for c in reversed(existing) if c.outcome == "ok"), None)
    for i in range(n):
        if i < len(existing) and existing[i].outcome != "pending":
            continue  # recorded before a stop: never evaluated twice
        control.checkpoint(store, poll_s=0.02)
        for text in control.take_messages(store):
            store.add_message("assistant", f"noted: {text}")
        src = WARM.replace("1.0 *", f"{1.0 + 0.1 * i:.1f} *", 1)
        if i < len(existing):
            cid = existing[i].id  # proposed before a stop, still waiting: wait again
        else:
            store.add_message("assistant", f"proposal {i}", {"tool": "propose"})
            cid = store.add_candidate(method="mutation", kind="code", label=f"cand {i}",
                                      source=src, parents=[parent] if parent else [],
                                      generation=i)
        if approval:
            d = control.await_approval(store, cid, poll_s=0.02)
            if d.decision == "reject":
                store.finish_candidate(cid, "invalid", reason="rejected by the user")
                continue
            if d.decision == "edit":
                store._exec("UPDATE candidates SET source = ? WHERE id = ?", (d.source, cid))
        for k in range(4):
            control.report_progress(store, k + 1, 4, f"candidate {cid}")
            time.sleep(delay)
        fit = 0.5 + 0.05 * i if i != 2 else None
        if fit is None:
            store.finish_candidate(cid, "nan", reason="return was NaN on cartpole")
        else:
            store.add_evaluation(cid, "cartpole", "train", {"return_mean": 400 * fit,
                                 "return_stderr": 3.0, "normalized": fit}, seeds=2, seed=0)
            store.add_evaluation(cid, "acrobot", "test", {"return_mean": -100 / fit,
                                 "return_stderr": 2.0, "normalized": fit - 0.1}, seeds=2, seed=0)
            store.finish_candidate(cid, "ok", fitness=fit, test_fitness=fit - 0.1)
            parent = cid
        store.log_metrics(i, {"best": fit or 0.0})
        store.add_cost(usd=0.01, env_steps=20_000)
        store.set_state("fake.done", i + 1)


# -- shared by the TUI pilot tests ----------------------------------------------------------------
def finished_workspace(root: Path) -> Path:
    """A workspace with a finished fake run (`done`, 5 candidates) and a stopped one (`halted`)."""
    st = make_run(root / "ws" / "done", status="finished")
    fake_method(st, n=5, delay=0)
    st.set_status("finished")
    st.close()
    make_run(root / "ws" / "halted", status="stopped").close()
    return root / "ws"


class ThreadLauncher:
    """Starts the fake method in a thread instead of a `workbench.cli` process."""

    def __init__(self, approval: bool = False, n: int = 4, delay: float = 0.02):
        self.approval, self.n, self.delay = approval, n, delay
        self.threads: list[threading.Thread] = []
        self.configs = []

    def _go(self, run_dir: Path) -> None:
        def target():
            store = RunStore(run_dir)
            store.set_status("running")
            try:
                fake_method(store, n=self.n, approval=self.approval, delay=self.delay)
            except control.StopRequested:
                store.set_status("stopped")
                return
            store.set_status("finished")
        t = threading.Thread(target=target, daemon=True)
        t.start()
        self.threads.append(t)

    def start(self, config):
        from workbench.runs import create_run, new_run_dir

        self.configs.append(config)
        run_dir = new_run_dir(config)
        create_run(config, run_dir).close()
        self._go(run_dir)
        return run_dir

    def resume(self, run_dir):
        self._go(Path(run_dir))


async def until(pilot, pred, timeout: float = 10.0) -> bool:
    """Let the app run until `pred()` holds (an AssertionError after `timeout` seconds)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        await pilot.pause(0.05)
        if pred():
            return True
    raise AssertionError("condition not reached in time")


def text_of(app, selector) -> str:
    """What a Static of the current screen shows."""
    return str(app.screen.query_one(selector).render())


def test_fake_method_writes_candidates(tmp_path):
    store = make_run(tmp_path / "r")
    fake_method(store, n=3, delay=0)
    outs = [c.outcome for c in store.candidates()]
    assert outs == ["ok", "ok", "nan"]
    assert store.get_state("fake.done") == 3


if __name__ == "__main__":
    args = sys.argv[1:]
    run_dir = Path(args[0])
    n = int(args[1]) if len(args) > 1 and not args[1].startswith("--") else 6
    delay = float(args[args.index("--delay") + 1]) if "--delay" in args else 0.3
    st = RunStore(run_dir)
    st.set_status("running")
    try:
        fake_method(st, n=n, approval="--approval" in args, delay=delay)
    except control.StopRequested:
        st.set_status("stopped")
        sys.exit(130)
    st.set_status("finished")
