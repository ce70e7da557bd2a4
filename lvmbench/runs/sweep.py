"""``lvmbench sweep``: context length against Hit@K on a fixed pool.

The artefact this command exists to prevent: a published "longer context
helps" curve whose candidate pool shrank as the context grew.  Here every
point of the sweep retrains the model with ``data.context_len = C`` and is
scored against

* the **same test queries**: the split and ``data.min_context`` define them,
  not the context length (a query with fewer than C earlier vectors simply
  gets a shorter context);
* the **same pool**: every vector of the test chains;
* the **same candidates per query**: ``eval.exclude_len`` is set to the
  longest context of the sweep for every point, so each query's preceding
  ``max(C)`` vectors leave the pool at every point — otherwise a longer context
  would exclude more candidates and make the task easier.  (A sweep point's
  headline therefore differs slightly from ``lvmbench run --set
  data.context_len=C``, which excludes only C vectors.)

These are checked, not assumed: the query target ids, the pool sha256 and the
exclusion window must be identical across points (and copy_last, which ignores
all but the last vector, must rank every query identically at every point);
any difference is an integrity failure (exit 3).  Each point is a job
(:mod:`lvmbench.runs.jobs`) into an ordinary run directory
``OUT/<model>-ctx-<C>-<hash>/``; ``OUT/sweep.json`` and ``OUT/sweep.md`` hold
the table.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tabulate import tabulate

from lvmbench import workdir
from lvmbench.config import Recipe, check_recipe, recipe_from_dict
from lvmbench.data.prepare import Prepared, apply_dataset_settings, prepare, resolve_data
from lvmbench.errors import ConfigError, IntegrityError, UsageError
from lvmbench.evaluate.evaluation import check_ks
from lvmbench.io import atomic_write_json, atomic_write_text, sha256_arrays
from lvmbench.models import registry
from lvmbench.report import columns
from lvmbench.report.compare import load_run
from lvmbench.report.gate import check_recipe_gate
from lvmbench.format import DASH, num, pct
from lvmbench.report.results import SCHEMA_VERSION, utc_now
from lvmbench.result import Result
from lvmbench.runs.rundir import scoped, series_dir
from lvmbench.runs.single import check_outside_models
from lvmbench.runs.series import (
    PLAN, load_plan, prepare_plan, run_series, series_exit_code, series_resume_command, slug, write_plan,
)
from lvmbench.runs.executors import ExecutorSpec
from lvmbench.runs.jobs import job_dir
from lvmbench.runtime import configure_threads, resolve_device

Log = Callable[[str], None]
REFERENCE = "copy_last"


def parse_contexts(spec: str) -> list[int]:
    """``5,20,100`` -> ``[5, 20, 100]`` (ascending); each >= 1, no repeats."""
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--context expects comma-separated integers, got {spec!r}") from None
    if not values:
        raise UsageError("--context needs at least one context length")
    if any(v < 1 for v in values):
        raise UsageError(f"--context lengths must be >= 1, got {spec!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"--context lists a length more than once: {spec!r}")
    return sorted(values)


def point_recipes(recipe: Recipe, contexts: list[int]) -> list[Recipe]:
    """One recipe per context length, all excluding the same window (the longest context)."""
    window = max(max(contexts), recipe.eval.exclude_len)
    out = []
    for c in contexts:
        r = copy.deepcopy(recipe)
        r.data.context_len = c
        r.eval.exclude_len = window
        check_recipe(r)
        out.append(r)
    return out


def _load_point(run_dir: Path) -> dict[str, np.ndarray]:
    """A finished point's per-query ranks; unreadable ones make the sweep unverifiable (exit 3)."""
    try:
        return load_run(run_dir).arrays
    except UsageError as exc:
        raise IntegrityError(f"cannot read the point's per-query ranks ({exc})") from None


def _keys(summary: dict[str, Any]) -> list[str]:
    """The metric columns: the shown metrics of the sweep's K that its points record (an older sweep.json: fewer)."""
    rows = [p["metrics"] for p in summary["points"] if p["status"] == "ok"]
    return [k for k in columns.shown(summary["ks"]) if not rows or any(k in m for m in rows)]


def _metric_cells(m: dict[str, Any], keys: list[str]) -> list[str]:
    ci = m.get("ci") or {}
    return [columns.cell(k, m.get(k), ci.get(k), with_ci=columns.has_interval(k)) for k in keys]


def render(summary: dict[str, Any]) -> str:
    ks, keys = summary["ks"], _keys(summary)
    headers = (["context"] + [columns.heading(k, columns.has_interval(k)) for k in keys]
               + ["best epoch", "margin"])
    rows = []
    for p in summary["points"]:
        if p["status"] != "ok":
            rows.append([str(p["context"]), f"FAILED: {p['error']}"] + [""] * (len(headers) - 2))
            continue
        m = p["metrics"]
        rows.append([str(p["context"])] + _metric_cells(m, keys)
                    + [DASH if p["best_epoch"] is None else str(p["best_epoch"]), num(m["margin"], signed=True)])
    ref = summary.get("reference")
    if ref:
        rows.append([f"{ref['name']} (baseline, any context)"] + _metric_cells(ref["metrics"], keys)
                    + [DASH, num(ref["metrics"]["margin"], signed=True)])
    q, pool, chance = summary["queries"], summary["pool"], summary.get("chance") or {}
    checks = summary["checks"]
    lines = [
        f"context-length sweep of {summary['model']} on {summary['dataset']['name']} "
        f"(sha256 {str(summary['dataset']['sha256'])[:12]})",
        f"every point: the same {q['n']} {pool['split']} queries "
        f"(target ids sha256 {str(q['target_ids_sha256'])[:12]}), "
        f"the same pool of {pool['size']} candidates (sha256 {str(pool['sha256'])[:12]}), each query's "
        f"{summary['exclude_len']} preceding vectors excluded at every point; chance "
        + ", ".join(f"Hit@{k} {pct(chance.get(f'hit@{k}'))}%" for k in ks),
        "checks: " + ", ".join(f"{k} {'OK' if v else 'FAILED'}" for k, v in checks.items() if v is not None),
        "",
        tabulate(rows, headers=headers, disable_numparse=True),
    ]
    return "\n".join(lines)


@dataclass
class Point:
    """A finished point: its results and its per-query arrays."""

    result: Result
    arrays: dict[str, np.ndarray]


def _point_row(context: int, o: Any, ks: list[int]) -> tuple[dict[str, Any], Point | None]:
    """sweep.json's row of one point, and the point when it finished."""
    row: dict[str, Any] = {"context": context, "run_dir": str(o.run_dir), "status": "ok" if o.ok else "failed",
                           "error": o.error, "exit_code": o.exit_code}
    if not o.ok:
        return row, None
    res: Result = o.results
    arrays = _load_point(Path(o.run_dir))
    m = res.metrics
    row.update({
        "metrics": {**{k: m.recorded(k) for k in columns.shown(ks) if k in m.metric_keys()},
                    "mean_cos": m.mean_cos, "margin": m.margin, "ci": m.ci, "n_queries": m.n_queries},
        "best_epoch": res.model.best_epoch,
        "params": res.model.params,
        "pool_sha256": res.pool.sha256,
        "exclude_len": res.pool.exclude_len,
        "target_ids_sha256": sha256_arrays(arrays["target_ids"]),
        "train_s": res.timings.train_s if res.timings is not None else None,
    })
    return row, Point(res, arrays)


def _checks(loaded: list[Point], window: int) -> dict[str, Any]:
    """Same queries, pool and exclusion at every point (and copy_last ranking every query alike)."""
    checks: dict[str, Any] = {"same_queries": None, "same_pool": None, "same_exclusion": None,
                              "copy_last_ranks_identical": None}
    if not loaded:
        return checks
    first = loaded[0]
    checks["same_queries"] = all(np.array_equal(p.arrays["target_ids"], first.arrays["target_ids"]) for p in loaded)
    checks["same_pool"] = all(p.result.pool.sha256 == first.result.pool.sha256 for p in loaded)
    checks["same_exclusion"] = all(p.result.pool.exclude_len == window for p in loaded)
    key = f"rank__{REFERENCE}"
    if all(key in p.arrays for p in loaded):
        checks["copy_last_ranks_identical"] = all(np.array_equal(p.arrays[key], first.arrays[key]) for p in loaded)
    return checks


def _summary(recipe: Recipe, contexts: list[int], window: int, store: Any, split_sha: str,
             rows: list[dict[str, Any]], loaded: list[Point], checks: dict[str, Any]) -> dict[str, Any]:
    first = loaded[0] if loaded else Point(Result(), {})
    first_res, first_arr = first.result, first.arrays
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": utc_now(),
        "model": recipe.model.name,
        "contexts": contexts,
        "exclude_len": window,
        "ks": list(recipe.eval.ks),
        "dataset": {"name": store.name, "path": str(store.path), "sha256": store.sha256},
        "split_sha256": split_sha,
        "queries": {
            "split": "test",
            "n": int(len(first_arr["target_ids"])) if loaded else None,
            "target_ids_sha256": sha256_arrays(first_arr["target_ids"]) if loaded else None,
            "defined_by": "the test split and data.min_context (not data.context_len)",
        },
        "pool": _pool(first_res),
        "chance": first_res.metrics.chance if first_res.metrics is not None else None,
        "checks": checks,
        "points": rows,
        "reference": None,
        "recipe": recipe.to_dict(),
    }
    reference = (first_res.baselines or {}).get(REFERENCE) if loaded else None
    if reference is not None:
        summary["reference"] = {"name": REFERENCE, "metrics": reference.to_json()}
    return summary


def _pool(result: Result) -> dict[str, Any]:
    pool = result.pool
    return {"split": pool.split if pool else None, "size": pool.size if pool else None,
            "sha256": pool.sha256 if pool else None, "exclude_context": pool.exclude_context if pool else None}


def _finish(parent: Path, recipe: Recipe, contexts: list[int], prep: Prepared, outcomes: list[Any],
            log: Log) -> tuple[Path, dict[str, Any], int]:
    """sweep.json and sweep.md from the points' outcomes; exit 3 when the points are not comparable."""
    window = max(max(contexts), recipe.eval.exclude_len)
    rows, loaded = [], []
    for c, o in zip(contexts, outcomes):
        row, point = _point_row(c, o, list(recipe.eval.ks))
        rows.append(row)
        if point is not None:
            loaded.append(point)
    checks = _checks(loaded, window)
    summary = _summary(recipe, contexts, window, prep.store, prep.report["split"]["sha256"], rows, loaded, checks)
    table = render(summary)
    atomic_write_json(parent / "sweep.json", summary)
    atomic_write_text(parent / "sweep.md", "# lvmbench context-length sweep\n\n```\n" + table + "\n```\n")
    from lvmbench.report.html.build import REPORT, write_beside

    write_beside("sweep", [parent], parent / REPORT, log)
    workdir.mark_complete(parent)
    log("")
    log(table)
    log(f"artefacts in {parent} (sweep.json, sweep.md, <model>-ctx-<C>-<hash>/ run directories)")
    bad = [k for k, v in checks.items() if v is False]
    if bad:
        raise IntegrityError(f"{parent}: sweep points differ in {', '.join(bad)}; the points are not comparable")
    return parent, summary, series_exit_code(outcomes)


@scoped
def sweep(
    recipe: Recipe, contexts: list[int], data: str | None, out: str | Path | None, overwrite: bool = False,
    log: Log = print, spec: ExecutorSpec | None = None,
) -> tuple[Path, dict[str, Any], int]:
    """Retrain ``recipe.model.name`` at each context length and score every point on the same queries and pool.

    Returns the sweep directory, the summary (``sweep.json``) and the exit code
    (0, or the highest exit code of a failed point; an integrity failure raises).
    An interrupted sweep continues with ``lvmbench sweep --resume OUT``.
    """
    name = recipe.model.name
    registry.get_entry(name)
    if not contexts:
        raise UsageError("sweep needs at least one context length")
    check_recipe_gate(recipe.gate)
    configure_threads(recipe)
    store = resolve_data(data, log)
    recipes = point_recipes(apply_dataset_settings(recipe, store), contexts)
    prep = prepare(store, recipes[0])  # gates, split and samples do not depend on data.context_len
    for split in ("val", "test"):
        check_ks(prep, recipes[0], split)
    check_outside_models([name], prep, recipes[0])
    device = resolve_device(recipe.train.device)
    parent = series_dir(out, f"{name}-sweep", overwrite, kind="sweep", log=log)
    log(f"sweep of {name} over context lengths {', '.join(map(str, contexts))} into {parent}; "
        f"every point excludes each query's {recipes[0].eval.exclude_len} preceding vectors")
    points = [(f"context {c}", r, job_dir(parent, slug(name, f"ctx-{c}"), r, store.sha256))
              for c, r in zip(contexts, recipes)]
    write_plan(parent, "sweep", points, prep, contexts=contexts, recipe=recipe.to_dict())
    outcomes = run_series(points, prep, device, overwrite, log, series_resume_command("sweep", parent), spec=spec)
    return _finish(parent, recipe, contexts, prep, outcomes, log)


@scoped
def resume_sweep(parent: str | Path, data: str | None = None, log: Log = print,
                 models: list[str] | None = None) -> tuple[Path, dict[str, Any], int]:
    """Continue an interrupted sweep: finished points are kept, started ones resume, the rest start."""
    parent = Path(parent)
    plan, points = load_plan(parent, models)
    if plan.get("kind") != "sweep":
        raise UsageError(f"{parent / PLAN}: a {plan.get('kind')} series, not a sweep; use lvmbench run --resume")
    recipe = recipe_from_dict(plan["recipe"], parent / PLAN)
    prep, device = prepare_plan(plan, points[0][1], data, parent / PLAN, log)
    log(f"resuming the sweep in {parent} ({len(points)} context lengths)")
    outcomes = run_series(points, prep, device, False, log, series_resume_command("sweep", parent), resume=True)
    return _finish(parent, recipe, plan["contexts"], prep, outcomes, log)


def check_overrides(overrides: list[str]) -> None:
    """``--set data.context_len`` would be overwritten at every point: refuse it."""
    for item in overrides:
        if item.split("=", 1)[0].strip() in ("data.context_len", "eval.exclude_len"):
            raise ConfigError(f"--set {item}: the sweep sets this itself (use --context)")


__all__ = ["sweep", "parse_contexts", "point_recipes", "render", "check_overrides"]
