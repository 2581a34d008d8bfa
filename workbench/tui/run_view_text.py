"""What the run view says, as text: the status line, candidate table cells and sort orders, a
candidate's header and its diff to its parent.

Pure functions of store rows (no widgets), so the screen only places what they return.
"""

from __future__ import annotations

import difflib

from rich.text import Text

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
    """family/method, state, candidates (ok), best fitness, LLM cost against its cap, env steps."""
    cfg = info.get("config", {})
    status = info.get("status", "created")
    ok = sum(c.outcome == "ok" for c in cands)
    best = max((c.fitness for c in cands if c.outcome == "ok" and c.fitness is not None),
               default=None)
    cap = cfg.get("llm", {}).get("max_cost_usd")
    cost = f"${info.get('cost_usd', 0):.2f}" + (f" / ${cap:.2f}" if cap else "")
    style = STATUS_STYLE.get(status, "cyan")
    return (f"[b]{info.get('family', '?')}[/b]/{info.get('method', '?')} "
            f"[{style}]{'PAUSED' if paused else status}[/] · {len(cands)} cands ({ok} ok) · "
            f"best {fmt(best)} · {cost} · {info.get('env_steps', 0):,} steps")


def run_budget(cfg: dict) -> int | None:
    """What the run's progress bar counts to: candidates (LLM) or generations (ES)."""
    method = cfg.get("method")
    if method == "llm":
        llm = cfg.get("llm", {})
        return llm.get("max_candidates") or llm.get("generations")
    if method == "es":
        return cfg.get("es", {}).get("generations")
    return None
