"""The braille fitness plot: series from candidates or metrics, and what it draws."""

from __future__ import annotations

from tests.test_tui_fake import fake_method, make_run
from workbench.tui.widgets.plot import PlotData, Series, fitness_series, metric_series, render_plot


def test_fitness_series_tracks_best_so_far_and_skips_failures(tmp_path):
    store = make_run(tmp_path / "r")
    fake_method(store, n=5, delay=0)
    data = fitness_series(store.candidates())
    by = {s.name: s.points for s in data.series}
    assert by["population (train)"] == [(1, 0.5), (2, 0.55), (4, 0.65), (5, 0.7)]  # 3 was nan
    assert [y for _, y in by["best (train)"]] == [0.5, 0.55, 0.65, 0.7]
    assert by["best's test"][-1][1] == 0.6


def test_render_plot_draws_within_bounds_with_axis_labels():
    data = PlotData([Series("best", [(0, 0.0), (10, 1.0)], "green")])
    text = render_plot(data, 40, 8)
    lines = text.plain.splitlines()
    assert len(lines) == 8 and all(len(l) <= 40 for l in lines)
    assert lines[0].startswith("  1.00") and lines[5].startswith("  0.00")
    assert lines[6].strip().startswith("0") and lines[6].strip().endswith("10")
    braille = [c for l in lines[:6] for c in l if 0x2800 < ord(c) <= 0x28FF]
    assert len(braille) > 20  # the line is drawn, not just its end points
    assert "best" in lines[7]
    assert "no fitness yet" in render_plot(PlotData([Series("best", [], "green")]), 40, 8).plain


def test_metric_series_is_the_fallback_for_per_step_methods():
    data = metric_series({"es/best_fitness": [(0, 0.1), (1, 0.3)], "es/lr": [(0, 0.03)],
                          "es/mean_fitness": [(0, 0.05), (1, None)]})
    assert [s.name for s in data.series] == ["es/best_fitness", "es/mean_fitness"]
    assert data.series[1].points == [(0.0, 0.05)]


def test_run_view_plots_metrics_of_a_method_without_scored_candidates(tmp_path):
    import asyncio

    from workbench.tui.app import WorkbenchApp

    store = make_run(tmp_path / "ws" / "es-run", method="es", status="running")
    for g in range(3):
        store.log_metrics(g, {"best_fitness": 0.1 * g, "sigma": 0.03})

    async def go():
        app = WorkbenchApp(tmp_path / "ws", poll_interval=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            app.open_run(store.run_dir)
            await pilot.pause(0.3)
            plot = app.screen.query_one("#plot")
            assert [s.name for s in plot.data.series] == ["best_fitness"]
            store.log_metrics(3, {"best_fitness": 0.5})
            await pilot.pause(0.4)
            assert plot.data.series[0].points[-1] == (3.0, 0.5)
            assert app.screen.last_step == 3
    asyncio.run(go())
