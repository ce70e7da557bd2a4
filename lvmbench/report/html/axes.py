"""Scales, ticks and axes for the inline SVG charts (svg.py), kept apart so each chart reads as its layout.

Colours are SVG presentation attributes, not page CSS, so a chart copied out
of the page still looks right; the page CSS may still override them.
Coordinates are rounded to 0.1 px to keep the page small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from lvmbench.report.html.page import Html, escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"
INK = "#1b1f24"
MUTED = "#57606a"
AXIS = "#8c959f"
GRID = "#e6e9ed"
MODEL = "#1f77b4"
BASELINE = "#b6bcc3"
HIGHLIGHT = "#d62728"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
CHAR_PX = 6.8
"""Rough width of one character at the 12 px chart font: enough to leave room for labels."""

Fmt = Callable[[float], str]


def finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def attr(x: object) -> str:
    """A value for a ``data-*`` attribute: the shortest repr that round-trips, or "" when missing."""
    return repr(float(x)) if finite(x) else ""


def px(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def fmt_tick(v: float) -> str:
    """A tick or value label: up to four significant digits, no float noise (0.30000000000000004 -> 0.3)."""
    return "—" if not finite(v) else f"{v:.4g}"


def compact(v: float) -> str:
    """Large counts in a few characters, for log axes: 1000 -> 1k, 2500000 -> 2.5M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.3g}{suffix}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    """About ``n`` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi]."""
    if not (finite(lo) and finite(hi)):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, round(step))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten within [lo, hi] (both > 0); the two ends when no power of ten falls inside."""
    ticks = [10.0 ** e for e in range(math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9) + 1)]
    return ticks or [lo, hi]


@dataclass(frozen=True)
class Scale:
    """Data [lo, hi] onto pixels [start, end], linear or log10."""

    lo: float
    hi: float
    start: float
    end: float
    log: bool = False

    def __call__(self, v: float) -> float:
        f = math.log10 if self.log else float
        span = f(self.hi) - f(self.lo)
        t = (f(v) - f(self.lo)) / span if span else 0.5
        return self.start + t * (self.end - self.start)


def text(x: float, y: float, s: str, anchor: str = "start", size: int = 12, fill: str = INK,
         extra: str = "") -> str:
    return (f'<text x="{px(x)}" y="{px(y)}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}>'
            f"{escape(s)}</text>")


def line(x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1, extra: str = "") -> str:
    return (f'<line x1="{px(x1)}" y1="{px(y1)}" x2="{px(x2)}" y2="{px(y2)}" stroke="{stroke}" '
            f'stroke-width="{px(width)}"{extra}/>')


def x_axis(scale: Scale, ticks: Sequence[float], top: float, bottom: float, label: str, fmt: Fmt) -> str:
    """Vertical grid lines from ``top`` to the axis at ``bottom``, tick labels and the axis label under it."""
    parts = ['<g class="axis x-axis">']
    for t in ticks:
        x = scale(t)
        parts += [line(x, top, x, bottom, GRID), line(x, bottom, x, bottom + 4, AXIS),
                  text(x, bottom + 17, fmt(t), "middle", 11, MUTED)]
    parts.append(line(scale.start, bottom, scale.end, bottom, AXIS))
    if label:
        parts.append(text((scale.start + scale.end) / 2, bottom + 36, label, "middle", 12, INK))
    return "\n".join(parts + ["</g>"])


def y_axis(scale: Scale, ticks: Sequence[float], left: float, right: float, label: str, fmt: Fmt) -> str:
    """Horizontal grid lines from the axis at ``left`` to ``right``, tick labels and a rotated axis label."""
    parts = ['<g class="axis y-axis">']
    for t in ticks:
        y = scale(t)
        parts += [line(left, y, right, y, GRID), line(left - 4, y, left, y, AXIS),
                  text(left - 7, y + 4, fmt(t), "end", 11, MUTED)]
    parts.append(line(left, scale.start, left, scale.end, AXIS))
    if label:
        mid = (scale.start + scale.end) / 2
        parts.append(text(14, mid, label, "middle", 12, INK, f' transform="rotate(-90 14 {px(mid)})"'))
    return "\n".join(parts + ["</g>"])


def svg(kind: str, width: float, height: float, label: str, body: str) -> Html:
    """The ``<svg>`` element; inline in HTML it needs no xmlns (so no URL appears in the page at all)."""
    return Html(f'<svg class="chart {kind}" data-kind="{kind}" viewBox="0 0 {px(width)} {px(height)}" '
                f'width="{px(width)}" height="{px(height)}" role="img" aria-label="{escape(label)}" '
                f'font-family="{FONT}">\n<title>{escape(label)}</title>\n{body}\n</svg>\n')


def no_data(kind: str, width: float, height: float, label: str) -> Html:
    """An empty chart that says so, rather than an exception or a blank box."""
    return svg(kind, width, height, label, text(width / 2, height / 2, "no data", "middle", 13, MUTED))
