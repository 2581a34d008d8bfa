"""A braille line/scatter plot drawn with rich Text: fitness over time without extra packages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.text import Text
from textual.widget import Widget

# braille dot bit for (column 0..1, row 0..3)
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    style: str
    line: bool = True


@dataclass
class PlotData:
    series: list[Series] = field(default_factory=list)
    x_label: str = "candidate"


def render_plot(data: PlotData, width: int, height: int) -> Text:
    """Render series into width x height cells: y axis labels, braille canvas, legend line."""
    pts = [p for s in data.series for p in s.points if _finite(p[1])]
    legend = Text("  ").join(Text(f"{'━' if s.line else '•'} {s.name}", style=s.style)
                             for s in data.series)
    if not pts or width < 16 or height < 3:
        out = Text("no fitness yet", style="dim")
        return out + "\n" + legend if height > 1 else out
    lab_w = 7
    cw, ch = max(width - lab_w, 4), max(height - 2, 1)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 - x0 < 1e-9:
        x1 = x0 + 1
    cells = [[0] * cw for _ in range(ch)]
    styles: list[list[str | None]] = [[None] * cw for _ in range(ch)]

    def dot(x: float, y: float, style: str) -> None:
        px = round((x - x0) / (x1 - x0) * (cw * 2 - 1))
        py = round((y1 - y) / (y1 - y0) * (ch * 4 - 1))
        cx, cy = px // 2, py // 4
        if 0 <= cx < cw and 0 <= cy < ch:
            cells[cy][cx] |= _DOTS[py % 4][px % 2]
            styles[cy][cx] = style

    for s in data.series:
        good = [p for p in s.points if _finite(p[1])]
        for i, (x, y) in enumerate(good):
            dot(x, y, s.style)
            if s.line and i:
                xa, ya = good[i - 1]
                steps = max(2, int(abs(x - xa) / (x1 - x0) * cw * 2) + 2)
                for k in range(1, steps):
                    t = k / steps
                    # a step plot: hold the previous value, then jump (best-so-far curves)
                    dot(xa + (x - xa) * t, ya, s.style)
                for k in range(1, 4 * ch):
                    yy = ya + (y - ya) * k / (4 * ch)
                    dot(x, yy, s.style)
    out = Text()
    for r in range(ch):
        if r == 0:
            label = f"{y1:>6.2f} "
        elif r == ch - 1:
            label = f"{y0:>6.2f} "
        else:
            label = " " * 6 + " "
        out.append(label[:lab_w], style="dim")
        for c in range(cw):
            out.append(chr(0x2800 + cells[r][c]) if cells[r][c] else " ", style=styles[r][c] or "")
        out.append("\n")
    axis = f"{' ' * lab_w}{_fmt(x0)}".ljust(lab_w + cw - len(_fmt(x1))) + _fmt(x1)
    out.append(axis[:width] + "\n", style="dim")
    out.append_text(legend)
    return out


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


class FitnessPlot(Widget):
    """Fitness over candidates: best-so-far lines and the population as dots (train and test)."""

    DEFAULT_CSS = "FitnessPlot { height: 12; }"

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.data = PlotData()

    def set_data(self, data: PlotData) -> None:
        self.data = data
        self.refresh()

    def render(self) -> Text:
        return render_plot(self.data, self.size.width, self.size.height)


def fitness_series(candidates) -> PlotData:
    """Population and best-so-far of meta-train and meta-test fitness, by candidate order."""
    train, test, best_tr, best_te = [], [], [], []
    bt = be = None
    for i, c in enumerate(candidates, start=1):
        if c.outcome != "ok" or c.fitness is None:
            continue
        train.append((i, c.fitness))
        if bt is None or c.fitness > bt:
            bt = c.fitness
            if c.test_fitness is not None:
                be = c.test_fitness
        best_tr.append((i, bt))
        if c.test_fitness is not None:
            test.append((i, c.test_fitness))
        if be is not None:
            best_te.append((i, be))
    return PlotData([
        Series("population (train)", train, "cyan", line=False),
        Series("population (test)", test, "magenta", line=False),
        Series("best (train)", best_tr, "bold green"),
        Series("best's test", best_te, "yellow"),
    ])


METRIC_HINTS = ("fit", "best", "mean", "return")
METRIC_STYLES = ("bold green", "cyan", "yellow", "magenta")


def metric_series(metrics: dict[str, list[tuple[int, float | None]]]) -> PlotData:
    """Fallback for methods that log fitness as metrics per step (e.g. ES generations)."""
    names = [n for n in sorted(metrics) if any(h in n.lower() for h in METRIC_HINTS)][:4]
    return PlotData([Series(n, [(float(x), y) for x, y in metrics[n] if y is not None], st)
                     for n, st in zip(names, METRIC_STYLES)], x_label="step")
