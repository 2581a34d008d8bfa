"""Learning-curve figures (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_learning_curves(curves: Mapping[str, np.ndarray], steps_per_update: Mapping[str, int],
                         path: str | Path, title: str = "") -> Path:
    """One panel per environment: mean return over seeds with a standard-error band.

    `curves[env]` has shape (seeds, updates).
    """
    envs = list(curves)
    fig, axes = plt.subplots(1, len(envs), figsize=(4.5 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        c = np.asarray(curves[env], dtype=float)
        x = np.arange(1, c.shape[1] + 1) * steps_per_update[env]
        mean = np.nanmean(c, axis=0)
        se = np.nanstd(c, axis=0) / np.sqrt(max(c.shape[0], 1))
        ax.plot(x, mean, lw=1.6)
        ax.fill_between(x, mean - se, mean + se, alpha=0.25)
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
