"""Charts drawn on the server as SVG: no JavaScript, nothing fetched, styled by the app's CSS classes.

Each function returns :class:`markupsafe.Markup` holding one ``<svg role="img">`` with a ``<title>`` (what a screen
reader says) and the figures as text beside the lines, so the chart reads without colour too. Every text from
data is escaped.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True)
class Line:
    """One series: its name (for the legend), its values (None: no point), and its CSS class."""

    name: str
    values: Sequence[float | None]
    css: str = "series-1"
    dashed: bool = False


def _id(title: str) -> str:
    """A stable element id for a chart's title (charts on one page have different titles)."""
    return "chart-" + hashlib.sha1(title.encode()).hexdigest()[:10]


def _nice_max(value: float) -> float:
    if value <= 0 or not math.isfinite(value):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def line_chart(
    lines: Sequence[Line],
    x_labels: Sequence[str],
    *,
    title: str,
    y_format: Callable[[float], str],
    y_max: float | None = None,
    label_every: int | None = None,
) -> Markup:
    """Lines over shared x positions, with a y axis of four ticks and the x labels thinned to fit.

    Examples
    --------
    >>> svg = line_chart([Line("p", [0.1, 0.3, None, 0.2])], ["a", "b", "c", "d"], title="Score",
    ...                  y_format=lambda v: f"{v:.0%}")
    >>> svg.startswith("<svg") and ">Score</title>" in svg and "polyline" in svg
    True
    """
    n = len(x_labels)
    finite = [v for line in lines for v in line.values if v is not None and math.isfinite(v)]
    top = y_max if y_max is not None else _nice_max(max(finite, default=1.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(max(v / top, 0.0), 1.05))

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{_id(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_id(title)}">{escape(title)}</title>',
    ]
    for k in range(5):
        value = top * k / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{escape(y_format(value))}</text>"
        )
    every = label_every or max(1, math.ceil(n / 8))
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text class="tick" x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    for line in lines:
        points = [(x(i), y(v)) for i, v in enumerate(line.values) if v is not None and math.isfinite(v)]
        if not points:
            continue
        dash = " dashed" if line.dashed else ""
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline class="line {escape(line.css)}{dash}" points="{path}"/>')
        if len(points) <= 16:
            parts += [
                f'<circle class="dot {escape(line.css)}" cx="{px:.1f}" cy="{py:.1f}" r="3"/>' for px, py in points
            ]
    for k, line in enumerate(lines):
        lx = LEFT + 8 + 170 * k
        dash = " dashed" if line.dashed else ""
        parts.append(
            f'<line class="line {escape(line.css)}{dash}" x1="{lx}" x2="{lx + 18}" y1="{HEIGHT - 8}" '
            f'y2="{HEIGHT - 8}"/>'
        )
        parts.append(f'<text class="legend" x="{lx + 24}" y="{HEIGHT - 4}">{escape(line.name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def calibration_chart(
    predicted: Sequence[float], observed: Sequence[float], *, title: str, labels: tuple[str, str]
) -> Markup:
    """Observed rate against predicted probability per bin, with the diagonal of perfect calibration."""
    top = _nice_max(max([*predicted, *observed, 0.01]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(v: float) -> float:
        return LEFT + plot_w * min(v / top, 1.0)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - min(v / top, 1.0))

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{_id(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_id(title)}">{escape(title)}</title>',
        f'<line class="diagonal" x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(top):.1f}" y2="{y(top):.1f}"/>',
    ]
    for k in range(5):
        v = top * k / 4
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0%}</text>')
        parts.append(
            f'<text class="tick" x="{x(v):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{v:.0%}</text>'
        )
    points = " ".join(f"{x(p):.1f},{y(o):.1f}" for p, o in zip(predicted, observed, strict=True))
    parts.append(f'<polyline class="line series-1" points="{points}"/>')
    parts += [
        f'<circle class="dot series-1" cx="{x(p):.1f}" cy="{y(o):.1f}" r="3.5"/>'
        for p, o in zip(predicted, observed, strict=True)
    ]
    parts.append(
        f'<text class="legend" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 4}" text-anchor="middle">'
        f"{escape(labels[0])} → </text>"
    )
    parts.append(
        f'<text class="legend" x="12" y="{TOP + plot_h / 2:.0f}" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})" text-anchor="middle">{escape(labels[1])} →</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    value_format: Callable[[float], str],
    reference: float | None = None,
) -> Markup:
    """Horizontal bars, one per label, each with its value written beside it; an optional reference line."""
    n = len(labels)
    row = 26
    height = TOP + row * n + 8
    top = _nice_max(max([*values, reference or 0.0, 1e-9]))
    left, plot_w = 150, WIDTH - 150 - 80
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="{_id(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_id(title)}">{escape(title)}</title>',
    ]
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y0 = TOP + row * i
        w = plot_w * max(value, 0.0) / top
        parts.append(f'<text class="tick" x="{left - 8}" y="{y0 + 16}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="bar" x="{left}" y="{y0 + 4}" width="{w:.1f}" height="{row - 8}"/>')
        parts.append(f'<text class="tick" x="{left + w + 6:.1f}" y="{y0 + 16}">{escape(value_format(value))}</text>')
    if reference is not None:
        rx = left + plot_w * reference / top
        parts.append(f'<line class="diagonal" x1="{rx:.1f}" x2="{rx:.1f}" y1="{TOP}" y2="{height - 8}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
