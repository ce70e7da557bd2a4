"""``lvmbench task`` and ``lvmbench score``: predictions made anywhere, scored exactly like a model.

``task`` writes the queries of a split (:mod:`lvmbench.evaluate.task`);
someone predicts them in JAX, behind a service, in another team's code; and
``score`` ranks those ``[n, D]`` vectors through the path a trained model
takes after ``predict()``: the same pool, exclusion, ranks, intervals,
baselines, lift and paired tests, consistency check and artefacts, so
``compare``, ``gate`` and ``trec`` work on the result unchanged.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from lvmbench.config import Recipe, recipe_from_dict
from lvmbench.data.prepare import prepare, resolve_data
from lvmbench.data.store import load_npy
from lvmbench.errors import DataError, UsageError
from lvmbench.evaluate.evaluation import check_ks, evaluate_predictions, make_eval_split
from lvmbench.evaluate.task import check_task, make_task, read_task
from lvmbench.io import atomic_save_npz, sha256_file
from lvmbench.models.predict import bad_rows, explain
from lvmbench.result import Result
from lvmbench.runs.artefacts import assemble, finish
from lvmbench.runs.rundir import make_run_dir, scoped
from lvmbench.runtime import configure_threads, resolve_device
from lvmbench.trust import check_recipe_imports

Log = Callable[[str], None]


def write_task(recipe: Recipe, data: str | None, split: str, out: str | Path, overwrite: bool = False,
               log: Log = print) -> Path:
    """The task file of ``split`` under ``recipe`` (context length, exclusion, split settings)."""
    out = Path(out)
    if out.suffix != ".npz":
        raise UsageError(f"{out}: a task file ends in .npz")
    if out.exists() and not overwrite:
        raise UsageError(f"{out}: exists (pass --overwrite to replace it)")
    store = resolve_data(data, log)
    prep = prepare(store, recipe)
    check_ks(prep, recipe, split)
    arrays = make_task(prep, recipe, split)
    atomic_save_npz(out, **arrays)
    n, width = arrays["context_ids"].shape
    log(f"wrote {out}: {n} {split} queries of {store.name} (dim {store.dim}), contexts of up to {width} vectors, "
        f"pool of {len(arrays['pool_ids']):,} candidates")
    return out


def load_predictions(path: str | Path, n: int, dim: int) -> torch.Tensor:
    """``[n, dim]`` float32 unit rows from an ``.npy``, as ``predict()`` normalises them; checked after each step.

    Each transformation the scorer applies is followed by a check, so a row
    that would tie every candidate is refused with one line naming it and
    what happened: not finite as stored, overflowing the float32 cast, all
    zeros, or a square that overflows or underflows float32 (normalised to
    zeros or to a non-unit vector).
    """
    p = Path(path)
    pred = load_npy(p)  # refuses pickled/object arrays, truncated files, other formats
    if pred.dtype.kind != "f":
        raise DataError(f"{p}: predictions must be floats, got {pred.dtype}")
    if pred.ndim != 2 or pred.shape[0] != n:
        raise DataError(f"{p}: {pred.shape[0] if pred.ndim else 0} rows (shape {pred.shape}) for the task's "
                        f"{n} queries; row i must be the prediction for query i")
    if pred.shape[1] != dim:
        raise DataError(f"{p}: predictions have dim {pred.shape[1]} but the dataset's vectors have dim {dim}")
    with np.errstate(all="ignore"):  # every problem is reported below as one line, never as a numpy warning
        bad = ~np.isfinite(pred).all(axis=1)
        if bad.any():
            raise DataError(f"{p}: row {int(np.argmax(bad))} has NaN or Inf")
        cast = np.array(pred, dtype=np.float32)  # a writable copy (the file is memory-mapped read-only)
        bad = ~np.isfinite(cast).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{p}: row {row} overflows float32 (largest |x| = {np.abs(pred[row]).max():.3g})")
    zero = ~(np.abs(cast) > 0).any(axis=1)
    if zero.any():
        raise DataError(f"{p}: row {int(np.argmax(zero))} is all zeros (no direction to score)")
    unit = F.normalize(torch.from_numpy(cast), dim=-1, eps=1e-12)  # what predict() does
    rows = bad_rows(unit)
    if len(rows):
        raise DataError(f"{p}: row {int(rows[0])}: {explain(cast[int(rows[0])])} ({len(rows)} such rows); it would "
                        "tie every candidate")
    return unit


def _model_section(name: str, pred_path: Path, task_path: Path) -> dict[str, Any]:
    return {"name": name, "kind": "predictions", "spec": None, "params": None, "predictions": str(pred_path),
            "predictions_sha256": sha256_file(pred_path), "task": str(task_path), "task_sha256": sha256_file(task_path),
            "checkpoint": None, "checkpoint_sha256": None, "best_epoch": None, "stopped_epoch": None, "config": None}


@scoped
def score_file(pred_path: str | Path, task_path: str | Path, data: str | None, out: str | Path,
               overwrite: bool = False, name: str | None = None, device: str = "cpu",
               log: Log = print) -> tuple[Path, Result]:
    """Score predictions for a task file; write an ordinary run directory."""
    t0 = time.perf_counter()
    task = read_task(task_path)
    recipe = recipe_from_dict(task.meta["recipe"], task.path)
    check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(task.path))
    configure_threads(recipe)
    store = resolve_data(data if data is not None else task.meta["dataset"]["path"], log)
    if store.sha256 != task.meta["dataset"]["sha256"]:
        raise DataError(f"{store.path}: dataset sha256 {store.sha256[:12]}… is not the one {task.path} was written "
                        f"for ({task.meta['dataset']['sha256'][:12]}…); pass --data with that dataset")
    pred = load_predictions(pred_path, len(task), store.dim)
    prep = prepare(store, recipe)
    check_task(task, prep, recipe)
    label = name or Path(pred_path).stem
    run_dir = make_run_dir(out, label, overwrite)
    s = make_eval_split(prep, recipe, resolve_device(device), task.meta["split"])
    pred_t = pred.to(s.device)
    scored, arrays = evaluate_predictions(label, pred_t, s, log, kind="predictions")
    result = assemble(scored, _model_section(label, Path(pred_path), task.path), prep, recipe, s.device)
    result.timings.total_s = time.perf_counter() - t0
    finish(run_dir, result, arrays, recipe, log)
    return run_dir, result
