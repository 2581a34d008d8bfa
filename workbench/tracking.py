"""Mirror a run's metrics and candidate outcomes to Weights & Biases, when enabled.

The run store stays the source of truth; wandb is a copy for people who like its dashboards.
Without `WANDB_API_KEY` (or with `wandb.mode: offline`) it logs offline under RUN_DIR/wandb, which
needs no network and can be uploaded later with `wandb sync`.  A resumed run continues the same
wandb run (its id is kept in the store).  Failures of wandb never stop the run.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

from .config import RunConfig
from .store import RunStore


def wandb_mode(mode: str) -> str:
    if mode != "auto":
        return mode
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


class WandbMirror:
    """Listens to the store's events and logs metrics and outcomes to one wandb run."""

    def __init__(self, config: RunConfig, store: RunStore):
        import wandb

        self._wandb = wandb
        self.mode = wandb_mode(config.wandb.mode)
        run_id = store.get_state("wandb_run_id")
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            store.set_state("wandb_run_id", run_id)
        self.run = wandb.init(project=config.wandb.project, entity=config.wandb.entity,
                              name=config.name, id=run_id, resume="allow", mode=self.mode,
                              dir=str(store.run_dir), config=config.model_dump(mode="json"),
                              settings=wandb.Settings(silent=True, console="off"))
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")
        store.add_listener(self.on_event)
        store.set_state("wandb", {"mode": self.mode, "id": run_id, "dir": str(self.run.dir)})

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            if kind == "metrics":
                values = {k: v for k, v in payload.items() if k != "step" and v is not None}
                self.run.log({"step": payload.get("step", 0), **values})
            elif kind == "outcome":
                data = {"candidate/id": payload.get("id"), "candidate/ok": payload.get("outcome") == "ok"}
                if payload.get("fitness") is not None:
                    data["candidate/fitness"] = payload["fitness"]
                self.run.log(data)
        except Exception as exc:  # noqa: BLE001 - a dashboard must never stop a run
            print(f"wandb: logging failed ({exc}); the run store still has everything", file=sys.stderr)

    def finish(self) -> None:
        try:
            self.run.finish()
        except Exception as exc:  # noqa: BLE001
            print(f"wandb: finish failed ({exc})", file=sys.stderr)


def start_mirror(config: RunConfig, store: RunStore) -> WandbMirror | None:
    if not config.wandb.enabled:
        return None
    try:
        return WandbMirror(config, store)
    except Exception as exc:  # noqa: BLE001 - wandb is optional; say why and go on
        print(f"wandb: disabled for this run ({exc}); metrics stay in {store.path}", file=sys.stderr)
        store.emit("wandb", {"error": str(exc)})
        return None
