"""``lvmbench run --resume RUN_DIR``: continue an interrupted run exactly where it stopped.

A run directory is resumable from the moment ``recipe.json`` is in it: with
``last.pt`` training restarts after the last completed epoch; without one
(Ctrl-C before the first checkpoint) training starts at epoch 1 with the
recorded recipe, dataset and split; a baseline run (nothing to train) is
scored again.  The dataset must have the recorded sha256 and give the
recorded split.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import torch

from lvmbench import workdir
from lvmbench.config import Recipe, recipe_from_dict
from lvmbench.data.prepare import Prepared, prepare, resolve_data
from lvmbench.data.store import ChainStore
from lvmbench.errors import CheckpointError, ConfigError, DataError, UsageError
from lvmbench.io import read_json
from lvmbench.models import outside, registry
from lvmbench.result import Result
from lvmbench.runs.single import train_and_score
from lvmbench.runtime import configure_threads
from lvmbench.trust import check_recipe_imports
from lvmbench.train import distributed
from lvmbench.train.checkpoint import LAST, load_checkpoint
from lvmbench.runs.rundir import claim_existing, scoped

Log = Callable[[str], None]


def _run_recipe(run_dir: Path, model: str | None = None) -> Recipe:
    """The recipe a run directory was started with (``recipe.json``); refused if the run is not resumable."""
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: run directory not found")
    if (run_dir / "results.json").is_file() and workdir.incomplete(run_dir) is None:
        raise UsageError(f"{run_dir}: this run already finished (results.json exists); nothing to resume")
    rpath = run_dir / "recipe.json"
    if not rpath.is_file():
        raise UsageError(f"{rpath}: not found; {run_dir} is not an lvmbench run directory")
    recipe = recipe_from_dict(read_json(rpath, ConfigError), rpath)
    outside.confirm([recipe.model.name], [model] if model else None, str(rpath))
    check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(rpath))
    registry.get_entry(recipe.model.name)
    return recipe


def checkpoint_of(run_dir: Path, recipe: Recipe) -> dict[str, Any] | None:
    """``last.pt`` when training got that far (it must belong to this recipe), else None."""
    lpath = run_dir / LAST
    if not lpath.is_file():
        return None
    ckpt = load_checkpoint(lpath)
    # compared through recipe_from_dict so a checkpoint written before a recipe field existed
    # (stored without it, read back with its default) still matches its own recipe.json
    try:
        same_recipe = recipe_from_dict(ckpt["recipe"], lpath).to_dict() == recipe.to_dict()
    except ConfigError:
        same_recipe = False
    if ckpt["model"] != recipe.model.name or not same_recipe:
        raise CheckpointError(f"{lpath}: its model or recipe differs from {run_dir / 'recipe.json'}; "
                              "refusing to mix two runs")
    return ckpt


def _recorded_data(run_dir: Path, ckpt: dict[str, Any] | None) -> tuple[Any, Any, Any, Path]:
    """(dataset path, dataset sha256, split sha256, the file that recorded them)."""
    if ckpt is not None:
        return ckpt.get("dataset_path"), ckpt.get("dataset_sha256"), ckpt.get("split_sha256"), run_dir / LAST
    rpath = run_dir / "data_report.json"
    dataset = (read_json(rpath, UsageError) if rpath.is_file() else {}).get("dataset") or {}
    if not dataset.get("sha256"):
        raise UsageError(f"{rpath}: records no dataset, so this run cannot be resumed before its first "
                         "checkpoint; start it again with --overwrite")
    split = read_json(run_dir / "split.json", UsageError) if (run_dir / "split.json").is_file() else {}
    return dataset.get("path"), dataset["sha256"], split.get("sha256"), rpath


def check_dataset(store: ChainStore, dataset_sha: Any, where: Path) -> None:
    """Resume needs the dataset the run started with (checked before prepare(): the hash is cheap)."""
    if dataset_sha != store.sha256:
        raise DataError(
            f"{store.path}: dataset sha256 {store.sha256[:12]}… differs from the one {where} records "
            f"({str(dataset_sha)[:12]}…); resume needs the same dataset"
        )


def check_split(prep: Prepared, split_sha: Any, where: Path) -> None:
    if split_sha != prep.report["split"]["sha256"]:
        raise DataError(f"{prep.store.path}: the split differs from the one recorded in {where}; cannot resume")


def _what(recipe: Recipe, ckpt: dict[str, Any] | None, run_dir: Path) -> str:
    if registry.get_entry(recipe.model.name).kind != "model":
        return f"resuming {run_dir}: a baseline, nothing to train; scoring again"
    if ckpt is None:
        return f"resuming {run_dir}: interrupted before its first checkpoint; training starts at epoch 1"
    return f"resuming {run_dir} from {run_dir / LAST} (epoch {ckpt.get('epoch')})"


@scoped
def resume_run(run_dir: str | Path, data: str | None = None, log: Log = print,
               model: str | None = None) -> tuple[Path, Result | None]:
    """Continue an interrupted ``run`` from ``RUN_DIR`` with the recipe in ``RUN_DIR/recipe.json``.

    The dataset defaults to the one the run records and must have its
    sha256.  Training restarts after the last completed epoch with the model,
    optimiser, scheduler, early-stopping and RNG state of that epoch, so the
    result equals an uninterrupted run's.  ``model`` confirms an outside
    model's import path recorded in recipe.json (never imported otherwise).
    """
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    dist = distributed.from_env()
    log = distributed.rank_log(log, dist)
    recipe = _run_recipe(run_dir, model)
    if dist.is_main:  # one command at a time: a second resume of this directory is refused here
        claim_existing(run_dir)
    # every rank reads the same run directory (on several machines it must be shared) and checks alike;
    # the data order depends on (seed, epoch) only, so any world size dividing accum_steps resumes exactly
    distributed.accum_per_rank(recipe.train.accum_steps, dist.world_size,
                               hint=f"resume with a number of processes that divides {recipe.train.accum_steps}")
    ckpt = checkpoint_of(run_dir, recipe)
    configure_threads(recipe)
    path, dataset_sha, split_sha, where = _recorded_data(run_dir, ckpt)
    store = resolve_data(data if data is not None else path, log)
    check_dataset(store, dataset_sha, where)
    prep = prepare(store, recipe)
    check_split(prep, split_sha, where)
    device = distributed.init_from_env(recipe.train.device)[1]
    log(_what(recipe, ckpt, run_dir))
    return train_and_score(recipe, prep, run_dir, device, log, t_start, resume=ckpt)


def continue_point(recipe: Recipe, prep: Prepared, run_dir: Path, device: torch.device, log: Log,
                   resume_hint: str) -> Result | None:
    """One started point of an interrupted series, continued on the series' prepared data."""
    claim_existing(run_dir)
    ckpt = checkpoint_of(run_dir, recipe)
    if ckpt is not None:
        check_dataset(prep.store, ckpt.get("dataset_sha256"), run_dir / LAST)
        check_split(prep, ckpt.get("split_sha256"), run_dir / LAST)
    log(_what(recipe, ckpt, run_dir))
    return train_and_score(recipe, prep, run_dir, device, log, time.perf_counter(), resume=ckpt,
                           resume_hint=resume_hint)[1]
