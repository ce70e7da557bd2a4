"""Direction diagnostics: does a prediction point forward, or back at its input?

A next-vector predictor can score a respectable cosine to the target simply by
echoing the last context vector, because adjacent vectors of a document are
similar.  Two numbers tell the two apart:

* **margin** = mean cos(ŷ, next) − cos(ŷ, last context vector).  Positive means
  the prediction is closer to where the chain goes than to where it is.
* **offset sweep**: mean cos(ŷ, x_{t+k}) for k = −3 … +3, where x_t is the
  target, so k = −1 is the last context vector and k = 0 is the target (its
  mean is the ``mean_cos`` of the scoring table).  Only offsets that stay
  inside the query's chain are counted; each k reports its mean and count.
  A forward-pointing predictor peaks at k = 0; an echo peaks at k = −1.

Every predictor scored by the pipeline gets a row, plus two bounds (rows of
kind ``bound``) that bracket the scale: ``oracle`` (ŷ = the target itself: the
upper bound, the best margin the data allows, 1 − mean adjacent cosine) and
``copy_last`` (ŷ = the last context vector: margin = mean adjacent cosine − 1,
the echo's value).

All vectors are L2-normalised, so a cosine is a dot product.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OFFSETS: tuple[int, ...] = (-3, -2, -1, 0, 1, 2, 3)
"""The k of cos(ŷ, x_{t+k}); x_t is the target."""
BOUND = "bound"
"""The ``kind`` of the rows that bracket the scale (results.json schema 1 called it "reference")."""
BOUND_LABELS = {"oracle": "upper bound", "copy_last": "echo bound"}
"""How the tables mark each bound row: ``oracle (upper bound)``, ``copy_last (echo bound)``."""


def _rowwise_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # the same einsum summary.rank_and_summarise uses, so k = 0 equals its mean_cos to the bit
    return np.einsum("ij,ij->i", a, b)


def direction(
    pred: np.ndarray,
    unit: np.ndarray,
    target: np.ndarray,
    chain_start: np.ndarray,
    chain_end: np.ndarray,
    offsets: tuple[int, ...] = OFFSETS,
) -> dict[str, Any]:
    """Margin and the offset sweep of one predictor.

    ``pred`` is ``[n, D]`` (L2-normalised predictions), ``unit`` the ``[N, D]``
    L2-normalised vectors, ``target`` the global row of each query's target and
    ``chain_start``/``chain_end`` the first row and one past the last row of
    its chain.  Rows ``target + k`` outside ``[chain_start, chain_end)`` are
    skipped for that k.
    """
    pred = np.asarray(pred)
    target = np.asarray(target, dtype=np.int64)
    n = len(target)
    if pred.shape[0] != n:
        raise ValueError(f"{pred.shape[0]} predictions for {n} targets")
    cos_next = _rowwise_dot(pred, unit[target])
    cos_last = _rowwise_dot(pred, unit[target - 1])  # a query always has >= 1 context vector
    sweep = []
    for k in offsets:
        rows = target + k
        inside = (rows >= chain_start) & (rows < chain_end)
        count = int(inside.sum())
        mean = float(_rowwise_dot(pred[inside], unit[rows[inside]]).mean()) if count else None
        sweep.append({"k": int(k), "mean": mean, "n": count})
    nan = float("nan")
    return {
        "cos_next": float(cos_next.mean()) if n else nan,
        "cos_last": float(cos_last.mean()) if n else nan,
        "margin": float((cos_next - cos_last).mean()) if n else nan,
        "offset_cos": sweep,
    }


def bounds(
    unit: np.ndarray, target: np.ndarray, chain_start: np.ndarray, chain_end: np.ndarray,
    offsets: tuple[int, ...] = OFFSETS, copy_last: bool = True,
) -> dict[str, dict[str, Any]]:
    """The ``oracle`` row (ŷ = target) and, unless ``copy_last`` is False (the
    pipeline passes False when copy_last was already scored as a baseline), the
    ``copy_last`` row (ŷ = last context vector); both of kind :data:`BOUND`."""
    target = np.asarray(target, dtype=np.int64)
    out = {"oracle": {"kind": BOUND, **direction(unit[target], unit, target, chain_start, chain_end, offsets)}}
    if copy_last:
        out["copy_last"] = {"kind": BOUND,
                            **direction(unit[target - 1], unit, target, chain_start, chain_end, offsets)}
    return out


def summary(rows: dict[str, dict[str, Any]], offsets: tuple[int, ...] = OFFSETS) -> dict[str, Any]:
    """The ``diagnostics`` section of results.json."""
    return {
        "definition": "margin = mean cos(pred, next) - cos(pred, last context vector); "
        "offset_cos[k] = mean cos(pred, x_{t+k}) over queries whose chain holds row t+k (x_t = target); "
        "oracle: pred = target; copy_last: pred = last context vector",
        "offsets": list(offsets),
        "rows": rows,
    }


__all__ = ["BOUND", "BOUND_LABELS", "OFFSETS", "bounds", "direction", "summary"]


def context_max_cos(vectors: np.ndarray, unit: np.ndarray, target: np.ndarray, context_len: int,
                    chain_start: np.ndarray) -> np.ndarray:
    """``[n]``: each row's largest cosine to its own query's context (the terms of PAR).

    A query's context is the up-to-``context_len`` rows before its target in
    its chain, one contiguous range; queries of one chain share most of it,
    so each chain's queries are scored against that chain's rows in one
    matrix product (no ``[n, T, D]`` gather) and each row keeps the maximum
    over its own range.
    """
    target = np.asarray(target, dtype=np.int64)
    lo = np.maximum(target - context_len, chain_start)
    out = np.empty(len(target), dtype=np.float64)
    order = np.argsort(chain_start, kind="stable")
    bounds = np.flatnonzero(np.diff(chain_start[order])) + 1
    for group in np.split(order, bounds):
        if not len(group):
            continue
        a, b = int(lo[group].min()), int(target[group].max())
        scores = (vectors[group] @ unit[a:b].T).astype(np.float64)  # [queries of the chain, its rows]
        cols = np.arange(a, b)[None, :]
        inside = (cols >= lo[group][:, None]) & (cols < target[group][:, None])
        out[group] = np.where(inside, scores, -np.inf).max(axis=1)
    return out
