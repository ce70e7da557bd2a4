"""The metric-keyed sections of results.json: a predictor's scores and its lift over a baseline.

Both hold their numbers in dicts keyed by the metric table's keys
(:mod:`lvmbench.evaluate.metrics`: ``hit@5``, ``ndcg@10``, ``mrr``, ``ca``,
``par``, ``median_rank``), so a metric added to the table is read, kept and
written without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lvmbench.evaluate import metrics
from lvmbench.evaluate.stats import PAIRED_K
from lvmbench.result.record import Record, spec


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) is not None for v in value):
        return (float(value[0]), float(value[1]))
    return None


@dataclass(kw_only=True)
class Scores(Record):
    """One predictor's scores (results.json ``metrics``, ``metrics_with_context``, each of ``baselines``).

    ``values``: every metric of the table the file records, by key; ``ci``:
    their 95 % intervals ``[lo, hi]`` by key (Hit@K Wilson, the rest
    bootstrap); ``chance``: the chance rate of each ``hit@K``.
    """

    COLLECT = (("values", ""),)

    n_queries: int | None = spec()
    values: dict[str, Any] = spec(factory=dict)
    ci: dict[str, Any] | None = spec()
    chance: dict[str, Any] | None = spec()
    mean_cos: float | None = spec()
    margin: float | None = spec()
    queries_with_ties: int | None = spec()
    queries_with_copies: int | None = spec()
    exact_fallback: int | None = spec()

    def value(self, key: str) -> float | None:
        """The recorded value of metric ``key`` (``hit@5``, ``mrr``...) as a float; None when absent or not a number."""
        return _number(self.values.get(key))

    def recorded(self, key: str) -> Any:
        """The value of ``key`` exactly as the file holds it (any type), None when absent."""
        return self.values.get(key)

    def interval(self, key: str) -> tuple[float, float] | None:
        """The recorded 95 % interval of ``key``; None when the file records none."""
        return _pair(self.ci.get(key)) if isinstance(self.ci, dict) else None

    def chance_at(self, k: int) -> float | None:
        """The recorded chance rate of Hit@``k``."""
        return _number(self.chance.get(f"hit@{k}")) if isinstance(self.chance, dict) else None

    def numbers(self) -> dict[str, float]:
        """Every number the section records at its top level, by key (metrics, counts, mean_cos, margin...)."""
        return {k: v for k, v in self.to_json().items() if _number(v) is not None}

    def metric_keys(self) -> list[str]:
        """The metric keys this section records, in the metric table's order (then K)."""
        order = list(metrics.METRICS)

        def rank(key: str) -> tuple[int, int]:
            m, k = metrics.parse_key(key)
            return order.index(m.name), k or 0

        return sorted(self.values, key=rank)


@dataclass(kw_only=True)
class Lift(Record):
    """A predictor against one baseline on the same queries (results.json ``lift`` and each of ``lift_over``).

    ``values``: the lift (this - baseline) per metric key; ``intervals``: the
    paired bootstrap 95 % interval of a lift, by metric key (``lift_ci_hit@5``
    in the file); ``mcnemar``: the exact McNemar p by metric key
    (``mcnemar_p_hit@5``); ``wins``/``ties``/``losses``: per query, lower rank wins.
    """

    COLLECT = (("values", ""), ("intervals", "lift_ci_"), ("mcnemar", "mcnemar_p_"))

    over: str | None = spec()
    values: dict[str, Any] = spec(factory=dict)
    intervals: dict[str, Any] = spec(factory=dict)
    mcnemar: dict[str, Any] = spec(factory=dict)
    intervals_separate: bool | None = spec()
    direction: str | None = spec()
    wins: int | None = spec()
    ties: int | None = spec()
    losses: int | None = spec()

    def value(self, key: str = f"hit@{PAIRED_K}") -> float | None:
        return _number(self.values.get(key))

    def interval(self, key: str = f"hit@{PAIRED_K}") -> tuple[float, float] | None:
        return _pair(self.intervals.get(key))

    def mcnemar_p(self, key: str = f"hit@{PAIRED_K}") -> float | None:
        return _number(self.mcnemar.get(key))

    @property
    def wtl(self) -> tuple[int, int, int] | None:
        """(wins, ties, losses), or None when not recorded."""
        if self.wins is None or self.ties is None or self.losses is None:
            return None
        return (self.wins, self.ties, self.losses)


@dataclass(kw_only=True)
class BestBaseline(Record):
    """results.json ``best_baseline``: the baseline with the highest Hit@5 and that Hit@5 (``values['hit@5']``)."""

    COLLECT = (("values", ""),)

    name: str | None = spec()
    values: dict[str, Any] = spec(factory=dict)

    def value(self, key: str = f"hit@{PAIRED_K}") -> float | None:
        return _number(self.values.get(key))
