"""Geometry of the intake charts (funnel, effort, understanding, containment, CSAT), drawn as SVG by templates.

The pages and the weekly report share these shapes (``templates/_intake_charts.html``
draws them), so a chart printed in the report is the one the lead saw.
Every chart is server-side SVG with a ``viewBox`` (it scales to a phone
without a script) and its colours are picked from dark to light with marks
and dash patterns besides, so it still reads printed in grey. Labels stay
text: the template escapes them like any other customer-facing string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

# Dark to light (viridis): each colour has its own grey when printed.
PALETTE = ("#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725")
LINE_COLOURS = ("#440154", "#2a788e", "#22a884")
# Lines: a dash pattern and a marker each, so they differ without colour.
DASHES = ("", "6 3", "2 3")
MARKERS = ("circle", "square", "triangle")

WIDTH = 480  # viewBox units: about the size of the page's text at 480 px wide, legible at 390
ROW = 34  # one horizontal bar with its label above it
LABEL_GAP = 14
BAR_HEIGHT = 14
PLOT_HEIGHT = 180  # columns and lines
LEFT = 44  # room for the y axis' labels
BOTTOM = 36  # room for the x axis' labels and title


@dataclass(frozen=True)
class HBar:
    label: str
    value: float
    text: str  # the value as the table writes it
    y: float
    width: float
    marker: Optional[float] = None  # x of a second value (p90) drawn as a tick
    marker_text: str = ""


@dataclass(frozen=True)
class HBarChart:
    title: str
    axis: str  # what the bars measure, written under the axis
    bars: tuple[HBar, ...]
    height: float
    ticks: tuple[tuple[float, str], ...]
    width: int = WIDTH


@dataclass(frozen=True)
class Segment:
    series: str
    label: str
    count: int
    y: float
    height: float
    colour: str


@dataclass(frozen=True)
class Column:
    label: str
    total: int
    x: float
    width: float
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str
    dash: str = ""
    marker: str = "circle"
    points: tuple[tuple[float, float, str], ...] = ()  # x, y, value as text

    @property
    def path(self) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _) in enumerate(self.points))


@dataclass(frozen=True)
class PlotChart:
    """Columns (stacked) or lines over weeks, with a y axis of ``ticks`` and x labels."""

    title: str
    axis: str
    legend: tuple[Series, ...]
    ticks: tuple[tuple[float, str], ...]
    x_labels: tuple[tuple[float, str], ...]
    columns: tuple[Column, ...] = ()
    lines: tuple[Series, ...] = ()
    width: int = WIDTH
    height: int = PLOT_HEIGHT + BOTTOM + 10
    plot_top: int = 10
    plot_bottom: int = PLOT_HEIGHT + 10
    left: int = LEFT
    legend_rows: tuple[tuple[float, float, Series], ...] = field(default_factory=tuple)


def number(value: float, decimals: int = 1) -> str:
    """«12», «3,5»: Spanish decimals, no trailing ",0"."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(".", ",")


def percent(share: float) -> str:
    return f"{share * 100:.1f} %".replace(".", ",")


def _nice_top(peak: float) -> float:
    """The axis' end: 1, 2, 4, 6 or 8 times a power of ten at or above ``peak`` (quarters and halves stay round)."""
    if peak <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(peak))) / 10 if peak >= 1 else 1.0
    for step in (1, 2, 4, 6, 8, 10):
        if peak <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def hbars(
    title: str,
    axis: str,
    rows: Sequence[tuple[str, float, str]],
    markers: Optional[Sequence[tuple[float, str]]] = None,
) -> HBarChart:
    """One bar per row (label above it); ``markers`` (p90...) as ticks on the same scale."""
    peak = max([value for _, value, _ in rows] + [m for m, _ in (markers or [])] + [0.0])
    top = _nice_top(peak)
    span = WIDTH - 2 * 8
    bars = []
    for index, (label, value, text) in enumerate(rows):
        marker = markers[index] if markers else None
        bars.append(
            HBar(
                label=label,
                value=value,
                text=text,
                y=8 + index * ROW + LABEL_GAP,
                width=round(span * value / top, 2),
                marker=round(8 + span * marker[0] / top, 2) if marker else None,
                marker_text=marker[1] if marker else "",
            )
        )
    height = 8 + len(rows) * ROW + BOTTOM
    ticks = tuple((round(8 + span * f, 2), number(top * f)) for f in (0, 0.5, 1))
    return HBarChart(title=title, axis=axis, bars=tuple(bars), height=height, ticks=ticks)


def _x_slots(count: int) -> tuple[float, float]:
    """Where columns go: the left edge of the first slot and each slot's width."""
    plot = WIDTH - LEFT - 8
    return LEFT, plot / max(count, 1)


def _legend(series: Sequence[Series], top: float) -> tuple[tuple[tuple[float, float, Series], ...], float]:
    """Legend entries laid out in rows of two under the plot; returns them and the chart's new height."""
    placed = []
    for index, item in enumerate(series):
        column, row = index % 2, index // 2
        placed.append((8 + column * (WIDTH / 2), top + row * 18, item))
    rows = -(-len(series) // 2)
    return tuple(placed), top + rows * 18 + 4


def stacked_columns(
    title: str,
    axis: str,
    columns: Sequence[tuple[str, dict[str, int]]],
    series: Sequence[tuple[str, str]],
) -> PlotChart:
    """One stacked column per period (``columns``: label, counts by series key), scaled to the biggest total."""
    legend = tuple(Series(key, label, PALETTE[i % len(PALETTE)]) for i, (key, label) in enumerate(series))
    top = _nice_top(max([sum(counts.get(k, 0) for k, _ in series) for _, counts in columns] + [0]))
    start, slot = _x_slots(len(columns))
    drawn = []
    for index, (label, counts) in enumerate(columns):
        y = float(PLOT_HEIGHT + 10)
        segments = []
        for item in legend:
            count = counts.get(item.key, 0)
            if count <= 0:
                continue
            height = round(PLOT_HEIGHT * count / top, 2)
            y -= height
            segments.append(Segment(item.key, item.label, count, round(y, 2), height, item.colour))
        width = min(slot * 0.6, 48)
        x = start + index * slot + (slot - width) / 2
        total = sum(counts.get(k, 0) for k, _ in series)
        drawn.append(Column(label, total, round(x, 2), round(width, 2), tuple(segments)))
    ticks = tuple((round(PLOT_HEIGHT + 10 - PLOT_HEIGHT * f, 2), number(top * f)) for f in (0, 0.25, 0.5, 0.75, 1))
    x_labels = tuple((round(c.x + c.width / 2, 2), c.label) for c in drawn)
    placed, height = _legend(legend, PLOT_HEIGHT + BOTTOM + 14)
    return PlotChart(
        title=title, axis=axis, legend=legend, ticks=ticks, x_labels=x_labels, columns=tuple(drawn),
        height=int(height), legend_rows=placed,
    )  # fmt: skip


def share_lines(
    title: str,
    axis: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[Optional[float]]]],
) -> PlotChart:
    """Lines of shares (0..1) over periods; a period without data (None) leaves a gap in no line, just no point."""
    start, slot = _x_slots(len(labels))
    centres = [round(start + i * slot + slot / 2, 2) for i in range(len(labels))]
    lines = []
    for index, (key, label, values) in enumerate(series):
        points = tuple(
            (centres[i], round(PLOT_HEIGHT + 10 - PLOT_HEIGHT * v, 2), percent(v))
            for i, v in enumerate(values)
            if v is not None
        )
        lines.append(Series(key, label, LINE_COLOURS[index % 3], DASHES[index % 3], MARKERS[index % 3], points))
    ticks = tuple((round(PLOT_HEIGHT + 10 - PLOT_HEIGHT * f, 2), f"{int(f * 100)} %") for f in (0, 0.25, 0.5, 0.75, 1))
    placed, height = _legend(lines, PLOT_HEIGHT + BOTTOM + 14)
    return PlotChart(
        title=title, axis=axis, legend=tuple(lines), ticks=ticks, x_labels=tuple(zip(centres, labels, strict=True)),
        lines=tuple(lines), height=int(height), legend_rows=placed,
    )  # fmt: skip


def short_week(week: str) -> str:
    """«2026-W48» as an axis label: «S48»."""
    return "S" + week.split("-W")[-1] if "-W" in week else week
