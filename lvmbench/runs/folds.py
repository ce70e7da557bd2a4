"""Document-level k-fold cross-validation: every document is a test document once.

``lvmbench run --folds K`` (and ``suite run --folds K``) trains and scores
fold ``f`` into ``OUT/fold-<f>/``, an ordinary run directory whose test pool
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
import torch

from lvmbench import workdir
from lvmbench.config import Recipe, validate
from lvmbench.data.prepare import prepare, resolve_data
from lvmbench.data.store import ChainStore
from lvmbench.errors import UsageError
from lvmbench.evaluate import metrics
from lvmbench.io import atomic_write_json, atomic_write_text
from lvmbench.report import suite as suite_report
from lvmbench.report.compare import load_run
from lvmbench.report.results import SCHEMA_VERSION, utc_now
from lvmbench.runs.resume import check_dataset
from lvmbench.runs.rundir import scoped, series_dir
from lvmbench.runs.series import (
    PLAN, Outcome, load_plan, run_series, series_exit_code, series_resume_command, write_plan,
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
        validate(r)
        out.append(r)
    return out


def fold_points(recipe: Recipe, folds: int, parent: Path) -> list[tuple[str, Recipe, Path]]:
    return [(f"fold {f}", r, parent / f"fold-{f}") for f, r in enumerate(fold_recipes(recipe, folds))]


def run_fold_points(points: list[tuple[str, Recipe, Path]], store: ChainStore, device: torch.device,
                    overwrite: bool, log: Log, hint: str, resume: bool = False) -> list[Outcome]:
    """Each fold on its own split of the same documents (a fold's prepare() gives its split)."""
    outcomes: list[Outcome] = []
    for label, recipe, run_dir in points:
        prep = prepare(store, recipe)
        outcomes += run_series([(label, recipe, run_dir)], prep, device, overwrite, log, hint, resume=resume)
    return outcomes


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


def cv_row(task: str, model: str, outcomes: list[Outcome], ks: list[int]) -> dict[str, Any]:
    ranks, base, per_fold = pooled(outcomes)
    row = suite_report.task_row(task, model, ranks, base, ks, folds=per_fold)
    row["failed_folds"] = [o.label for o in outcomes if not o.ok]
    return row


def write_cv(parent: Path, recipe: Recipe, outcomes: list[Outcome], log: Log) -> dict[str, Any]:
    """cv.json and cv.md: the pooled scores of a cross-validated run, with the fold spread."""
    ks = list(recipe.eval.ks)
    summary = suite_report.summarize([cv_row(parent.name, recipe.model.name, outcomes, ks)], ks)
    summary.update({"schema_version": SCHEMA_VERSION, "created_utc": utc_now(), "folds": recipe.data.folds,
                    "model": recipe.model.name, "runs": [o.summary() for o in outcomes],
                    "recipe": recipe.to_dict()})
    table = suite_report.render(summary, ks)
    atomic_write_json(parent / "cv.json", summary)
    atomic_write_text(parent / "cv.md", "# lvmbench cross-validation\n\n```\n" + table + "\n```\n")
    workdir.mark_complete(parent)
    log("")
    log(f"{recipe.data.folds}-fold cross-validation of {recipe.model.name}: every document tested once, "
        "queries pooled over the folds")
    log(table)
    return summary


@scoped
def run_cv(recipe: Recipe, folds: int, data: str | None, out: str | Path | None, overwrite: bool = False,
           log: Log = print) -> tuple[Path, dict[str, Any], int]:
    """``lvmbench run --folds K``: every fold into OUT/fold-<f>/, then cv.json / cv.md with pooled scores."""
    distributed.refuse_series("run --folds")
    name = recipe.model.name
    points_recipe = fold_recipes(recipe, folds)[0]
    store, prep0, device = prepare_run([name], points_recipe, data, log)
    recipe.data = copy.deepcopy(points_recipe.data)  # the dataset's fixed settings, as fold 0 adopted them
    parent = series_dir(out, f"{name}-cv{folds}", overwrite)
    points = fold_points(recipe, folds, parent)
    write_plan(parent, "folds", points, prep0, folds=folds)
    log(f"{folds}-fold cross-validation of {name} into {parent}: every document is a test document once")
    outcomes = run_fold_points(points, store, device, overwrite, log, series_resume_command("folds", parent))
    return parent, write_cv(parent, points[0][1], outcomes, log), series_exit_code(outcomes)


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
    outcomes = run_fold_points(points, store, resolve_device(points[0][1].train.device), False, log,
                               series_resume_command("folds", parent), resume=True)
    return parent, write_cv(parent, points[0][1], outcomes, log), series_exit_code(outcomes)
