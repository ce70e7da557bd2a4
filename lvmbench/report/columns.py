"""A table's metric columns, from the metric table: which metrics, their headings and their cells.

Every table of scores (the run report, ``compare``, the suite, cross-validation
and seeds tables, ``sweep``) takes its metric columns from here, so a metric
whose :class:`lvmbench.evaluate.metrics.Metric` says ``show`` is a column of
each, one per K of the run's ``eval.ks`` for an ``@K`` metric.  A 0/1 rate
with a Wilson interval (Hit@K) prints as a percentage; PAR, a ratio around 1,
with two decimals; the rest with three.
"""

from __future__ import annotations

from typing import Any

from lvmbench import format as fmt
from lvmbench.evaluate import metrics


def shown(ks: list[int], vectors: bool = True) -> list[str]:
    """The metric keys a table shows for these K, in the metric table's order (``vectors``: PAR too)."""
    return metrics.keys(list(ks), vectors=vectors, shown=True)


def percent(key: str) -> bool:
    """Whether the metric prints as a percentage (a share of queries: Hit@K)."""
    return metrics.parse_key(key)[0].interval == "wilson"


def has_interval(key: str) -> bool:
    """Whether the metric table gives this metric an interval (and its cells a [95% CI])."""
    return metrics.parse_key(key)[0].interval is not None


def digits(key: str) -> int:
    return 2 if metrics.parse_key(key)[0].gate == "max" else 3


def heading(key: str, ci: bool = False) -> str:
    """'Hit@5 %', 'nDCG@10', 'MRR'; with ``ci``: 'Hit@5 % [95% CI]'."""
    metric, k = metrics.parse_key(key)
    head = metric.heading(k) + (" %" if percent(key) else "")
    return head + (" [95% CI]" if ci else "")


def cell(key: str, value: Any, ci: Any = None, with_ci: bool = False) -> str:
    """One metric's cell: the value (and, ``with_ci``, its interval; a dash when there is none)."""
    v = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if percent(key):
        return fmt.pct_ci(v, ci) if with_ci else fmt.pct(v)
    return fmt.num_ci(v, ci, digits(key)) if with_ci else fmt.num(v, digits(key))
