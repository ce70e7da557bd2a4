"""The regression gate: is the candidate at least as good as the deployed model, on the same queries?

Both runs must be finished, consistent and measured on identical queries and
pool (every benchmark pin equal, and the same target rows in the same
order); otherwise the question has no answer and the gate refuses (exit 2,
naming the differing field).  The verdict is a paired non-inferiority test:
the candidate passes when the lower bound of the paired 95 % bootstrap
interval of (candidate − deployed) in the chosen metric is at least
``-margin``.  It also reports the lift, the exact McNemar p-value on Hit@K
and per-query wins / ties / losses (:func:`lvmbench.evaluate.stats.paired`).

For suite directories, every task in both is tested the same way; each
task's one-sided non-inferiority p-value is Holm-corrected across the tasks
and must be at most 0.025 (the one-sided level of a 95 % interval), and the
macro average of the per-task lifts (resampled task by task) must have its
lower bound at or above ``-margin``.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench import workdir
from lvmbench.errors import IntegrityError, UsageError, first_line
from lvmbench.evaluate import metrics
from lvmbench.evaluate.stats import PAIRED_K, holm, paired
from lvmbench.report import benchmark
from lvmbench.report.gate import check_status
from lvmbench.result import Result

ALPHA = 0.025
"""One-sided level: a 95 % two-sided interval's lower bound above -margin is p <= 0.025."""


@dataclass
class ScoredRun:
    """What a paired comparison reads from one finished run directory."""

    path: Path
    results: Result
    ranks: np.ndarray
    target_ids: np.ndarray
    candidates: np.ndarray | None

    @property
    def pins(self) -> dict[str, Any]:
        return benchmark.pins_of(self.results, self.target_ids)


def load_scored(path: str | Path, reader: str = "gate --against") -> ScoredRun:
    """A finished, consistent run's headline ranks (refused with one line otherwise)."""
    p = Path(path)
    d = p if p.is_dir() else p.parent
    workdir.check_finished(d, reader)
    results = Result.from_json(d)
    check_status(results, str(d), reader)
    npz = d / "predictions.npz"
    if not npz.is_file():
        raise UsageError(f"{npz}: not found; {reader} needs each run's per-query ranks")
    key = "rank" if results.exclude_context else "rank_with_context"
    try:
        with np.load(npz, allow_pickle=False) as z:
            ranks, targets = np.asarray(z[key]), np.asarray(z["target_ids"])
            candidates = np.asarray(z["candidates"]) if "candidates" in z.files else None
    except KeyError as exc:
        raise IntegrityError(f"{npz}: lacks {exc}; not a predictions file a regression gate can read") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise IntegrityError(f"{npz}: not a readable predictions file ({first_line(exc)})") from None
    return ScoredRun(d, results, ranks, targets, candidates)


def check_same_queries(cand: ScoredRun, deployed: ScoredRun) -> None:
    """Both runs on one benchmark, or a one-line refusal naming what differs (exit 2)."""
    diffs = benchmark.differences(cand.pins, {"name": "the deployed run's", "pins": deployed.pins})
    if not diffs and not np.array_equal(cand.target_ids, deployed.target_ids):
        diffs = ["the queries' order differs"]
    if diffs:
        raise UsageError(f"{cand.path} and {deployed.path} were not measured on the same queries and pool: "
                         + "; ".join(d.replace("benchmark 'the deployed run's' has", "the deployed run has")
                                     for d in diffs))


def check_metric(metric: str) -> None:
    try:
        m, _ = metrics.parse_key(metric)
    except KeyError:
        m = None
    if m is None or m.gate != "min" or m.per_query is None:
        raise UsageError(f"--metric {metric}: a regression gate compares a rate with per-query values: hit@K, mrr, "
                         "ca")


def compare_pair(cand: ScoredRun, deployed: ScoredRun, metric: str, margin: float) -> dict[str, Any]:
    """The non-inferiority verdict of one candidate run against one deployed run."""
    check_same_queries(cand, deployed)
    k = metrics.parse_key(metric)[1] if metric.startswith("hit@") else PAIRED_K
    test = paired(cand.ranks, deployed.ranks, (metric,), k=k, ci_metric=metric, candidates=cand.candidates,
                  margin=margin)
    lo = test["lift_ci"][0]
    return {"metric": metric, "margin": margin, "lift": test["lift"], "lift_ci": test["lift_ci"],
            "noninferiority_p": test["noninferiority_p"], "mcnemar_k": k, "mcnemar_p": test[f"mcnemar_p_hit@{k}"],
            "wins": test["wins"], "ties": test["ties"], "losses": test["losses"], "n_queries": int(len(cand.ranks)),
            "passed": bool(lo >= -margin), "deployed": str(deployed.path), "_means": test["lift_means"]}


def _suite_tasks(path: Path) -> list[str]:
    table = json.loads((path / "suite.json").read_text())
    return list(table.get("tasks") or [])


def _one_run(suite_dir: Path, task: str) -> Path:
    """The task's single run directory (a task with folds or several seeds is not compared run by run yet)."""
    from lvmbench.report.suite import task_runs

    runs = task_runs(suite_dir, task)
    if len(runs) != 1:
        raise UsageError(f"{suite_dir}: task {task} has {len(runs)} finished runs (folds or seeds); --against "
                         "compares suites of one run per task (gate seeds with --lift-every-seed)")
    return runs[0][1]


def against(candidate: str | Path, deployed: str | Path, metric: str = "hit@5",
            margin: float = 0.01) -> dict[str, Any]:
    """The regression verdict for a run (or a suite directory) against the deployed one."""
    check_metric(metric)
    if not 0.0 <= margin < 1.0:
        raise UsageError(f"--margin {margin:g}: a non-inferiority margin is a fraction in [0, 1) (0.01 = 1 point)")
    c, d = Path(candidate), Path(deployed)
    if (c / "suite.json").is_file() or (d / "suite.json").is_file():
        return against_suite(c, d, metric, margin)
    out = compare_pair(load_scored(c), load_scored(d), metric, margin)
    out.pop("_means")
    return out


def against_suite(cand: Path, deployed: Path, metric: str, margin: float) -> dict[str, Any]:
    """Every task of two suite directories, Holm-corrected, plus the macro average of the lifts."""
    for p in (cand, deployed):
        if not (p / "suite.json").is_file():
            raise UsageError(f"{p}: not a suite directory (no suite.json); --against compares a suite with a suite")
        workdir.check_finished(p, "gate --against")
    tasks = [t for t in _suite_tasks(cand) if t in _suite_tasks(deployed)]
    if not tasks:
        raise UsageError(f"{cand} and {deployed} share no task")
    rows = {}
    for task in tasks:
        rows[task] = compare_pair(load_scored(_one_run(cand, task)), load_scored(_one_run(deployed, task)), metric,
                                  margin)
    adjusted = holm([r["noninferiority_p"] for r in rows.values()])
    for r, p in zip(rows.values(), adjusted):
        r["holm_p"] = p
        r["passed"] = bool(p <= ALPHA)
    macro_means = np.mean([r.pop("_means") for r in rows.values()], axis=0)
    macro = {"lift": float(np.mean([r["lift"] for r in rows.values()])),
             "lift_ci": [float(np.quantile(macro_means, 0.025)), float(np.quantile(macro_means, 0.975))]}
    macro["passed"] = bool(macro["lift_ci"][0] >= -margin)
    return {"metric": metric, "margin": margin, "tasks": rows, "macro": macro, "deployed": str(deployed),
            "passed": bool(macro["passed"] and all(r["passed"] for r in rows.values()))}
