"""The suite table: one row per task, each against that task's best baseline, and the macro average.

Per task: Hit@K with Wilson 95 % intervals and MRR with its bootstrap
interval over the task's (pooled, with folds) test queries; the lift in
Hit@5 over the task's best baseline with a paired bootstrap interval and the
exact McNemar p, Holm-corrected over the tasks; the fold spread when the task
was cross-validated.  The macro average weighs every task equally.

With several training seeds (:func:`seeds_row`) the scores are those of the
seed-averaged model: each query's value is its mean over the seeds, so the
queries (not the seed x query pairs, which are not independent) are what the
bootstrap resamples; the table adds the mean and min-max of Hit@5 across
seeds, and the paired test is run per seed and pooled.  The pooled test's p
is the largest per-seed McNemar p (an intersection-union test: it rejects
only when every seed's test does), the p Holm then corrects over the tasks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from lvmbench.evaluate import metrics
from lvmbench.evaluate.stats import PAIRED_K, holm, paired
from lvmbench import format as fmt
from lvmbench.errors import UsageError
from lvmbench.report import columns

BOOTSTRAP = 1000


def rank_keys(ks: list[int]) -> list[str]:
    """The shown metrics a row computes from ranks alone (Hit@K, nDCG@K, MRR), in the metric table's order."""
    return [k for k in columns.shown(ks, vectors=False) if not metrics.parse_key(k)[0].needs_candidates]


def task_row(task: str, model: str, ranks: np.ndarray, baselines: dict[str, np.ndarray], ks: list[int],
             folds: list[float] | None = None) -> dict[str, Any]:
    """One task's scores: the model, every baseline, and the paired test against the best baseline by Hit@5."""
    def scores(r: np.ndarray) -> dict[str, Any]:
        out: dict[str, Any] = {"n_queries": len(r)}
        for key in rank_keys(ks):
            out[key] = metrics.value(key, r)
            ci = metrics.interval(key, r, BOOTSTRAP, 0)
            if ci is not None:
                out[f"{key}_ci"] = list(ci)
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


def _pooled(key: str, by_seed: list[np.ndarray]) -> np.ndarray:
    """Each query's value of ``key`` averaged over the seeds (float64)."""
    m, k = metrics.parse_key(key)
    return np.mean([m.per_query(r, np.empty(0), k).astype(np.float64) for r in by_seed], axis=0)


def seeds_row(task: str, model: str, by_seed: dict[int, np.ndarray], baselines: dict[str, np.ndarray],
              ks: list[int], folds: list[float] | None = None) -> dict[str, Any]:
    """One task's row over several training seeds (one seed: exactly :func:`task_row`, plus its seed)."""
    seeds = sorted(by_seed)
    if len(seeds) == 1:
        return {**task_row(task, model, by_seed[seeds[0]], baselines, ks, folds), "seeds": seeds}
    runs = [by_seed[s] for s in seeds]
    row = task_row(task, model, runs[0], baselines, ks, folds)  # baselines, best baseline, folds
    for key in rank_keys(ks):
        if metrics.parse_key(key)[0].per_query is None:  # no per-query values: the mean over the seeds (linear)
            row[key] = float(np.mean([metrics.value(key, r) for r in runs]))
            continue
        per = _pooled(key, runs)
        row[key], row[f"{key}_ci"] = float(per.mean()), list(metrics.bootstrap_mean_ci(per, BOOTSTRAP, 0))
    key = f"hit@{PAIRED_K}"
    hit = [metrics.value(key, r) for r in runs]
    row["seeds"] = seeds
    row["seed_spread"] = {key: hit, "mean": float(np.mean(hit)), "min": min(hit), "max": max(hit)}
    best = row.get("best_baseline")
    if best is not None:
        row["vs_best"] = _pooled_test(runs, seeds, baselines[best])
    return row


def _pooled_test(runs: list[np.ndarray], seeds: list[int], base: np.ndarray) -> dict[str, Any]:
    """The paired test per seed, and pooled: the seed-averaged model against the baseline, query by query."""
    key = f"hit@{PAIRED_K}"
    per_seed = {str(s): paired(r, base) for s, r in zip(seeds, runs)}
    diff = _pooled(key, runs) - (base <= PAIRED_K)
    lo, hi = metrics.bootstrap_mean_ci(diff, BOOTSTRAP, 0)
    return {
        key: float(diff.mean()), "mrr": float((_pooled("mrr", runs) - 1.0 / base.astype(np.float64)).mean()),
        f"lift_ci_{key}": [lo, hi],
        f"mcnemar_p_{key}": max(t[f"mcnemar_p_{key}"] for t in per_seed.values()),
        "direction": "better" if lo > 0 else "worse" if hi < 0 else "overlapping",
        "wins": sum(t["wins"] for t in per_seed.values()), "ties": sum(t["ties"] for t in per_seed.values()),
        "losses": sum(t["losses"] for t in per_seed.values()),
        "every_seed_better": all(t[f"lift_ci_{key}"][0] > 0 for t in per_seed.values()),
        "per_seed": per_seed,
    }


def summarize(rows: list[dict[str, Any]], ks: list[int]) -> dict[str, Any]:
    """Holm over the tasks' McNemar p-values, and the macro average (every task weighs the same)."""
    tested = [r for r in rows if "vs_best" in r]
    for r, p in zip(tested, holm([r["vs_best"][f"mcnemar_p_hit@{PAIRED_K}"] for r in tested])):
        r["vs_best"]["holm_p"] = p
    keys = rank_keys(ks)
    macro = {k: float(np.mean([r[k] for r in rows])) for k in keys if all(k in r for r in rows)} if rows else {}
    if tested:
        macro["lift_hit@5"] = float(np.mean([r["vs_best"]["hit@5"] for r in tested]))
    return {"rows": rows, "macro": macro, "paired_test": f"exact McNemar on Hit@{PAIRED_K} against each task's "
            f"best baseline, Holm-corrected over {len(tested)} task(s); lift interval: paired percentile bootstrap, "
            f"{BOOTSTRAP} resamples of the queries, seed 0"}


def render(summary: dict[str, Any], ks: list[int], first: str = "task") -> str:
    keys = [k for k in rank_keys(ks) if any(k in r for r in summary["rows"])] or rank_keys(ks)
    with_ci = [any(f"{k}_ci" in r for r in summary["rows"]) for k in keys]
    headers = ([first, "queries"] + [columns.heading(k, ci) for k, ci in zip(keys, with_ci)]
               + ["best baseline", "lift Hit@5 pts [95% CI]", "McNemar p", "Holm p", "folds Hit@5 % (min-max)"])
    seeded = any("seed_spread" in r for r in summary["rows"])
    if seeded:
        headers.append("seeds Hit@5 % mean (min-max)")
    table = []
    for r in summary["rows"]:
        vs = r.get("vs_best") or {}
        lift = (fmt.pts(vs["hit@5"]) + " " + "[" + ", ".join(fmt.pts(x) for x in vs["lift_ci_hit@5"]) + "]"
                if vs else fmt.DASH)
        spread = (f"{fmt.pct(r['folds']['min'])}-{fmt.pct(r['folds']['max'])}" if "folds" in r else fmt.DASH)
        table.append([r["task"], str(r["n_queries"])]
                     + [columns.cell(k, r.get(k), r.get(f"{k}_ci"), ci) for k, ci in zip(keys, with_ci)]
                     + [r.get("best_baseline") or fmt.DASH, lift,
                        fmt.pvalue(vs.get("mcnemar_p_hit@5")), fmt.pvalue(vs.get("holm_p")), spread]
                     + ([_seed_cell(r)] if seeded else []))
    m = summary["macro"]
    if m:
        table.append(["macro average", fmt.DASH] + [columns.cell(k, m.get(k)) for k in keys]
                     + [fmt.DASH, fmt.pts(m.get("lift_hit@5")), fmt.DASH, fmt.DASH, fmt.DASH]
                     + ([fmt.DASH] if seeded else []))
    return tabulate(table, headers=headers, disable_numparse=True)


def _seed_cell(row: dict[str, Any]) -> str:
    s = row.get("seed_spread")
    if not s:
        return fmt.DASH
    every = (row.get("vs_best") or {}).get("every_seed_better")
    mark = "" if every is None else ("; lift on every seed" if every else "; not on every seed")
    return f"{fmt.pct(s['mean'])} ({fmt.pct(s['min'])}-{fmt.pct(s['max'])}; {len(s['hit@5'])} seeds{mark})"


def render_baselines(summary: dict[str, Any], ks: list[int]) -> str:
    """Every baseline on every task (Hit@5 and MRR), the difficulty table of the suite."""
    rows = summary["rows"]
    names = sorted({b for r in rows for b in r["baselines"]})
    table = [[b] + [fmt.pct_ci(r["baselines"][b]["hit@5"], r["baselines"][b]["hit@5_ci"])
                    if b in r["baselines"] else fmt.DASH for r in rows] for b in names]
    return tabulate(table, headers=["baseline (Hit@5 % [95% CI])"] + [r["task"] for r in rows],
                    disable_numparse=True)


def task_runs(suite_dir: Path, task: str) -> list[tuple[str, Path]]:
    """(label, run directory) of each finished job of one task, as the suite's ``suite.json`` records them.

    Labels name the fold and seed (``git-manual fold 0 seed 1``) when the
    task has several jobs; every recorded path must lie inside the suite
    directory.
    """
    path = suite_dir / "suite.json"
    try:
        rows = [r for r in json.loads(path.read_text(encoding="utf-8"))["rows"] if r["task"] == task]
        jobs = [j for r in rows for j in r.get("runs", [])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not an lvmbench suite table ({type(exc).__name__}: {exc})") from None
    out = []
    for j in jobs:
        rel = Path(str(j.get("run_dir", "")))
        if not str(rel) or rel.is_absolute() or ".." in rel.parts:
            raise UsageError(f"{path}: run directory {str(rel)!r} of {task} is not a path inside {suite_dir}")
        if j.get("status") == "ok":
            extra = [f"fold {j['fold']}" if j.get("fold") is not None else "",
                     f"seed {j['seed']}" if j.get("seed") is not None and len(jobs) > 1 else ""]
            out.append((" ".join([task, *[e for e in extra if e]]), suite_dir / rel))
    return out
