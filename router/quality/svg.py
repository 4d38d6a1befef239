"""Small inline SVG charts (histograms, a scatter) for the report: no CDN, no script, opens anywhere."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 560, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 34, 46
PALETTE = {"blue": "#2f6fd0", "green": "#2e9d4f"}
FALLBACK = "#888888"


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (1, 2 or 5 × a power of ten apart) that cover [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * 0.75)
    if integer:
        step = max(1.0, math.ceil(step))
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high - 1e-9:
        ticks.append(first + len(ticks) * step)
    return ticks


class _Frame:
    """Plot area and the mapping from data to pixels."""

    def __init__(self, x_ticks: list[float], y_ticks: list[float]) -> None:
        self.x_ticks, self.y_ticks = x_ticks, y_ticks
        self.x0, self.x1 = x_ticks[0], x_ticks[-1]
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        self.width, self.height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(self, value: float) -> float:
        span = self.x1 - self.x0 or 1.0
        return LEFT + (value - self.x0) / span * self.width

    def y(self, value: float) -> float:
        span = self.y1 - self.y0 or 1.0
        return TOP + self.height - (value - self.y0) / span * self.height

    def axes(self, title: str, x_label: str, y_label: str) -> list[str]:
        bottom, right = TOP + self.height, LEFT + self.width
        parts = [
            f'<text x="{LEFT}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
            f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>',
            f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#333"/>',
            f'<text x="{LEFT + self.width / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12">'
            f"{escape(x_label)}</text>",
            f'<text x="14" y="{TOP + self.height / 2}" text-anchor="middle" font-size="12" '
            f'transform="rotate(-90 14 {TOP + self.height / 2})">{escape(y_label)}</text>',
        ]
        for tick in self.x_ticks:
            parts.append(f'<text x="{self.x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" font-size="10">'
                         f"{_fmt(tick)}</text>")
        for tick in self.y_ticks:
            parts.append(f'<text x="{LEFT - 6}" y="{self.y(tick) + 3:.1f}" text-anchor="end" font-size="10">'
                         f"{_fmt(tick)}</text>")
        return parts


def _svg(parts: Sequence[str], label: str) -> str:
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-label="{escape(label)}" font-family="sans-serif">\n{body}\n</svg>')


def _legend(names: Sequence[str]) -> list[str]:
    parts = []
    for index, name in enumerate(reversed(names)):  # in the title band, right-aligned, so it covers no bar
        x = WIDTH - RIGHT - 64 * (index + 1)
        y = 6
        colour = PALETTE.get(name, FALLBACK)
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}" fill-opacity="0.6"/>')
        parts.append(f'<text x="{x + 14}" y="{y + 9}" font-size="11">{escape(name)}</text>')
    return parts


def _empty(title: str) -> str:
    return _svg([f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="13">'
                 f"{escape(title)}: no data</text>"], title)


def histogram(series: Mapping[str, Sequence[float]], title: str, x_label: str, bins: int = 20,
              x_range: tuple[float, float] | None = None) -> str:
    """Overlaid histograms, one per named series (coloured by colour name)."""
    values = [v for vs in series.values() for v in vs if math.isfinite(v)]
    if not values:
        return _empty(title)
    x_ticks = nice_ticks(*(x_range or (min(values), max(values))))
    low, high = x_ticks[0], x_ticks[-1]
    width = (high - low) / bins
    counts = {name: [0] * bins for name in series}
    for name, vs in series.items():
        for v in vs:
            if math.isfinite(v):
                counts[name][min(bins - 1, max(0, int((v - low) / width)))] += 1
    top = max(max(c) for c in counts.values()) or 1
    frame = _Frame(x_ticks, nice_ticks(0, top, integer=True))
    parts = frame.axes(title, x_label, "answers")
    for name, bars in counts.items():
        colour = PALETTE.get(name, FALLBACK)
        for index, count in enumerate(bars):
            if count:
                x = frame.x(low + index * width)
                parts.append(f'<rect x="{x:.1f}" y="{frame.y(count):.1f}" width="{frame.width / bins:.1f}" '
                             f'height="{frame.y(0) - frame.y(count):.1f}" fill="{colour}" fill-opacity="0.55">'
                             f"<title>{escape(name)}: {count}</title></rect>")
    return _svg(parts + _legend(list(series)), title)


def scatter(points: Sequence[tuple[float, float]], title: str, x_label: str, y_label: str) -> str:
    """Points with the diagonal y = x: above it green's answer is longer than blue's."""
    if not points:
        return _empty(title)
    ticks = nice_ticks(0, max(max(x for x, _ in points), max(y for _, y in points)) or 1.0)
    top = ticks[-1]
    frame = _Frame(ticks, ticks)
    parts = frame.axes(title, x_label, y_label)
    parts.append(f'<line x1="{frame.x(0):.1f}" y1="{frame.y(0):.1f}" x2="{frame.x(top):.1f}" y2="{frame.y(top):.1f}" '
                 'stroke="#999" stroke-dasharray="4 3"/>')
    for x, y in points:
        parts.append(f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="3" fill="{PALETTE["green"]}" '
                     f'fill-opacity="0.6"><title>blue {x:g}, green {y:g}</title></circle>')
    return _svg(parts, title)
