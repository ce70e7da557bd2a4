"""Inline SVG charts: interval bars, training curves, a rank histogram and per-offset diagnostics.

Each chart is a pure function of plain numbers that returns one ``<svg>``.
Every plotted mark is a ``<g>`` with ``data-*`` attributes holding the exact
input values (a browser test reads them back, a person can inspect them) and
a ``<title>`` tooltip; a missing value (None or NaN) draws nothing and its
attribute is empty.
"""

from __future__ import annotations

import json
from typing import Collection, Mapping, Sequence

from lvmbench.report.html.axes import (AXIS, BASELINE, CHAR_PX, HIGHLIGHT, INK, MODEL, MUTED, PALETTE, Fmt, Scale,
                                       attr, compact, finite, fmt_tick, line, log_ticks, nice_ticks, no_data, px, svg,
                                       text, x_axis, y_axis)
from lvmbench.report.html.page import Html, escape

__all__ = ["interval_bars", "line_chart", "histogram", "offsets_chart"]

Point = tuple[float, float]
MAX_LABEL_CHARS = 34
ROW = 24


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def _bar_colour(classes: list[str]) -> tuple[str, str]:
    """(fill, extra attributes): baselines pale and outlined with dashes, highlighted rows in the accent colour."""
    if "highlight" in classes:
        return HIGHLIGHT, ""
    if "baseline" in classes:
        return BASELINE, f' stroke="{AXIS}" stroke-dasharray="3 2"'
    return MODEL, ""


def _bar(label: str, v: float, lo: float, hi: float, classes: list[str], sx: Scale, y: float, fmt: Fmt) -> str:
    """One row: label, bar from the base to the value, whisker from low to high, the value printed after it."""
    data = f'data-label="{escape(label)}" data-value="{attr(v)}" data-low="{attr(lo)}" data-high="{attr(hi)}"'
    tip = f"{label}: {fmt(v)}" + (f" [{fmt(lo)}, {fmt(hi)}]" if finite(lo) and finite(hi) else "")
    parts = [f'<g class="{" ".join(["bar", *classes])}" {data}>', f"<title>{escape(tip)}</title>",
             text(sx.start - 8, y + ROW / 2 + 4, _short(label), "end", 12, MUTED if "baseline" in classes else INK,
                  ' class="label"')]
    end = sx.start
    if finite(v):
        base = min(max(0.0, sx.lo), sx.hi)
        x0, x1 = sorted((sx(base), sx(v)))
        fill, extra = _bar_colour(classes)
        parts.append(f'<rect x="{px(x0)}" y="{px(y + 5)}" width="{px(max(x1 - x0, 0.5))}" height="{ROW - 10}" '
                     f'fill="{fill}" fill-opacity="0.85"{extra}/>')
        end = sx(v)
    if finite(lo) and finite(hi):
        mid = y + ROW / 2
        parts += [line(sx(lo), mid, sx(hi), mid, INK, 1.3, ' class="whisker"'),
                  line(sx(lo), mid - 4, sx(lo), mid + 4, INK, 1.3), line(sx(hi), mid - 4, sx(hi), mid + 4, INK, 1.3)]
        end = max(end, sx(hi))
    parts.append(text(end + 6, y + ROW / 2 + 4, fmt(v), "start", 11, MUTED, ' class="value"'))
    return "\n".join(parts + ["</g>"])


def interval_bars(labels: Sequence[str], values: Sequence[float], lows: Sequence[float], highs: Sequence[float],
                  highlight: Collection[str] = frozenset(), xlabel: str = "", baselines: Collection[str] = frozenset(),
                  fmt: Fmt = fmt_tick, title: str = "", width: int = 760) -> Html:
    """Horizontal bars with 95 % interval whiskers, one row per label in the given order.

    ``baselines`` are drawn pale and dashed (and their labels grey) so they
    read as reference points, ``highlight`` in the accent colour; ``fmt``
    prints values and ticks (e.g. ``lvmbench.format.pct`` for rates).
    """
    if not len(labels) == len(values) == len(lows) == len(highs):
        raise ValueError("labels, values, lows and highs must have the same length")
    title = title or xlabel or "interval bars"
    if not labels:
        return no_data("interval-bars", width, 80, title)
    seen = [v for v in (*values, *lows, *highs) if finite(v)]
    ticks = nice_ticks(min([0.0, *seen]), max([0.0, *seen]) or 1.0)
    left = 16 + CHAR_PX * min(max(len(lb) for lb in labels), MAX_LABEL_CHARS)
    sx = Scale(ticks[0], ticks[-1], left, width - 70)
    bottom = 8 + ROW * len(labels)
    parts = [x_axis(sx, ticks, 8, bottom, xlabel, fmt)]
    for i, label in enumerate(labels):
        classes = [c for c, group in (("baseline", baselines), ("highlight", highlight)) if label in group]
        parts.append(_bar(label, values[i], lows[i], highs[i], classes or ["model"], sx, 8 + ROW * i, fmt))
    return svg("interval-bars", width, bottom + (48 if xlabel else 30), title, "\n".join(parts))


def _path(points: Sequence[Point], sx: Scale, sy: Scale) -> str:
    """An SVG path through the finite points; a missing point breaks the line instead of bridging it."""
    d, pen = [], "M"
    for x, y in points:
        if finite(x) and finite(y):
            d.append(f"{pen}{px(sx(x))} {px(sy(y))}")
            pen = "L"
        else:
            pen = "M"
    return " ".join(d)


def _series(name: str, points: Sequence[Point], colour: str, sx: Scale, sy: Scale, fx: Fmt, fy: Fmt) -> str:
    data = json.dumps([[x if finite(x) else None, y if finite(y) else None] for x, y in points])
    parts = [f'<g class="series" data-series="{escape(name)}" data-points="{escape(data)}">',
             f"<title>{escape(name)}</title>",
             f'<path d="{_path(points, sx, sy)}" fill="none" stroke="{colour}" stroke-width="2"/>']
    if len(points) <= 80:
        for x, y in points:
            if finite(x) and finite(y):
                parts.append(f'<circle cx="{px(sx(x))}" cy="{px(sy(y))}" r="3" fill="{colour}" data-x="{attr(x)}" '
                             f'data-y="{attr(y)}"><title>{escape(f"{name}: {fx(x)}, {fy(y)}")}</title></circle>')
    return "\n".join(parts + ["</g>"])


def _marker(x: float, label: str, sx: Scale, sy: Scale, fx: Fmt) -> str:
    """A dashed vertical line at ``x`` (e.g. the best epoch) with its label at the top."""
    tip = f"{label} {fx(x)}".strip()
    return (f'<g class="marker" data-x="{attr(x)}"><title>{escape(tip)}</title>\n'
            + line(sx(x), sy.start, sx(x), sy.end, HIGHLIGHT, 1.5, ' stroke-dasharray="5 3"') + "\n"
            + _marker_label(sx(x), sy.end + 11, tip, sx) + "\n</g>")


def _marker_label(x: float, y: float, tip: str, sx: Scale) -> str:
    """The marker's label right of its line, or left of it when it would run past the plot's right edge."""
    if x + 4 + CHAR_PX * len(tip) > sx.end + 15:
        return text(x - 4, y, tip, "end", 11, HIGHLIGHT)
    return text(x + 4, y, tip, "start", 11, HIGHLIGHT)


def _legend(names: Sequence[str], left: float) -> str:
    parts, x = ['<g class="legend">'], left
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts += [line(x, 12, x + 18, 12, colour, 3), text(x + 23, 16, name, "start", 12, INK)]
        x += 40 + CHAR_PX * len(name)
    return "\n".join(parts + ["</g>"])


def _line(kind: str, series: Mapping[str, Sequence[Point]], marker_x: float | None, xlabel: str, ylabel: str,
          opts: dict) -> Html:
    """The shared body of line_chart and offsets_chart (``opts``: their formatting and layout keywords)."""
    width, height, title = opts["width"], opts["height"], opts["title"] or ylabel or kind
    pts = [(x, y) for p in series.values() for x, y in p if finite(x) and finite(y)]
    if not pts:
        return no_data(kind, width, height, title)
    xs = [x for x, _ in pts] + ([marker_x] if finite(marker_x) else [])
    ys = [y for _, y in pts] + ([opts["y_ref"]] if finite(opts["y_ref"]) else [])
    xt = list(opts["x_ticks"] or nice_ticks(min(xs), max(xs), integer=all(float(x).is_integer() for x in xs)))
    yt = nice_ticks(min(ys), max(ys))
    legend = len(series) > 1
    top = 34 if legend else 16
    sx = Scale(min(xt[0], *xs), max(xt[-1], *xs), 70, width - 20)
    sy = Scale(yt[0], yt[-1], height - 50, top)
    parts = [y_axis(sy, yt, sx.start, sx.end, ylabel, opts["fmt_y"]),
             x_axis(sx, xt, sy.end, sy.start, xlabel, opts["fmt_x"])]
    if finite(opts["y_ref"]):
        parts.append(line(sx.start, sy(opts["y_ref"]), sx.end, sy(opts["y_ref"]), AXIS, 1, ' class="reference"'))
    parts += [_series(name, p, PALETTE[i % len(PALETTE)], sx, sy, opts["fmt_x"], opts["fmt_y"])
              for i, (name, p) in enumerate(series.items())]
    if finite(marker_x):
        parts.append(_marker(marker_x, opts["marker_label"], sx, sy, opts["fmt_x"]))
    if legend:
        parts.append(_legend(list(series), sx.start))
    return svg(kind, width, height, title, "\n".join(parts))


def line_chart(series: Mapping[str, Sequence[Point]], marker_x: float | None = None, xlabel: str = "",
               ylabel: str = "", marker_label: str = "best", fmt_x: Fmt = fmt_tick, fmt_y: Fmt = fmt_tick,
               title: str = "", width: int = 760, height: int = 320) -> Html:
    """Curves over a shared x (e.g. loss and Hit@5 per epoch), the chosen epoch marked by a dashed line."""
    opts = dict(width=width, height=height, title=title, x_ticks=None, y_ref=None, fmt_x=fmt_x, fmt_y=fmt_y,
                marker_label=marker_label)
    return _line("line-chart", series, marker_x, xlabel, ylabel, opts)


def offsets_chart(offsets: Sequence[float], values: Sequence[float], xlabel: str = "offset k",
                  ylabel: str = "cos(prediction, target t+k)", fmt: Fmt = fmt_tick, title: str = "",
                  width: int = 760, height: int = 280) -> Html:
    """cos(prediction, target t+k) per offset k: a predictor that points at t+1 peaks at k = 1.

    The y range always includes 0 (drawn as a reference line), so "no
    relation" is visible and small cosines are not blown up.
    """
    if len(offsets) != len(values):
        raise ValueError("offsets and values must have the same length")
    ticks = list(offsets) if 0 < len(offsets) <= 20 else None
    opts = dict(width=width, height=height, title=title, x_ticks=ticks, y_ref=0.0, fmt_x=fmt_tick, fmt_y=fmt,
                marker_label="")
    return _line("offsets-chart", {ylabel: list(zip(offsets, values))}, None, xlabel, ylabel, opts)


def _bin(lo: float, hi: float, count: float, sx: Scale, sy: Scale, fx: Fmt) -> str:
    x0, x1, y = sx(lo), sx(hi), sy(count)
    return (f'<g class="bin" data-lo="{attr(lo)}" data-hi="{attr(hi)}" data-count="{attr(count)}">'
            f"<title>{escape(f'[{fx(lo)}, {fx(hi)}): {count:g}')}</title>"
            f'<rect x="{px(x0 + 0.5)}" y="{px(y)}" width="{px(max(x1 - x0 - 1, 0.5))}" '
            f'height="{px(sy.start - y)}" fill="{MODEL}" fill-opacity="0.8"/></g>')


def histogram(counts: Sequence[float], edges: Sequence[float], xlabel: str = "", ylabel: str = "count",
              log_x: bool = False, fmt_x: Fmt | None = None, title: str = "", width: int = 760,
              height: int = 300) -> Html:
    """Counts per bin [edges[i], edges[i+1]); ``log_x`` for heavy tails such as the rank of the target."""
    if len(edges) != len(counts) + 1:
        raise ValueError(f"{len(edges)} edges for {len(counts)} counts (need one more edge than counts)")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError("edges must increase")
    if log_x and edges and edges[0] <= 0:
        raise ValueError("log_x needs positive edges")
    title = title or xlabel or "histogram"
    if not counts:
        return no_data("histogram", width, height, title)
    fx = fmt_x or (compact if log_x else fmt_tick)
    yt = nice_ticks(0.0, max(c for c in counts if finite(c)) or 1.0, integer=True)
    xt = log_ticks(edges[0], edges[-1]) if log_x else nice_ticks(edges[0], edges[-1])
    lo, hi = (edges[0], edges[-1]) if log_x else (xt[0], xt[-1])
    sx, sy = Scale(lo, hi, 70, width - 20, log=log_x), Scale(yt[0], yt[-1], height - 50, 14)
    parts = [y_axis(sy, yt, sx.start, sx.end, ylabel, compact), x_axis(sx, xt, sy.end, sy.start, xlabel, fx)]
    parts += [_bin(a, b, c, sx, sy, fx) for a, b, c in zip(edges, edges[1:], counts) if finite(c)]
    return svg("histogram", width, height, title, "\n".join(parts))
