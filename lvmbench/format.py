"""The one formatting helper: how numbers look in every table lvmbench prints.

Rates print as percentages with one decimal, intervals in brackets, p-values
with two significant digits below 0.001, lifts with a sign; a missing value
(None or NaN) prints as an em dash, never as "nan".  Times print as a clock
(progress lines) or in minutes and hours (estimates).
"""

from __future__ import annotations

import math
from typing import Any

DASH = "—"


def missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(x: float | None) -> str:
    """A rate as a percentage: 0.5021 -> '50.2'."""
    return DASH if missing(x) else f"{100 * x:.1f}"


def interval(lo: float | None, hi: float | None) -> str:
    """A rate interval in percent: '[44.5, 55.9]'."""
    return f"[{pct(lo)}, {pct(hi)}]"


def pct_ci(value: float | None, ci: list[float] | tuple[float, float] | None) -> str:
    """'50.2 [44.5, 55.9]'."""
    return pct(value) + (" " + interval(*ci) if ci else "")


def num(x: float | None, digits: int = 3, signed: bool = False) -> str:
    """A plain number ('0.382', or '+0.382' with ``signed``)."""
    return DASH if missing(x) else f"{x:{'+' if signed else ''}.{digits}f}"


def num_ci(value: float | None, ci: list[float] | tuple[float, float] | None, digits: int = 3) -> str:
    """'0.382 [0.341, 0.425]'."""
    return num(value, digits) + (f" [{num(ci[0], digits)}, {num(ci[1], digits)}]" if ci else "")


def pts(x: float | None) -> str:
    """A difference of rates in percentage points: '+4.4'."""
    return DASH if missing(x) else f"{100 * x:+.1f}"


def lift(x: float | None, key: str) -> str:
    """A lift in ``key``: points for rates shown as percentages, a signed number for MRR-like means."""
    return pts(x) if key.startswith("hit@") else num(x, 3, signed=True)


def pvalue(x: float | None) -> str:
    return DASH if missing(x) else (f"{x:.2g}" if x < 0.001 else f"{x:.3f}")


def clock(seconds: float) -> str:
    """Elapsed or remaining time as a clock: '4:05', '1:02:03' (progress lines)."""
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def duration(seconds: float) -> str:
    """An estimated duration in minutes or hours with one decimal: '4.1 min', '2.5 h'."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
