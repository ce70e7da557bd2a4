"""Summaries of a distribution, shared by the corpus build report and ``data info``."""

from __future__ import annotations

import numpy as np

QUANTILES = {"min": 0, "p10": 10, "p25": 25, "median": 50, "p75": 75, "p90": 90, "max": 100}


def distribution(x: np.ndarray) -> dict[str, float]:
    """min, p10, p25, median, p75, p90, max and mean of the finite values; {} when there are none."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {}
    q = np.percentile(x, list(QUANTILES.values()))
    return {**{name: float(v) for name, v in zip(QUANTILES, q)}, "mean": float(x.mean())}
