"""Document-level k-fold cross-validation: every document is a test document once.

``lvmbench run --folds K`` (and ``suite run --folds K``) trains and scores
fold ``f`` into ``OUT/fold-<f>-s<seed>-<hash>/`` (a job: :mod:`lvmbench.runs.jobs`),
an ordinary run directory whose test pool
is that fold's own test documents.  The folds' test queries are then pooled
(they are disjoint and together cover every document) for the intervals and
the paired tests, and each fold's Hit@5 is kept to show the spread.  On the
default corpus this turns 293 test queries into ~3,100.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lvmbench import workdir
from lvmbench.config import Recipe, check_recipe
from lvmbench.data.prepare import resolve_data
from lvmbench.errors import UsageError
from lvmbench.evaluate import metrics
from lvmbench.io import atomic_write_json, atomic_write_text
from lvmbench.report import suite as suite_report
from lvmbench.report.compare import load_run
from lvmbench.report.results import SCHEMA_VERSION, utc_now
from lvmbench.runs.resume import check_dataset
from lvmbench.runs.rundir import scoped, series_dir
from lvmbench.runs.executors import ExecutorSpec
from lvmbench.runs.jobs import job_dir
from lvmbench.runs.series import (
    PLAN, Outcome, load_plan, run_series, seeded, series_exit_code, series_resume_command, slug, write_plan,
)
from lvmbench.runs.single import prepare_run
from lvmbench.runtime import configure_threads, resolve_device
from lvmbench.train import distributed

Log = Callable[[str], None]


def fold_recipes(recipe: Recipe, folds: int) -> list[Recipe]:
    """One recipe per fold: ``data.folds = K``, ``data.fold = f``."""
    if folds < 3:
        raise UsageError(f"--folds {folds}: cross-validation needs at least 3 folds (test, val and train parts)")
    out = []
    for f in range(folds):
        r = copy.deepcopy(recipe)
        r.data.folds, r.data.fold = folds, f
        check_recipe(r)
        out.append(r)
    return out


def fold_points(recipe: Recipe, folds: int, parent: Path, sha256: str, seeds: list[int] | None = None,
                prefix: str = "") -> tuple[list[tuple[str, Recipe, Path]], list[dict[str, Any]]]:
    """(label, recipe, job directory ``<model>-fold-<f>-s<seed>-<hash>``) per fold and seed, and what each is."""
    points, what = [], []
    for f, rf in enumerate(fold_recipes(recipe, folds)):
        for seed, r in seeded(rf, seeds):
            label = f"{prefix}fold {f}" + (f" seed {seed}" if seeds is not None else "")
            points.append((label, r, job_dir(parent, slug(r.model.name, f"fold-{f}", f"s{seed}"), r, sha256)))
            what.append({"fold": f, "seed": seed})
    return points, what


def by_seed(outcomes: list[Outcome], what: list[dict[str, Any]]) -> dict[int, list[Outcome]]:
    """The outcomes grouped by training seed, each group in fold order."""
    out: dict[int, list[Outcome]] = {}
    for o, w in sorted(zip(outcomes, what), key=lambda ow: (ow[1]["seed"], ow[1].get("fold") or 0)):
        out.setdefault(w["seed"], []).append(o)
    return out


def pooled(outcomes: list[Outcome]) -> tuple[np.ndarray, dict[str, np.ndarray], list[float]]:
    """The finished folds' model ranks and baseline ranks, concatenated in fold order, and each fold's Hit@5."""
    done = [o for o in outcomes if o.ok]
    if not done:
        raise UsageError("no fold finished; nothing to pool")
    arrays = [load_run(o.run_dir).arrays for o in done]
    names = sorted(set.intersection(*(set(a) for a in arrays)) - {"rank", "target_ids", "pool_ids"})
    ranks = np.concatenate([a["rank"] for a in arrays])
    base = {n[len("rank__"):]: np.concatenate([a[n] for a in arrays]) for n in names if n.startswith("rank__")}
    return ranks, base, [metrics.value("hit@5", a["rank"]) for a in arrays]


def cv_row(task: str, model: str, outcomes: list[Outcome], what: list[dict[str, Any]],
           ks: list[int]) -> dict[str, Any]:
    """One task's row over its folds (pooled) and seeds; a seed counts only when every fold of it finished."""
    groups = {s: g for s, g in by_seed(outcomes, what).items() if all(o.ok for o in g)}
    if not groups:
        raise UsageError("no seed finished all its folds; nothing to pool")
    pooled_by_seed = {s: pooled(g) for s, g in groups.items()}
    first = pooled_by_seed[min(pooled_by_seed)]
    per_fold = [h for _, _, hits in pooled_by_seed.values() for h in hits]
    row = suite_report.seeds_row(task, model, {s: p[0] for s, p in pooled_by_seed.items()}, first[1], ks,
                                 folds=per_fold)
    row["failed_folds"] = [o.label for o in outcomes if not o.ok]
    return row


def write_cv(parent: Path, recipe: Recipe, outcomes: list[Outcome], what: list[dict[str, Any]],
             log: Log) -> dict[str, Any]:
    """cv.json and cv.md: the pooled scores of a cross-validated run, with the fold (and seed) spread."""
    ks = list(recipe.eval.ks)
    summary = suite_report.summarize([cv_row(parent.name, recipe.model.name, outcomes, what, ks)], ks)
    summary.update({"schema_version": SCHEMA_VERSION, "created_utc": utc_now(), "folds": recipe.data.folds,
                    "model": recipe.model.name,
                    "runs": [{**o.summary(), **w, "run_dir": str(Path(o.run_dir).relative_to(parent))}
                             for o, w in zip(outcomes, what)],
                    "recipe": recipe.to_dict()})
    table = suite_report.render(summary, ks)
    atomic_write_json(parent / "cv.json", summary)
    atomic_write_text(parent / "cv.md", "# lvmbench cross-validation\n\n```\n" + table + "\n```\n")
    from lvmbench.report.html.build import REPORT, write_beside

    write_beside("cv", [parent], parent / REPORT, log)
    workdir.mark_complete(parent)
    log("")
    log(f"{recipe.data.folds}-fold cross-validation of {recipe.model.name}: every document tested once, "
        "queries pooled over the folds")
    log(table)
    return summary


@scoped
def run_cv(recipe: Recipe, folds: int, data: str | None, out: str | Path | None, overwrite: bool = False,
           log: Log = print, seeds: list[int] | None = None,
           spec: ExecutorSpec | None = None) -> tuple[Path, dict[str, Any], int]:
    """``lvmbench run --folds K``: every fold (and seed) as a job in OUT, then cv.json / cv.md with pooled scores."""
    distributed.refuse_series("run --folds")
    name = recipe.model.name
    points_recipe = fold_recipes(recipe, folds)[0]
    store, prep0, device = prepare_run([name], points_recipe, data, log)
    recipe.data = copy.deepcopy(points_recipe.data)  # the dataset's fixed settings, as fold 0 adopted them
    parent = series_dir(out, f"{name}-cv{folds}", overwrite, kind="folds", log=log)
    points, what = fold_points(recipe, folds, parent, store.sha256, seeds)
    write_plan(parent, "folds", points, prep0, folds=folds, what=what)
    log(f"{folds}-fold cross-validation of {name} into {parent}: every document is a test document once"
        + (f"; training seeds {', '.join(map(str, seeds))}" if seeds else ""))
    outcomes = run_series(points, [store] * len(points), device, overwrite, log,
                          series_resume_command("folds", parent), spec=spec)
    return parent, write_cv(parent, points[0][1], outcomes, what, log), series_exit_code(outcomes)


@scoped
def resume_cv(parent: str | Path, data: str | None = None, log: Log = print,
              models: list[str] | None = None) -> tuple[Path, dict[str, Any], int]:
    """Continue an interrupted ``run --folds K``: finished folds are kept, the interrupted one resumes."""
    parent = Path(parent)
    plan, points = load_plan(parent, models)
    store = resolve_data(data if data is not None else plan["dataset"]["path"], log)
    check_dataset(store, plan["dataset"]["sha256"], parent / PLAN)
    configure_threads(points[0][1])
    log(f"resuming the {plan['folds']}-fold cross-validation in {parent}")
    outcomes = run_series(points, [store] * len(points), resolve_device(points[0][1].train.device), False, log,
                          series_resume_command("folds", parent), resume=True)
    what = plan.get("what") or [{"fold": i, "seed": None} for i in range(len(points))]
    return parent, write_cv(parent, points[0][1], outcomes, what, log), series_exit_code(outcomes)
