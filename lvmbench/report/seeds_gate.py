"""The gate's "lift on every seed" criterion, recomputed from the run directories a multi-run command recorded.

A model that beats the best baseline only on a lucky training seed has not
earned a deploy.  ``lvmbench gate DIR --lift-every-seed`` (``lift_every_seed
= true`` in a policy) takes a directory that ``run --seeds``, ``run --folds``
or ``suite run`` wrote, reads from its ``multi.json`` / ``cv.json`` /
``suite.json`` only which run directory holds which (task or model, seed,
fold), and for every task and every seed re-reads each finished, consistent
run's per-query ranks (folds pooled): the criterion passes when the paired
bootstrap 95 % interval of the Hit@5 lift over that seed's best baseline
lies above zero for every one of them.  A job that did not finish fails it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench.errors import UsageError
from lvmbench.evaluate import metrics
from lvmbench.evaluate.stats import PAIRED_K, paired
from lvmbench.report.compare import load_run
from lvmbench.report.regression import load_scored

READER = "gate --lift-every-seed"
AGGREGATES = ("suite.json", "cv.json", "multi.json")


def _inside(parent: Path, rel: Any, where: Path) -> Path:
    p = Path(str(rel))
    if not str(rel) or p.is_absolute() or ".." in p.parts:
        raise UsageError(f"{where}: run directory {rel!r} is not a path inside {parent}")
    return parent / p


def _rows(d: Path) -> tuple[Path, list[tuple[str, Any, Any, str, str]]]:
    """(label, seed, fold, status, run_dir) of every job the directory's aggregate records."""
    for name in AGGREGATES:
        path = d / name
        if path.is_file():
            break
    else:
        raise UsageError(f"{d}: --lift-every-seed gates a directory of `run --seeds`, `run --folds` or `suite run` "
                         f"(none of {', '.join(AGGREGATES)} found)")
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        if name == "suite.json":
            jobs = [(r["task"], j) for r in table["rows"] for j in r["runs"]]
            jobs += [(t, {"status": "failed", "run_dir": ""}) for t in table.get("failed") or []]
        else:
            jobs = [(j.get("model") or table.get("model") or "model", j) for j in table["runs"]]
        return path, [(label, j.get("seed"), j.get("fold"), j["status"], j["run_dir"]) for label, j in jobs]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not an lvmbench aggregate ({type(exc).__name__}: {exc})") from None


def _pooled(dirs: list[Path]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The model's and every baseline's ranks over the runs (folds), each run checked as the gate checks one."""
    arrays = []
    for run in dirs:
        load_scored(run, READER)  # finished, status complete, readable
        arrays.append(load_run(run).arrays)
    names = set.intersection(*(set(a) for a in arrays))
    base = {n[len("rank__"):]: np.concatenate([a[n] for a in arrays]) for n in sorted(names) if n.startswith("rank__")}
    return np.concatenate([a["rank"] for a in arrays]), base


def every_seed(d: str | Path) -> dict[str, Any]:
    """Per (task or model, seed): the Hit@5 lift over the best baseline and its interval; passed when all are > 0."""
    d = Path(d)
    path, jobs = _rows(d)
    groups: dict[tuple[str, Any], list[tuple[Any, str, str]]] = {}
    for label, seed, fold, status, run_dir in jobs:
        groups.setdefault((label, seed), []).append((fold if fold is not None else 0, status, run_dir))
    key, cells = f"hit@{PAIRED_K}", []
    for (label, seed), runs in groups.items():
        cell: dict[str, Any] = {"label": label, "seed": seed}
        if any(status != "ok" for _, status, _ in runs):
            cells.append({**cell, "passed": False, "why": "a job did not finish"})
            continue
        ranks, base = _pooled([_inside(d, r, path) for _, _, r in sorted(runs, key=lambda x: x[0])])
        if not base:
            raise UsageError(f"{path}: {label} seed {seed} has no baseline ranks to hold the lift against")
        best = max(base, key=lambda b: metrics.value(key, base[b]))
        test = paired(ranks, base[best])
        lo = test[f"lift_ci_{key}"][0]
        cells.append({**cell, "best_baseline": best, "lift": test[key], "lift_ci": test[f"lift_ci_{key}"],
                      "n_queries": int(len(ranks)), "passed": bool(lo > 0)})
    return {"cells": cells, "passed": bool(cells) and all(c["passed"] for c in cells), "source": str(path)}


def line(r: dict[str, Any]) -> str:
    """One gate line: how many (task, seed) cells hold the lift, and the weakest one."""
    cells = r["cells"]
    ok = sum(c["passed"] for c in cells)
    scored = [c for c in cells if "lift_ci" in c]
    worst = min(scored, key=lambda c: c["lift_ci"][0]) if scored else None
    weakest = ""
    if worst:
        lo, hi = worst["lift_ci"]
        weakest = (f"; weakest: {worst['label']} seed {worst['seed']} {100 * worst['lift']:+.1f} pts "
                   f"[95% CI {100 * lo:+.1f}, {100 * hi:+.1f}] over {worst['best_baseline']}")
    failed = [c for c in cells if "why" in c]
    why = f"; {len(failed)} did not finish" if failed else ""
    return (f"gate: Hit@5 lift over the best baseline on every seed: {ok} of {len(cells)} (task or model, seed) "
            f"intervals above 0 -> {'PASS' if r['passed'] else 'FAIL'}{weakest}{why}")
