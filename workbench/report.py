"""Self-contained reports of runs and studies: Markdown plus PNG figures, from the store only.

A *run* report shows the fitness over time, the best candidate (program, expression or network
summary, and the figure its family asks for: LPO's drift against PPO's clip drift), its
per-environment returns with standard errors on meta-train and meta-test environments, outcomes,
environment samples and wall time.  A *study* (a directory of runs) puts the methods side by side in
the layout of the paper's comparison: in-distribution vs out-of-distribution normalised return,
samples, time and interpretability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from evaluators.families import FAMILIES  # noqa: E402

from .runs import ACTIVE_KEY, list_runs  # noqa: E402
from .agent.finalists import HELDOUT  # noqa: E402
from .candidate_ref import HELD_OUT, best_candidate  # noqa: E402
from .drift_figure import drift_figure  # noqa: E402
from .store import DB_NAME, CandidateRow, RunStore  # noqa: E402


@dataclass
class RunSummary:
    run_dir: Path
    name: str
    family: str
    method: str
    status: str
    wall_s: float
    env_steps: int
    cost_usd: float
    outcomes: dict[str, int]
    best: CandidateRow | None
    best_evals: list[dict[str, Any]] = field(default_factory=list)
    failure: str = ""  # why a failed run failed (e.g. a family that has no symbolic form)

    def split_score(self, split: str) -> tuple[float | None, float | None]:
        """Mean normalised return over a split's envs, and its standard error (over envs' SEs)."""
        rows = [e for e in self.best_evals if e["split"] == split and e["normalized"] is not None]
        if not rows:
            return None, None
        mean = float(np.mean([e["normalized"] for e in rows]))
        ses = []
        for e in rows:
            if e["return_stderr"] is not None and e["return_mean"] not in (None, 0):
                ses.append(abs(e["normalized"]) * e["return_stderr"] / max(abs(e["return_mean"]), 1e-9))
        se = float(np.sqrt(np.sum(np.square(ses))) / len(rows)) if ses else None
        return mean, se

    @property
    def interpretability(self) -> str:
        c = self.best
        if c is None:
            return "-"
        if c.kind == "symbolic" and c.source:
            return f"expression, {len(c.source)} chars"
        if c.kind in ("code", "warm_start") and c.source:
            lines = [ln for ln in c.source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            return f"program, {len(lines)} lines"
        if c.kind == "network":
            n = c.info.get("num_params")
            return f"network (hsize {c.hsize})" + (f", {n} params" if n else "")
        return c.kind


def summarise(run_dir: Path) -> RunSummary:
    with RunStore(run_dir) as store:
        info = store.run_info() or {}
        cands = store.candidates()
        outcomes: dict[str, int] = {}
        for c in cands:
            outcomes[c.outcome] = outcomes.get(c.outcome, 0) + 1
        best = best_candidate(store)  # held-out fitness when finalists were re-scored, else search
        best_row = best.candidate if best else None
        evals = [e for e in store.evaluations(best_row.id)
                 if best.basis != HELD_OUT or e["seed"] == best.seed] if best else []
        env_steps = int(info.get("env_steps") or 0) or _evaluation_steps(store)
        failure = store.get_state("failure_reason") or ""
        active = store.get_state(ACTIVE_KEY)
    return RunSummary(run_dir=Path(run_dir), name=info.get("name", Path(run_dir).name),
                      family=info.get("family", "?"), method=info.get("method", "?"),
                      status=info.get("status", "?"),
                      wall_s=float(active if active is not None
                                   else info.get("updated", 0) - info.get("created", 0)),
                      env_steps=env_steps, cost_usd=float(info.get("cost_usd") or 0), outcomes=outcomes,
                      best=best_row, best_evals=_latest_per_env(evals), failure=failure)


def _evaluation_steps(store: RunStore) -> int:
    rows = store._all("SELECT COALESCE(SUM(env_steps), 0) FROM evaluations")
    return int(rows[0][0])


def _latest_per_env(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for e in evals:
        latest[(e["env"], e["split"])] = e
    return list(latest.values())


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fitness_figure(store: RunStore, path: Path, title: str) -> Path | None:
    """Metrics whose name mentions fitness, over steps; plus each candidate's fitness."""
    names = [n for n in store.metric_names() if "fitness" in n]
    cands = [c for c in store.candidates() if c.fitness is not None and c.outcome == "ok"]
    if not names and not cands:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for n in names:
        pts = [(s, v) for s, v in store.metric(n) if v is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, label=n, lw=1.5)
    if cands:
        ax.scatter([c.id for c in cands] if not names else [c.generation for c in cands],
                   [c.fitness for c in cands], s=14, alpha=0.6, color="k", label="candidates (meta-train)")
        tests = [c for c in cands if c.test_fitness is not None]
        if tests:
            ax.scatter([c.id for c in tests] if not names else [c.generation for c in tests],
                       [c.test_fitness for c in tests], s=14, marker="x", alpha=0.7, color="tab:red",
                       label="candidates (meta-test)")
    ax.set_xlabel("generation" if names else "candidate")
    ax.set_ylabel("normalised return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def env_returns_figure(summary: RunSummary, path: Path) -> Path | None:
    rows = sorted(summary.best_evals, key=lambda e: (e["split"] != "train", e["env"]))
    rows = [e for e in rows if e["normalized"] is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows) + 2), 3.4))
    colors = ["tab:blue" if e["split"] == "train" else "tab:orange" for e in rows]
    yerr = [abs(e["normalized"]) * (e["return_stderr"] or 0) / max(abs(e["return_mean"] or 1), 1e-9)
            for e in rows]
    ax.bar(range(len(rows)), [e["normalized"] for e in rows], yerr=yerr, color=colors, capsize=3)
    ax.set_xticks(range(len(rows)), [f"{e['env']}\n({e['split']})" for e in rows], fontsize=8)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_ylabel("normalised return (1 = baseline)")
    ax.set_title(f"best candidate #{summary.best.id}" if summary.best else "")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _candidate_block(c: CandidateRow) -> str:
    if c.source:
        lang = "python" if c.kind in ("code", "warm_start") else "text"
        return f"```{lang}\n{c.source.strip()}\n```\n"
    if c.kind == "network":
        n = c.info.get("num_params")
        return (f"Network candidate, hidden size {c.hsize}" + (f", {n} parameters" if n else "")
                + (f", stored at `{c.params_path}`" if c.params_path else "") + ".\n")
    return f"{c.kind} candidate.\n"


def run_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write `report.md` (+ figures) for one run; returns the Markdown path."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    s = summarise(run_dir)
    lines = [f"# Run report: {s.name}", "",
             f"| family | method | status | wall time | env samples | LLM cost |",
             "|---|---|---|---|---|---|",
             f"| {s.family} | {s.method} | {s.status} | {_duration(s.wall_s)} | {s.env_steps:,} | "
             f"${s.cost_usd:.2f} |", "",
             "Outcomes: " + (", ".join(f"{k}: {v}" for k, v in sorted(s.outcomes.items())) or "none"), ""]
    with RunStore(run_dir) as store:
        fig = fitness_figure(store, out / "fitness.png", f"{s.family} / {s.method}")
    if fig:
        lines += ["## Fitness over the run", "", f"![fitness]({fig.name})", ""]
    if s.best:
        c = s.best
        lines += [f"## Best candidate: #{c.id} ({c.kind}, {c.method})", ""]
        if HELDOUT in c.info:
            h = c.info[HELDOUT]
            lines += [f"Chosen by held-out re-scores of the search's best programs ({h['seeds']} seeds "
                      f"from seed {h['seed']}, none used in the search): meta-train fitness "
                      f"{_fmt(h['fitness'])}, meta-test fitness {_fmt(h['test_fitness'])}; on the "
                      f"search seeds it scored {_fmt(c.fitness)} / {_fmt(c.test_fitness)}."]
        else:
            seeds = s.best_evals[0]["seeds"] if s.best_evals else None
            on = f" (search, {seeds} seeds: no finalist was re-scored)" if seeds else " (search)"
            lines += [f"Meta-train fitness {_fmt(c.fitness)}, meta-test fitness "
                      f"{_fmt(c.test_fitness)}{on}."]
        lines[-1] += f" Parents: {', '.join(map(str, c.parents)) or 'none'}."
        lines += ["", _candidate_block(c)]
        lines += _family_figure(run_dir, c, s.family, out)
        if s.best_evals:
            lines += ["| split | env | return (mean ± s.e.) | normalised | seeds |", "|---|---|---|---|---|"]
            for e in sorted(s.best_evals, key=lambda e: (e["split"] != "train", e["env"])):
                lines.append(f"| {e['split']} | {e['env']} | {_fmt(e['return_mean'], 1)} ± "
                             f"{_fmt(e['return_stderr'], 1)} | {_fmt(e['normalized'])} | {e['seeds']} |")
            lines.append("")
            fig2 = env_returns_figure(s, out / "returns.png")
            if fig2:
                lines += [f"![returns per environment]({fig2.name})", ""]
    else:
        lines += ["No candidate finished with outcome `ok`.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _family_figure(run_dir: Path, row: CandidateRow, family_name: str, out: Path) -> list[str]:
    """The figure the run's family asks for (`Family.report_figure`), as report lines; none for
    a family without one (or a name the registry does not know)."""
    family = FAMILIES.get(family_name)
    if family is None or family.report_figure is None:
        return []
    draw, caption = FAMILY_FIGURES[family.report_figure]
    fig = draw(run_dir, row, out / f"{family.report_figure}.png", family)
    return [caption, "", f"![{family.report_figure}]({fig.name})", ""] if fig else []


# Family.report_figure -> (draw(run_dir, row, path, family) -> Path | None, caption)
FAMILY_FIGURES: dict[str, tuple[Callable[..., Path | None], str]] = {
    "drift": (drift_figure, "Its drift (the penalty on r·A in the policy objective) against PPO's "
                            "clip drift, for a positive and a negative advantage:"),
}

METHOD_ORDER = ("es", "distill", "symbolic", "llm", "pipeline")
FAMILY_ORDER = tuple(FAMILIES)  # the registry's order, which is the paper's


def _method_key(s: RunSummary) -> tuple[int, str]:
    return (METHOD_ORDER.index(s.method) if s.method in METHOD_ORDER else len(METHOD_ORDER), s.name)


def study_report(study_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Methods side by side per family (the paper's layout), plus each run's own report."""
    study_dir = Path(study_dir)
    out = Path(out_dir) if out_dir else study_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    summaries = [summarise(d) for d in list_runs(study_dir)]
    lines = [f"# Study report: {study_dir.name}", "",
             "Normalised return of each run's best candidate (1.0 = the tuned baseline), on its "
             "meta-train environments (in-distribution, ID) and held-out meta-test environments "
             "(out-of-distribution, OOD), ± standard error over held-out evaluation seeds (seeds "
             "distinct from those used during the search). Each run is scored on its own held-out seeds, so "
             "two runs holding the same algorithm can differ by about their standard errors.", ""]
    families = sorted({s.family for s in summaries},
                      key=lambda f: (FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER), f))
    for family in families:
        lines += [f"## {family}", "",
                  "| method | run | status | ID return | OOD return | env samples | wall time | interpretability |",
                  "|---|---|---|---|---|---|---|---|"]
        for s in sorted((s for s in summaries if s.family == family), key=_method_key):
            idm, ids = s.split_score("train")
            odm, ods = s.split_score("test")
            rel = s.run_dir.relative_to(study_dir) if s.run_dir.is_relative_to(study_dir) else s.run_dir
            sub = run_report(s.run_dir, out / str(rel).replace("/", "_"))
            status = s.status + (f": {s.failure}" if s.status == "failed" and s.failure else "")
            lines.append(f"| {s.method} | [{rel}]({sub.relative_to(out)}) | {status} | "
                         f"{_fmt(idm)} ± {_fmt(ids)} | {_fmt(odm)} ± {_fmt(ods)} | {s.env_steps:,} | "
                         f"{_duration(s.wall_s)} | {s.interpretability} |")
        lines.append("")
    total = sum(s.wall_s for s in summaries)
    lines += [f"Total wall time of the runs: {_duration(total)}; env samples: "
              f"{sum(s.env_steps for s in summaries):,}.", ""]
    if summaries:
        fig = _study_figure(summaries, families, out / "comparison.png")
        lines += [f"![comparison]({fig.name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _study_figure(summaries: list[RunSummary], families: list[str], path: Path) -> Path:
    """One panel per family, a pair of bars (ID, OOD) per method, error bars from the seeds."""
    fig, axes = plt.subplots(1, len(families), figsize=(3.2 * len(families) + 0.8, 3.6),
                             sharey=True, squeeze=False)
    for ax, family in zip(axes[0], families):
        runs = sorted((s for s in summaries if s.family == family), key=_method_key)
        x = np.arange(len(runs))
        for offset, split, label, colour in ((-0.2, "train", "meta-train (ID)", "tab:blue"),
                                             (0.2, "test", "meta-test (OOD)", "tab:orange")):
            vals = [s.split_score(split) for s in runs]
            ax.bar(x + offset, [v[0] or 0.0 for v in vals], 0.4, yerr=[v[1] or 0.0 for v in vals],
                   label=label, color=colour, capsize=2)
        for i, s in enumerate(runs):
            if s.status == "failed" or s.best is None:
                ax.text(i, 0.02, "no result", rotation=90, ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, [s.method for s in runs], fontsize=8)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(family, fontsize=10)
    axes[0][0].set_ylabel("normalised return")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(path: str | Path) -> Path:
    """A run directory gets a run report; any other directory holding runs, a study report."""
    path = Path(path)
    if (path / DB_NAME).exists():
        return run_report(path)
    if not list_runs(path):
        raise FileNotFoundError(f"{path} holds no runs (no {DB_NAME} below it)")
    return study_report(path)
