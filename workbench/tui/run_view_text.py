"""What the run view says, as text: the status line, candidate table cells and sort orders, a
candidate's header and its diff to its parent.

Pure functions of store rows (no widgets), so the screen only places what they return.
"""

from __future__ import annotations

import difflib

from rich.text import Text

from ..agent.finalists import HELDOUT
from ..lease import describe_owner
from ..store import CandidateRow

OUTCOME_STYLE = {"ok": "green", "pending": "dim", "invalid": "red", "forbidden": "bold red",
                 "crashed": "red", "timeout": "yellow", "oom": "yellow", "nan": "magenta",
                 "no_code": "dim red", "duplicate": "dim"}
SORTS = ("id", "fitness", "test", "outcome")


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def lexer_for(c: CandidateRow) -> str:
    return "python" if c.kind == "code" else "text"


def sorted_candidates(rows: list[CandidateRow], by: str) -> list[CandidateRow]:
    """Best first for scores (unscored last), ties and the 'id' order by id."""
    neg = float("-inf")
    key = {"id": lambda c: c.id,
           "fitness": lambda c: (-(c.fitness if c.fitness is not None else neg), c.id),
           "test": lambda c: (-(c.test_fitness if c.test_fitness is not None else neg), c.id),
           "outcome": lambda c: (c.outcome, c.id)}[by]
    return sorted(rows, key=key)


def table_cells(c: CandidateRow) -> tuple:
    """id, generation, kind, outcome, fitness, test fitness, and the failure reason or label."""
    note = c.reason if c.outcome != "ok" and c.reason else c.label
    return (str(c.id), str(c.generation), c.kind,
            Text(c.outcome, style=OUTCOME_STYLE.get(c.outcome, "")),
            fmt(c.fitness), fmt(c.test_fitness), note[:60])


def score_cells(ev: dict) -> tuple:
    """One evaluation row: split, env, return mean and standard error, normalised, seeds."""
    return (ev["split"], ev["env"], fmt(ev["return_mean"]), fmt(ev["return_stderr"]),
            fmt(ev["normalized"]), str(ev["seeds"]))


def header(c: CandidateRow) -> Text:
    """The detail pane's first lines: identity, outcome, scores, parents, reason, thought."""
    meta = Text.assemble(
        (f"candidate {c.id}", "bold"), f"  {c.method}/{c.kind}  gen {c.generation}  ",
        (c.outcome, OUTCOME_STYLE.get(c.outcome, "")),
        f"  fitness {fmt(c.fitness)}  test {fmt(c.test_fitness)}  parents {c.parents or '-'}")
    if c.reason:
        meta.append(f"\nreason: {c.reason}", style="yellow")
    thought = c.info.get("thought")
    if thought:
        meta.append(f"\nthought: {thought}", style="italic")
    return meta


def source_text(c: CandidateRow) -> str:
    return c.source or (f"(network parameters: {c.params_path})" if c.params_path else "")


def parent_diff(parent: CandidateRow, c: CandidateRow) -> str:
    return "".join(difflib.unified_diff(parent.source.splitlines(True), c.source.splitlines(True),
                                        f"candidate {parent.id}", f"candidate {c.id}"))


STATUS_STYLE = {"running": "green", "stopped": "yellow", "failed": "red"}


def status_line(info: dict, cands: list[CandidateRow], paused: bool) -> str:
    """Two lines that fit 80 columns: family/method, state and candidates (ok); then the best
    fitness (which one, over how many seeds), the LLM cost against its cap, env steps."""
    cfg = info.get("config", {})
    status = info.get("status", "created")
    ok = sum(c.outcome == "ok" for c in cands)
    cap = cfg.get("llm", {}).get("max_cost_usd")
    spent = info.get("cost_usd", 0) or 0
    # a run that pays nothing and has no cap (the offline search) shows no cost
    cost = (f"${spent:.2f}" + (f" / ${cap:.2f}" if cap else "") + " · ") if cap or spent else ""
    style = STATUS_STYLE.get(status, "cyan")
    return (f"[b]{info.get('family', '?')}[/b]/{info.get('method', '?')} · "
            f"[{style}]{'PAUSED' if paused else status}[/] · {len(cands)} cands ({ok} ok)\n"
            f"{best_label(cands, cfg.get('seeds'))} · {cost}"
            f"{compact_count(info.get('env_steps', 0))} env steps")


def compact_count(n: int) -> str:
    """12,345 as it is; 1.23M and 4.6B where the digits would crowd the line."""
    if n < 1_000_000:
        return f"{n:,}"
    return f"{n / 1e6:.3g}M" if n < 1_000_000_000 else f"{n / 1e9:.3g}B"


def _seeds(n: object) -> str:
    return "" if n is None else f", {n} seed" + ("" if n == 1 else "s")


def best_label(cands: list[CandidateRow], search_seeds: object = None) -> str:
    """The best fitness and which one it is: the best held-out re-score where finalists were
    re-scored (fresh seeds, never searched on), else the best search fitness; with its seed count.
    """
    held = [c.info[HELDOUT] for c in cands
            if isinstance(c.info.get(HELDOUT), dict) and c.info[HELDOUT].get("fitness") is not None]
    if held:
        h = max(held, key=lambda h: h["fitness"])
        return f"best {fmt(h['fitness'])} (held-out{_seeds(h.get('seeds'))})"
    best = max((c.fitness for c in cands if c.outcome == "ok" and c.fitness is not None),
               default=None)
    return f"best {fmt(best)}" + (f" (search{_seeds(search_seeds)})" if best is not None else "")


def run_budget(cfg: dict) -> int | None:
    """What the run's progress bar counts to: candidates (LLM) or generations (ES)."""
    method = cfg.get("method")
    if method == "llm":
        llm = cfg.get("llm", {})
        return llm.get("max_candidates") or llm.get("generations")
    if method == "es":
        return cfg.get("es", {}).get("generations")
    return None


FAILURE_STATUSES = ("failed", "interrupted")


def failure_reason(info: dict, reason: str | None) -> str:
    """Why a failed or interrupted run ended, as one line ('' for any other status)."""
    status = info.get("status")
    if status == "failed":
        return f"failed: {reason}" if reason else "failed (no reason recorded; see the log)"
    if status == "interrupted":
        owner = info.get("owner")
        who = f" ({describe_owner(owner)})" if owner else ""
        return (f"interrupted: the process running it{who} is gone (killed, or the machine "
                "restarted); R resumes it")
    return ""
