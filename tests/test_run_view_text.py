"""The run view's text: sort orders, status line and parent diffs, from plain store rows."""

from workbench.store import CandidateRow
from workbench.tui.run_view_text import parent_diff, sorted_candidates, status_line, table_cells


def _row(cid, fitness=None, outcome="ok", source="x = 1\n", reason="", test=None):
    return CandidateRow(id=cid, created=0.0, method="llm", kind="code", label=f"c{cid}",
                        source=source, params_path=None, hsize=None, parents=[], generation=cid,
                        source_hash=None, outcome=outcome, reason=reason, fitness=fitness,
                        test_fitness=test, info={})


def test_sorts_put_the_best_first_and_unscored_last():
    rows = [_row(1, 0.2), _row(2, None, "crashed", reason="boom"), _row(3, 0.9, test=0.1)]
    assert [c.id for c in sorted_candidates(rows, "fitness")] == [3, 1, 2]
    assert [c.id for c in sorted_candidates(rows, "test")] == [3, 1, 2]
    assert [c.id for c in sorted_candidates(rows, "outcome")] == [2, 1, 3]
    assert table_cells(rows[1])[-1] == "boom"  # a failed candidate shows why, not its label


def test_status_line_counts_ok_best_and_cost_cap():
    rows = [_row(1, 0.2), _row(2, None, "timeout"), _row(3, 0.9)]
    info = {"family": "lpo", "method": "llm", "status": "running", "cost_usd": 0.5,
            "env_steps": 12345, "config": {"llm": {"max_cost_usd": 2.0}}}
    line = status_line(info, rows, paused=True)
    assert "PAUSED" in line and "3 cands (2 ok)" in line and "best 0.900" in line
    assert "$0.50 / $2.00" in line and "12,345 env steps" in line


def test_parent_diff_shows_the_changed_line():
    diff = parent_diff(_row(1, source="a = 1\nb = 2\n"), _row(2, source="a = 1\nb = 3\n"))
    assert "-b = 2" in diff and "+b = 3" in diff and "candidate 1" in diff


def test_the_status_line_of_an_offline_run_fits_80_columns():
    import re

    from workbench.tui.run_view_text import compact_count

    cands = [_row(i, 0.5) for i in range(120)]
    info = {"family": "no_features", "method": "pipeline", "status": "interrupted",
            "cost_usd": 0.0, "env_steps": 123_456_789, "config": {"seeds": 16, "llm": {}}}
    plain = re.sub(r"\[/?[^\]]*\]", "", status_line(info, cands, False))
    assert max(map(len, plain.splitlines())) <= 78, plain  # the banner pads one column each side
    assert "$" not in plain and "123M env steps" in plain and "(search, 16 seeds)" in plain
    assert compact_count(12_345) == "12,345" and compact_count(4_560_000_000) == "4.56B"
