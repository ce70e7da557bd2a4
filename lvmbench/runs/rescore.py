"""``lvmbench eval``: score a saved checkpoint with the recipe stored in it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from lvmbench import workdir
from lvmbench.config import apply_overrides, recipe_from_dict
from lvmbench.data.prepare import prepare, resolve_data
from lvmbench.data.store import ChainStore
from lvmbench.errors import CheckpointError, DataError, UsageError, first_line
from lvmbench.evaluate.index import load_bank
from lvmbench.evaluate.evaluation import check_ks, evaluate_model
from lvmbench.io import sha256_file
from lvmbench.models import outside, registry
from lvmbench.models.build import build_model
from lvmbench.report.gate import check_recipe_gate
from lvmbench.result import Result
from lvmbench.runs.artefacts import assemble, finish, model_section
from lvmbench.runs.rundir import make_run_dir, scoped
from lvmbench.runtime import configure_threads, resolve_device
from lvmbench.trust import check_recipe_imports
from lvmbench.train.checkpoint import find_best, load_checkpoint

Log = Callable[[str], None]


def checked_checkpoint(path: Path, model: str | None) -> dict[str, Any]:
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt["model"], str):
        raise CheckpointError(f"{path}: unknown model {ckpt['model']!r} in checkpoint")
    outside.confirm([ckpt["model"]], [model] if model else None, str(path))
    try:
        registry.get_entry(ckpt["model"])
    except UsageError as exc:
        raise CheckpointError(f"{path}: model {ckpt['model']!r} of the checkpoint: {exc}") from None
    if not isinstance(ckpt["dim"], int) or isinstance(ckpt["dim"], bool):
        raise CheckpointError(f"{path}: checkpoint dim {ckpt['dim']!r} is not an integer")
    return ckpt


def recorded_dataset(ckpt: dict[str, Any], path: Path, data: str | None, log: Log) -> ChainStore:
    """The dataset the checkpoint was trained on: ``--data`` when given, else its recorded path, sha256-checked.

    Never the default dataset in its place: a run on another corpus scored on
    the default one would be a complete, plausible and wrong result.
    """
    if data is not None:
        return resolve_data(data, log)
    sha, where = ckpt.get("dataset_sha256"), ckpt.get("dataset_path")
    if not sha or not where:
        raise CheckpointError(f"{path}: records no dataset; pass --data with the dataset it was trained on")
    try:
        store = resolve_data(str(where), log)
    except DataError:
        store = None
    if store is None or store.sha256 != sha:
        why = "is not there" if store is None else f"now holds another dataset (sha256 {store.sha256[:12]}…)"
        raise CheckpointError(f"{path}: was trained on dataset sha256 {sha[:12]}… recorded at {where}, which {why}; "
                              "pass --data with that dataset")
    return store


@scoped
def evaluate_checkpoint(
    checkpoint: str | Path, data: str | None, recipe_overrides: list[str], out: str | Path | None,
    split: str, overwrite: bool, log: Log = print,
    bank: str | Path | None = None, shard_size: int = 0, ann: str | None = None, model: str | None = None,
) -> tuple[Path, Result]:
    """Score a saved checkpoint (a file, or a run directory holding its best checkpoint, best_val_<metric>.pt).

    ``bank``: an ``.npy`` of extra candidate vectors (or a chain store), added
    to the pool; see :func:`lvmbench.evaluate.evaluation.evaluate_model` for
    ``shard_size`` and ``ann``.  ``model`` confirms an outside model's import
    path: one read from the checkpoint is never imported unless named again.
    """
    t0 = time.perf_counter()
    path = Path(checkpoint)
    if path.parent.is_dir():  # a run another command is writing, or one that failed
        workdir.check_finished(path if path.is_dir() else path.parent, "eval")
    if path.is_dir():
        best = find_best(path)
        if best is None:
            raise CheckpointError(f"{path}: checkpoint not found (no best_val_<metric>.pt: this run trained no model)")
        path = best
    ckpt = checked_checkpoint(path, model)
    name = ckpt["model"]
    recipe = apply_overrides(recipe_from_dict(ckpt["recipe"], path), recipe_overrides)
    check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(path))
    check_recipe_gate(recipe.gate)
    configure_threads(recipe)
    store = recorded_dataset(ckpt, path, data, log)
    if store.dim != ckpt["dim"]:
        raise CheckpointError(f"{path}: checkpoint expects dim {ckpt['dim']} but dataset {store.path} "
                              f"has dim {store.dim}")
    if ckpt.get("dataset_sha256") and ckpt["dataset_sha256"] != store.sha256:
        log(f"warning: {store.path} is not the dataset this checkpoint was trained on (sha256 differs)")
    if shard_size < 0:
        raise UsageError(f"--shard-size {shard_size}: must be >= 0 (0 = no sharding)")
    bank_ = load_bank(bank, store.dim, log) if bank is not None else None
    prep = prepare(store, recipe)
    check_ks(prep, recipe, split, bank_.size if bank_ else 0)
    device = resolve_device(recipe.train.device)
    net = build_model(name, prep, recipe)
    try:
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit model '{name}' ({first_line(exc)})") from None
    net.to(device)
    run_dir = make_run_dir(out if out else path.parent / f"eval-{split}", name, overwrite)
    scored, arrays = evaluate_model(name, net, prep, recipe, device, split, log, bank_, shard_size, ann)
    result = assemble(scored, model_section(name, net, recipe, None, None), prep, recipe, device)
    result.model.checkpoint, result.model.checkpoint_sha256 = str(path), sha256_file(path)
    result.model.best_epoch = ckpt.get("epoch")
    result.timings.total_s = time.perf_counter() - t0
    finish(run_dir, result, arrays, recipe, log)
    return run_dir, result
