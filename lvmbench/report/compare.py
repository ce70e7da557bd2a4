"""``lvmbench compare``: a leaderboard of several runs on the same queries.

Every number is recomputed from the per-query ranks in each run's
``predictions.npz`` (``rank`` for the run's model, ``rank__<baseline>`` for the
baselines), so the leaderboard never mixes numbers computed different ways:

* Hit@1/5/10 with Wilson 95 % intervals; untruncated MRR with a seeded
  percentile bootstrap interval.
* Lift in the chosen metric over the best baseline (best by that metric).
* Exact McNemar p-value of each model against the best baseline on Hit@5,
  Holm-corrected across the models of the leaderboard, and per-query
  win/tie/loss counts against it (lower rank wins; equal ranks tie).

Ranks are the ones with each query's own context vectors excluded from the
pool (``rank`` in predictions.npz), whatever a run's headline used.

Runs are comparable only if they were scored on the same dataset, split and
pool (sha256 of each in results.json) — refused otherwise unless ``force`` —
and always only on the identical query set (``target_ids``): paired tests
need the same queries in the same order, so that check cannot be forced.
Baselines are taken from the first run; a run whose model is itself a
baseline (``lvmbench run --model ridge``) is listed as a baseline, once.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tabulate import tabulate

from lvmbench import workdir
from lvmbench.errors import IntegrityError, UsageError
from lvmbench.evaluate import metrics
from lvmbench.evaluate.stats import PAIRED_K, holm, paired
from lvmbench import format as fmt_
from lvmbench.report import columns
from lvmbench.report.gate import check_status
from lvmbench.result import Result

DEFAULT_KS = (1, 5, 10)
FORMATS = ("table", "markdown", "csv", "json")
BOOTSTRAP = 1000
"""MRR bootstrap resamples (percentile interval, seeded with ``SEED``)."""
SEED = 0
HASHES = (("dataset", "dataset"), ("split", "split"), ("pool", "pool"))


@dataclass
class Run:
    path: Path
    results: Result
    arrays: dict[str, np.ndarray]


def load_run(path: str | Path) -> Run:
    p = Path(path)
    results = Result.from_json(p)
    npz = (p if p.is_dir() else p.parent) / "predictions.npz"
    if not npz.is_file():
        raise UsageError(f"{npz}: per-query ranks not found (compare needs each run's predictions.npz)")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k in ("target_ids", "pool_ids", "rank", "candidates", "par_true",
                                                        "par_pred") or k.startswith(("rank__", "par_pred__"))}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{npz}: not a readable predictions file ({exc})") from None
    for key in ("target_ids", "rank"):
        if key not in arrays:
            raise UsageError(f"{npz}: no '{key}' array; not an lvmbench predictions file")
    n = len(arrays["target_ids"])
    for key, value in arrays.items():
        if key.startswith("rank") and value.shape != (n,):
            raise UsageError(f"{npz}: '{key}' has shape {value.shape}; it must hold one rank per query ({n} queries)")
        if key.startswith("rank") and n and value.min() < 1:
            raise UsageError(f"{npz}: '{key}'[{int(np.argmax(value < 1))}] is {value.min()}; ranks start at 1")
    return Run(p if p.is_dir() else p.parent, results, arrays)


def believed_runs(paths: list[str | Path] | list[Path]) -> tuple[list[Run], list[str]]:
    """The runs a leaderboard may show (finished and consistent), and a note for each one left out."""
    runs, notes = [], []
    for p in paths:
        try:
            workdir.check_finished(p, "compare")
            run = load_run(p)
            check_status(run.results, str(p), "compare")
        except IntegrityError as exc:
            notes.append(f"left out: {exc}")
            continue
        runs.append(run)
    if not runs:
        raise IntegrityError("no finished, consistent run to compare: " + "; ".join(notes))
    return runs, notes


def _hash(result: Result, section: str) -> str | None:
    """The sha256 the run records for its dataset, split or pool."""
    record = {"dataset": result.dataset, "split": result.split, "pool": result.pool}[section]
    return record.sha256 if record is not None else None


def check_comparable(runs: list[Run], force: bool = False) -> list[str]:
    """Raise UsageError on differing dataset/split/pool hashes (unless forced) or query sets.

    Returns warning lines for what ``force`` let through.
    """
    warnings: list[str] = []
    first = runs[0]
    for label, section in HASHES:
        want = _hash(first.results, section)
        for run in runs[1:]:
            got = _hash(run.results, section)
            if want is None or got is None or want != got:
                what = (f"{label} sha256 differs: {first.path} ({str(want)[:12]}) vs {run.path} ({str(got)[:12]})"
                        if want and got else f"{label} sha256 missing in {first.path if want is None else run.path}")
                if not force:
                    raise UsageError(f"runs are not comparable: {what}; pass --force to compare anyway")
                warnings.append(f"WARNING (--force): {what}")
        if len(runs) == 1 and want is None:
            warnings.append(f"WARNING: {first.path} records no {label} sha256")
    for run in runs[1:]:
        if not np.array_equal(run.arrays["target_ids"], first.arrays["target_ids"]):
            raise UsageError(
                f"runs are not comparable: {run.path} was scored on different queries than {first.path} "
                "(target_ids differ); paired statistics need identical query sets"
            )
    return warnings


def _labels(runs: list[Run]) -> list[str]:
    names = [str(r.results.model_name if r.results.model is not None and r.results.model.has("name")
                 else r.path.name) for r in runs]
    dirs = [r.path.name for r in runs]
    out = []
    for name, d, run in zip(names, dirs, runs):
        if names.count(name) == 1:
            out.append(name)
        elif dirs.count(d) == 1:
            out.append(f"{name} ({d})")
        else:
            out.append(f"{name} ({run.path})")
    return out


def run_ks(run: Run) -> list[int]:
    """The K of the run's recipe (``eval.ks``); 1, 5, 10 for a results file that records none."""
    return run.results.ks


def board_metrics(ks: list[int]) -> list[str]:
    """The leaderboard's metrics with a per-query interval (a rank metric the table shows, no candidate counts
    needed): Hit@K for the recipe's K and MRR, what ``--metric`` may sort by; the rest are :func:`extra_metrics`."""
    return [k for k in columns.shown(ks, vectors=False) if metrics.parse_key(k)[0].per_query is not None
            and not metrics.parse_key(k)[0].needs_candidates]


def extra_metrics(ks: list[int]) -> list[str]:
    """The other shown rank metrics (nDCG@K), computed from the ranks, without an interval."""
    return [k for k in columns.shown(ks, vectors=False) if k not in board_metrics(ks)
            and not metrics.parse_key(k)[0].needs_candidates]


def _row(name: str, kind: str, ranks: np.ndarray, ks: list[int], arrays: dict[str, np.ndarray],
         par_key: str) -> dict[str, Any]:
    """One predictor's leaderboard row; CA and PAR when the run's predictions.npz holds what they need."""
    ranks = np.asarray(ranks)
    row: dict[str, Any] = {"predictor": name, "kind": kind, "n_queries": len(ranks)}
    for key in board_metrics(ks):
        row[key] = metrics.value(key, ranks)
        row[f"{key}_lo"], row[f"{key}_hi"] = metrics.interval(key, ranks, BOOTSTRAP, SEED)
    for key in extra_metrics(ks):
        row[key] = metrics.value(key, ranks)
    row["ca"] = row["ca_lo"] = row["ca_hi"] = row["par"] = row["par_lo"] = row["par_hi"] = None
    c = arrays.get("candidates")
    if c is not None:
        row["ca"] = metrics.value("ca", ranks, c)
        row["ca_lo"], row["ca_hi"] = metrics.interval("ca", ranks, BOOTSTRAP, SEED, c)
    if par_key in arrays and "par_true" in arrays:
        par = metrics.summarize_par(arrays[par_key], arrays["par_true"], BOOTSTRAP, SEED)
        row["par"], (row["par_lo"], row["par_hi"]) = par["par"], par["ci"]["par"]
    return row


def _chance(result: Result, k: int) -> float | None:
    """The run's recorded chance rate (context excluded), else K / pool size."""
    recorded = result.metrics.chance_at(k) if result.metrics is not None else None
    if recorded is not None and result.exclude_context:
        return recorded
    size = result.pool.size if result.pool is not None else None
    return min(1.0, k / size) if size else None


def _entries(runs: list[Run], ks: list[int]) -> list[tuple[dict[str, Any], np.ndarray]]:
    """(row, ranks) per predictor: the first run's baselines, then each run's model."""
    entries: list[tuple[dict[str, Any], np.ndarray]] = []
    for key in sorted(k for k in runs[0].arrays if k.startswith("rank__")):
        name = key[len("rank__"):]
        row = _row(name, "baseline", runs[0].arrays[key], ks, runs[0].arrays, f"par_pred__{name}")
        row["run"] = str(runs[0].path)
        entries.append((row, runs[0].arrays[key]))
    seen = {row["predictor"] for row, _ in entries}
    for label, run in zip(_labels(runs), runs):
        # a run of a baseline (`run --model ridge`) joins the baselines, once
        kind = "baseline" if run.results.is_baseline_run else "model"
        if kind == "baseline" and label in seen:  # the same ranks: one row, marked as this run's model
            row = next(r for r, _ in entries if r["predictor"] == label)
            row["run_model"], row["run"] = True, str(run.path)
            continue
        seen.add(label)
        row = _row(label, kind, run.arrays["rank"], ks, run.arrays, "par_pred")
        row["run"] = str(run.path)
        entries.append((row, run.arrays["rank"]))
    return entries


def _against_best(entries: list[tuple[dict[str, Any], np.ndarray]], metric: str) -> str | None:
    """Fill each row's lift, McNemar (models only, Holm-corrected) and W/T/L against the best baseline."""
    base = [(row, r) for row, r in entries if row["kind"] == "baseline"]
    # max() keeps the first of equals: ties go to the alphabetically first baseline
    best_row, best_rank = max(base, key=lambda e: e[0][metric]) if base else (None, None)
    for row, ranks in entries:
        row["lift"] = row["mcnemar_p"] = row["holm_p"] = None
        row["wins"] = row["ties"] = row["losses"] = row["lift_ci"] = None
        if best_row is None:
            continue
        row["lift"] = row[metric] - best_row[metric]
        if row is best_row:
            continue
        test = paired(ranks, best_rank, (metric,))
        row["wins"], row["ties"], row["losses"] = test["wins"], test["ties"], test["losses"]
        row["lift_ci"] = test.get(f"lift_ci_{metric}")  # the paired bootstrap interval (recorded for Hit@5)
        if row["kind"] == "model":
            row["mcnemar_p"] = test[f"mcnemar_p_hit@{PAIRED_K}"]
    models = [row for row, _ in entries if row["mcnemar_p"] is not None]
    for row, p in zip(models, holm([row["mcnemar_p"] for row in models])):
        row["holm_p"] = p
    return best_row["predictor"] if best_row else None


def leaderboard(runs: list[Run], metric: str = "hit@5") -> dict[str, Any]:
    """Rows (sorted by ``metric``, best first) with intervals, lift, paired tests and W/T/L."""
    metric = metric.lower()
    ks = run_ks(runs[0])
    allowed = board_metrics(ks)
    if metric not in allowed:
        raise UsageError(f"--metric must be one of {', '.join(allowed)}, got {metric!r}")
    entries = _entries(runs, ks)
    best = _against_best(entries, metric)
    n_models = sum(1 for row, _ in entries if row["mcnemar_p"] is not None)
    rows = sorted((row for row, _ in entries), key=lambda r: (-r[metric], r["kind"] != "model", r["predictor"]))
    first = runs[0].results
    pool = first.pool
    return {
        "metric": metric,
        "ks": ks,
        "best_baseline": best,
        "n_queries": len(runs[0].arrays["target_ids"]),
        "pool_size": pool.size if pool is not None else None,
        "pool_split": pool.split if pool is not None else None,
        "context": "excluded",
        "chance": {f"hit@{k}": _chance(first, k) for k in ks},
        "dataset_sha256": _hash(first, "dataset"),
        "split_sha256": _hash(first, "split"),
        "pool_sha256": _hash(first, "pool"),
        "paired_test": f"exact, on Hit@{PAIRED_K}, Holm-corrected across {n_models} model(s)",
        "mrr_interval": f"percentile bootstrap, {BOOTSTRAP} resamples, seed {SEED}",
        "rows": rows,
    }


def _csv(board: dict[str, Any]) -> str:
    buf = io.StringIO()
    fields = ["predictor", "kind", "n_queries"] + [
        f"{m}{s}" for m in board_metrics(board["ks"]) + ["ca", "par"] for s in ("", "_lo", "_hi")
    ] + extra_metrics(board["ks"]) + ["lift", "mcnemar_p", "holm_p", "wins", "ties", "losses", "run"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in board["rows"]:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in fields})
    return buf.getvalue().rstrip("\n")


def _metric_cell(r: dict[str, Any], key: str, with_ci: bool) -> str:
    ci = (r[f"{key}_lo"], r[f"{key}_hi"]) if with_ci and r.get(f"{key}_lo") is not None else None
    return columns.cell(key, r.get(key), ci, with_ci)


def _table_row(r: dict[str, Any], board: dict[str, Any]) -> list[str]:
    name = r["predictor"] + (" (baseline; the run's model)" if r.get("run_model") else
                             " (baseline)" if r["kind"] == "baseline" else "")
    wtl = fmt_.DASH if r["wins"] is None else f"{r['wins']}/{r['ties']}/{r['losses']}"
    with_ci = set(board_metrics(board["ks"]))
    return ([name] + [_metric_cell(r, key, key in with_ci) for key in columns.shown(board["ks"])]
            + [fmt_.lift(r["lift"], board["metric"]), fmt_.pvalue(r["mcnemar_p"]), fmt_.pvalue(r["holm_p"]), wtl])


def render(board: dict[str, Any], fmt: str = "table", warnings: list[str] | None = None) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    metric, ks = board["metric"], board["ks"]
    if fmt == "json":
        return json.dumps({**board, "warnings": warnings or []}, indent=2)
    if fmt == "csv":
        return _csv(board)
    lift_unit = "" if metric == "mrr" else " (pts)"
    with_ci = set(board_metrics(ks))
    headers = (["predictor"] + [columns.heading(key, key in with_ci) for key in columns.shown(ks)]
               + [f"lift {metric}{lift_unit}", f"McNemar p (Hit@{PAIRED_K})", "Holm p", "W/T/L"])
    table = [_table_row(r, board) for r in board["rows"]]
    chance = ", ".join(f"Hit@{k} {fmt_.pct(board['chance'][f'hit@{k}'])}%" for k in ks)
    lines = list(warnings or []) + [
        f"{board['n_queries']} {board['pool_split'] or '?'} queries; pool {board['pool_size'] or '?'} candidates, "
        f"each query's context excluded; chance {chance}",
        f"sorted by {metric}; best baseline by {metric}: {board['best_baseline'] or fmt_.DASH} "
        "(lift, McNemar and W/T/L are against it; W/T/L compares per-query ranks, lower wins)",
        f"McNemar: {board['paired_test']}; MRR interval: {board['mrr_interval']}",
        "",
        tabulate(table, headers=headers, tablefmt="github" if fmt == "markdown" else "simple", disable_numparse=True),
    ]
    return "\n".join(lines)


def compare(
    paths: list[str | Path], metric: str = "hit@5", fmt: str = "table", force: bool = False,
    warn: Callable[[str], None] | None = None, plot: str | Path | None = None,
) -> str:
    """Load, check and render; the whole ``lvmbench compare`` command.

    Warnings (what ``force`` let through) head the table and markdown output and
    sit under ``warnings`` in JSON; CSV output stays pure CSV and hands them to
    ``warn`` (the CLI prints them to stderr).  ``plot``: also draw the
    leaderboard (Hit@5 with Wilson bars) to that PNG; what happened to the
    picture goes to ``warn`` too, so stdout stays the table alone.
    """
    if not paths:
        raise UsageError("compare needs at least one run directory")
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    suites = [(Path(p) / "suite.json").is_file() for p in paths]
    if any(suites):
        if not all(suites):
            raise UsageError("compare takes run directories or suite directories (with suite.json), not both")
        return compare_suites(paths, metric, fmt, force, warn)
    runs, left_out = believed_runs(paths)
    warnings = left_out + check_comparable(runs, force)
    board = leaderboard(runs, metric)
    if plot is not None:
        from lvmbench.report.plots import plot_leaderboard

        note = warn or (lambda _m: None)
        if plot_leaderboard(board, plot, log=note) is not None:
            note(f"wrote {plot}")
    if fmt == "csv":
        for line in warnings:
            (warn or (lambda _m: None))(line)
        return render(board, fmt)
    return render(board, fmt, warnings)


def _task_runs(suite: Path, task: str) -> list[tuple[str, Path]]:
    """The run directories of one task of a suite directory (one per fold and seed), as suite.json records them."""
    from lvmbench.report.suite import task_runs

    return task_runs(suite, task)


def compare_suites(paths: list[str | Path], metric: str = "hit@5", fmt: str = "table", force: bool = False,
                   warn: Callable[[str], None] | None = None) -> str:
    """Task by task (fold by fold), the ordinary leaderboard of the suites' runs, with the same refusals."""
    suites = [Path(p) for p in paths]
    tasks = [json.loads((p / "suite.json").read_text()).get("tasks", []) for p in suites]
    common = [t for t in tasks[0] if all(t in other for other in tasks[1:])]
    if not common:
        raise UsageError("the suite directories share no task")
    boards: dict[str, Any] = {}
    texts = []
    for task in common:
        per_suite = [_task_runs(p, task) for p in suites]
        for i, (label, _) in enumerate(per_suite[0]):
            dirs = [runs[i][1] for runs in per_suite if i < len(runs)]
            if len(dirs) < len(suites):
                continue
            runs, left_out = believed_runs(dirs)
            warnings = left_out + check_comparable(runs, force)
            boards[label] = leaderboard(runs, metric)
            if fmt in ("table", "markdown"):
                texts.append(f"== {label}\n" + render(boards[label], fmt, warnings))
    if fmt == "json":
        return json.dumps({"tasks": boards}, indent=2)
    if fmt == "csv":
        return "\n".join(f"# {label}\n" + render(board, "csv") for label, board in boards.items())
    return "\n\n".join(texts)
