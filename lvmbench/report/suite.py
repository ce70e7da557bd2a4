"""The suite table: one row per task, each against that task's best baseline, and the macro average.

Per task: Hit@K with Wilson 95 % intervals and MRR with its bootstrap
interval over the task's (pooled, with folds) test queries; the lift in
Hit@5 over the task's best baseline with a paired bootstrap interval and the
exact McNemar p, Holm-corrected over the tasks; the fold spread when the task
was cross-validated.  The macro average weighs every task equally.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tabulate import tabulate

from lvmbench.evaluate import metrics
from lvmbench.evaluate.stats import PAIRED_K, holm, paired
from lvmbench import format as fmt

BOOTSTRAP = 1000


def task_row(task: str, model: str, ranks: np.ndarray, baselines: dict[str, np.ndarray], ks: list[int],
             folds: list[float] | None = None) -> dict[str, Any]:
    """One task's scores: the model, every baseline, and the paired test against the best baseline by Hit@5."""
    def scores(r: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"n_queries": len(r)}
        for key in [f"hit@{k}" for k in ks] + ["mrr"]:
            out[key] = metrics.value(key, r)
            out[f"{key}_ci"] = list(metrics.interval(key, r, BOOTSTRAP, 0))
        return out

    key = f"hit@{PAIRED_K}"
    best = max(baselines, key=lambda b: metrics.value(key, baselines[b])) if baselines else None
    row: dict[str, Any] = {"task": task, "model": model, **scores(ranks),
                           "baselines": {b: scores(r) for b, r in baselines.items()}, "best_baseline": best}
    if best is not None:
        row["vs_best"] = paired(ranks, baselines[best])
    if folds is not None:
        row["folds"] = {"hit@5": folds, "min": min(folds), "max": max(folds), "sd": float(np.std(folds, ddof=1))
                        if len(folds) > 1 else 0.0}
    return row


def summarize(rows: list[dict[str, Any]], ks: list[int]) -> dict[str, Any]:
    """Holm over the tasks' McNemar p-values, and the macro average (every task weighs the same)."""
    tested = [r for r in rows if "vs_best" in r]
    for r, p in zip(tested, holm([r["vs_best"][f"mcnemar_p_hit@{PAIRED_K}"] for r in tested])):
        r["vs_best"]["holm_p"] = p
    keys = [f"hit@{k}" for k in ks] + ["mrr"]
    macro = {k: float(np.mean([r[k] for r in rows])) for k in keys} if rows else {}
    if tested:
        macro["lift_hit@5"] = float(np.mean([r["vs_best"]["hit@5"] for r in tested]))
    return {"rows": rows, "macro": macro, "paired_test": f"exact McNemar on Hit@{PAIRED_K} against each task's "
            f"best baseline, Holm-corrected over {len(tested)} task(s); lift interval: paired percentile bootstrap, "
            f"{BOOTSTRAP} resamples of the queries, seed 0"}


def render(summary: dict[str, Any], ks: list[int]) -> str:
    headers = (["task", "queries"] + [f"Hit@{k} % [95% CI]" for k in ks] + ["MRR [95% CI]", "best baseline",
               "lift Hit@5 pts [95% CI]", "McNemar p", "Holm p", "folds Hit@5 % (min-max)"])
    table = []
    for r in summary["rows"]:
        vs = r.get("vs_best") or {}
        lift = (fmt.pts(vs["hit@5"]) + " " + "[" + ", ".join(fmt.pts(x) for x in vs["lift_ci_hit@5"]) + "]"
                if vs else fmt.DASH)
        spread = (f"{fmt.pct(r['folds']['min'])}-{fmt.pct(r['folds']['max'])}" if "folds" in r else fmt.DASH)
        table.append([r["task"], str(r["n_queries"])]
                     + [fmt.pct_ci(r[f"hit@{k}"], r[f"hit@{k}_ci"]) for k in ks]
                     + [fmt.num_ci(r["mrr"], r["mrr_ci"]), r.get("best_baseline") or fmt.DASH, lift,
                        fmt.pvalue(vs.get("mcnemar_p_hit@5")), fmt.pvalue(vs.get("holm_p")), spread])
    m = summary["macro"]
    if m:
        table.append(["macro average", fmt.DASH] + [fmt.pct(m[f"hit@{k}"]) for k in ks] + [fmt.num(m["mrr"]),
                     fmt.DASH, fmt.pts(m.get("lift_hit@5")), fmt.DASH, fmt.DASH, fmt.DASH])
    return tabulate(table, headers=headers, disable_numparse=True)


def render_baselines(summary: dict[str, Any], ks: list[int]) -> str:
    """Every baseline on every task (Hit@5 and MRR), the difficulty table of the suite."""
    rows = summary["rows"]
    names = sorted({b for r in rows for b in r["baselines"]})
    table = [[b] + [fmt.pct_ci(r["baselines"][b]["hit@5"], r["baselines"][b]["hit@5_ci"])
                    if b in r["baselines"] else fmt.DASH for r in rows] for b in names]
    return tabulate(table, headers=["baseline (Hit@5 % [95% CI])"] + [r["task"] for r in rows],
                    disable_numparse=True)
