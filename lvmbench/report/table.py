"""The run report: one table of the model and every baseline, and the direction table.

A number without its pool size, chance rate and interval is the kind of
number lvmbench exists to retire, so every table prints them.
"""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from lvmbench.evaluate.diagnostics import BOUND, BOUND_LABELS
from lvmbench.format import interval, num, pct, pts
from lvmbench.report import columns
from lvmbench.report.gate import gate_line
from lvmbench.result import Result, Scores


RUN_BASELINE = " (baseline; the run's model)"
"""How a run of a baseline (``run --model copy_last``) marks its own row, as ``compare`` does."""


def _label(name: str, kind: str | None, result: Result) -> str:
    """A predictor's name as the tables print it: a baseline that is also the run's model is marked once as such."""
    if name == result.model_name and result.is_baseline_run:
        return name + RUN_BASELINE
    if kind == BOUND:
        return f"{name} ({BOUND_LABELS.get(name, BOUND)})"
    return name + (" (baseline)" if kind == "baseline" else "")


def _as_result(results: Result | dict[str, Any]) -> Result:
    return results if isinstance(results, Result) else Result.from_json(results)


def table_rows(results: Result | dict[str, Any], ks: list[int]) -> tuple[list[str], list[list[Any]]]:
    """One row per predictor: the model first, then baselines by Hit@5.

    The metric columns are the metric table's shown ones (:mod:`lvmbench.report.columns`) for ``ks``.
    A run of a baseline scores it twice (as the model and among the baselines,
    same ranks); it gets one row, the model's, so no predictor is listed twice.
    """
    result = _as_result(results)
    keys = columns.shown(ks)
    hits = [k for k in keys if columns.percent(k)]
    rest = [k for k in keys if k not in hits]
    headers = (["predictor"] + [columns.heading(k) for k in hits] + ["Hit@5 95% CI"]
               + [columns.heading(k) for k in rest] + ["mean cos", "margin", "lift Hit@5 (pts)"])
    best = result.best_baseline.value() if result.best_baseline is not None else None
    entries: list[tuple[str, Scores]] = []
    model = result.model_name
    if result.metrics is not None:
        entries.append((_label(str(model), "model", result), result.metrics))
    for name, m in result.baselines_by("hit@5"):
        if not (name == model and result.is_baseline_run and result.metrics is not None):
            entries.append((_label(name, "baseline", result), m))
    rows = []
    for name, m in entries:
        lo, hi = m.interval("hit@5") or (None, None)
        hit5 = m.value("hit@5")
        rows.append(
            [name]
            + [columns.cell(k, m.value(k)) for k in hits]
            + [interval(lo, hi)] + [columns.cell(k, m.value(k)) for k in rest]
            + [num(m.mean_cos), num(m.margin, signed=True), pts(None if best is None or hit5 is None else hit5 - best)]
        )
    return headers, rows


def render_table(results: Result | dict[str, Any], fmt: str = "simple") -> str:
    result = _as_result(results)
    ks = result.ks
    headers, rows = table_rows(result, ks)
    pool, ds, m = result.pool, result.dataset, result.metrics
    context_len = result.recipe.data.context_len if result.recipe and result.recipe.data else None
    lines = [
        f"dataset {ds.name if ds else '?'} ({ds.n_vectors if ds else '?'} vectors, dim {ds.dim if ds else '?'}); "
        f"{m.n_queries if m is not None else '?'} {pool.split if pool else '?'} queries",
        f"pool: {pool.size if pool else '?'} candidates ({pool.split if pool else '?'} split), "
        f"context {'excluded' if pool and pool.exclude_context else 'included'}"
        + (f" (the {pool.exclude_len} vectors before each target, eval.exclude_len)"
           if pool and pool.exclude_context and (pool.exclude_len or 0) > (context_len or 0)
           else "")
        + "; "
        + "chance " + ", ".join(f"Hit@{k} {pct(m.chance_at(k) if m is not None else None)}%" for k in ks),
        "",
        tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True),
    ]
    mc = result.metrics_with_context
    if mc is not None:
        lines += ["", f"{result.model_name} with context vectors left in the pool: "
                  + ", ".join(f"Hit@{k} {pct(mc.value(f'hit@{k}'))}%" for k in ks) + f", MRR {num(mc.value('mrr'))}"]
    if result.copies is not None:
        lines += ["", _copies_line(result, ks)]
    if result.diagnostics is not None:
        lines += ["", render_direction(result, fmt), ""]
    c = result.consistency
    if c is not None:
        lines.append(
            f"consistency (in-loop torch Hit@K vs FAISS retrieval, test): {c.n_agree}/{c.n_queries} agree, "
            f"{c.n_near_ties} near-ties, {c.n_mismatch or 0} mismatches -> {'OK' if c.ok else 'FAILED'}"
        )
    if result.gate is not None:
        lines.append(gate_line(result.gate))
    return "\n".join(lines)


def _copies_line(result: Result, ks: list[int]) -> str:
    """How many targets have a bit-identical copy among their candidates, and what counting it against them gives."""
    cp, m = result.copies, result.metrics
    strict = cp.metrics_copies_against or Scores()
    head = (f"copies: {cp.queries} of {m.n_queries if m else '?'} targets have a bit-identical copy among their "
            "candidates, counted as hits")
    keys = [f"hit@{k}" for k in ks] + ["mrr"]
    if m is not None and all(strict.value(k) == m.value(k) for k in keys):
        return head + "; counting them against the target instead changes no Hit@K or MRR"
    return (head + "; counted against the target instead (as a tool that treats every tie as a loss does): "
            + ", ".join(f"Hit@{k} {pct(strict.value(f'hit@{k}'))}%" for k in ks) + f", MRR {num(strict.value('mrr'))}")


def render_direction(results: Result | dict[str, Any], fmt: str = "simple") -> str:
    """The direction table: margin and cos(pred, x_{t+k}) for k = -3..+3 (x_t = target), per predictor."""
    result = _as_result(results)
    d = result.diagnostics
    rows_in = d.rows or {}
    offsets = d.offsets or []
    order = [result.model_name] + [name for name, _ in result.baselines_by("hit@5")]
    order += [n for n in rows_in if rows_in[n].kind == BOUND]
    order = [n for i, n in enumerate(order) if n in rows_in and n not in order[:i]]
    order += [n for n in rows_in if n not in order]
    headers = ["predictor", "margin"] + [("cos(t)" if k == 0 else f"cos(t{k:+d})") for k in offsets]
    table = []
    for name in order:
        r = rows_in[name]
        by_k = r.by_offset()
        table.append([_label(name, r.kind, result), num(r.margin, signed=True)]
                     + [num(by_k.get(k), signed=True) for k in offsets])
    counts = next(iter(rows_in.values())).counts() if rows_in else {}
    return "\n".join([
        "direction: margin = cos(pred, next) - cos(pred, last context vector); cos(t+k) = mean cos(pred, vector k "
        "steps from the target in its chain), t = target (= mean cos), t-1 = last context vector",
        "queries per offset: " + ", ".join(f"{k:+d}: {counts.get(k, 0)}" for k in offsets),
        tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True),
    ])


