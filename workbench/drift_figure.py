"""What a learned LPO candidate actually does: its drift against PPO's clip drift.

A drift network's weights say nothing to a reader, and a symbolic expression is easier to judge
as a curve. The LPO paper reads its discovered algorithms this way: the drift (the penalty
subtracted from r·A in the policy objective) over the probability ratio r, for a positive and a
negative advantage. The report draws it for the best network or expression candidate of a run
whose family says it has this figure (`Family.report_figure == "drift"`: LPO's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from evaluators.families import FAMILIES, Family, ppo_clip_drift  # noqa: E402
from sandbox.expressions import compile_expression  # noqa: E402

from .params_io import load_params  # noqa: E402
from .store import CandidateRow, RunStore  # noqa: E402

RATIOS = np.linspace(0.5, 1.5, 201, dtype=np.float32)
ADVANTAGES = (1.0, -1.0)

DriftFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]


def run_family(run_dir: str | Path) -> Family | None:
    """The registered family of the run in `run_dir`, None when the store names none we know."""
    with RunStore(run_dir, readonly=True) as store:
        name = (store.run_info() or {}).get("family")
    return FAMILIES.get(name) if isinstance(name, str) else None


def candidate_drift(run_dir: str | Path, row: CandidateRow, clip_eps: float = 0.2,
                    family: Family | None = None) -> DriftFn | None:
    """The drift of a stored network or expression candidate, as the evaluator applies it.

    `family` defaults to the run's own.  None for families without a drift figure
    (`Family.report_figure`), for a network of another family, and for kinds that cannot be
    drawn without running untrusted code (programs).
    """
    family = run_family(run_dir) if family is None else family
    if family is None or family.report_figure != "drift":
        return None
    if row.kind == "network" and row.params_path:
        params, name, _ = load_params(Path(run_dir) / row.params_path)
        if name != family.name:
            return None
        meta = {k: jnp.asarray(v) for k, v in params.items()}
        return lambda r, a: family.network_drift(meta, r, a, clip_eps)
    if row.kind == "symbolic" and row.source:
        fn = compile_expression(row.source, family.symbol_names)
        return lambda r, a: family.expression_drift(fn, r, a, clip_eps)
    return None


def drift_curves(drift: DriftFn, clip_eps: float = 0.2) -> dict[str, dict[float, np.ndarray]]:
    """Drift over RATIOS for each advantage sign, for the candidate and for PPO."""
    r = jnp.asarray(RATIOS)
    out: dict[str, dict[float, np.ndarray]] = {"candidate": {}, "PPO clip": {}}
    for a in ADVANTAGES:
        adv = jnp.full_like(r, a)
        out["candidate"][a] = np.asarray(drift(r, adv))
        out["PPO clip"][a] = np.asarray(ppo_clip_drift(r, adv, clip_eps))
    return out


def plot_drift(curves: dict[str, dict[float, np.ndarray]], path: str | Path, title: str = "") -> Path:
    fig, axes = plt.subplots(1, len(ADVANTAGES), figsize=(9, 3.4), sharey=True)
    for ax, a in zip(axes, ADVANTAGES):
        ax.plot(RATIOS, curves["PPO clip"][a], "--", color="grey", lw=1.4, label="PPO clip (ε 0.2)")
        ax.plot(RATIOS, curves["candidate"][a], color="tab:blue", lw=1.8, label=title or "candidate")
        ax.set_title(f"advantage A = {a:+g}")
        ax.set_xlabel("probability ratio r")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("drift (penalty on r·A)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def drift_figure(run_dir: str | Path, row: CandidateRow, path: str | Path,
                 family: Family | None = None) -> Path | None:
    """The drift figure of `row` written to `path`, or None where there is no drift to draw."""
    drift = candidate_drift(run_dir, row, family=family)
    if drift is None:
        return None
    return plot_drift(drift_curves(drift), path, title=f"#{row.id} {row.label or row.kind}")
