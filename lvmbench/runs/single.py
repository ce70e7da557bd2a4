"""``lvmbench run``: data -> split -> samples -> model -> train -> score -> report, for one model.

Under torchrun (WORLD_SIZE > 1) every rank trains its share with
DistributedDataParallel; rank 0 alone creates the run directory, logs, writes
and scores, and the other ranks return ``(run_dir, None)`` once training is
done (:mod:`lvmbench.train.distributed`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lvmbench.config import Recipe, exclusion_len, training_seed
from lvmbench.data.prepare import Prepared, prepare, resolve_data
from lvmbench.data.store import ChainStore
from lvmbench.errors import ConfigError, Interrupted, UsageError
from lvmbench.evaluate.evaluation import check_ks, check_val_consistency, evaluate_model, pool_for, queries_for
from lvmbench.io import atomic_write_json
from lvmbench.models import registry
from lvmbench.models.build import build_model
from lvmbench.report.gate import check_recipe_gate
from lvmbench.result import Consistency, Result
from lvmbench.runs.artefacts import assemble, dataset_record, finish, model_config, model_section
from lvmbench.runs.rundir import make_run_dir, scoped
from lvmbench.runtime import configure_threads, seed_everything
from lvmbench.train import distributed
from lvmbench.train.checkpoint import best_name, find_best, load_checkpoint
from lvmbench.train.trainer import TrainData, best_epoch_val, metric_label, metric_text, resume_command, train

Log = Callable[[str], None]


def prepare_run(names: list[str], recipe: Recipe, data: str | None,
                log: Log) -> tuple[ChainStore, Prepared, torch.device]:
    """What every training run checks and loads before it writes anything."""
    for name in names:
        registry.get_entry(name)  # unknown model: refused before any work
    check_recipe_gate(recipe.gate)
    configure_threads(recipe)
    store = resolve_data(data, log)
    prep = prepare(store, recipe)
    for split in ("val", "test"):
        check_ks(prep, recipe, split)
    check_outside_models(names, prep, recipe)
    # under torchrun: joins the process group (every rank got here with the same data) and
    # picks this rank's device; otherwise just --device
    return store, prep, distributed.init_from_env(recipe.train.device)[1]


def check_outside_models(names: list[str], prep: Prepared, recipe: Recipe) -> None:
    """Build each outside model once, so one that breaks the contract is refused before anything is written.

    ``model.options`` belong to an outside model; a built-in one reads the
    fixed fields (the baselines, built with the same recipe, ignore them).
    """
    for name in names:
        if registry.get_entry(name).outside:
            build_model(name, prep, recipe)
        elif recipe.model.options:
            raise ConfigError(f"model.options {sorted(recipe.model.options)}: the built-in '{name}' takes none; it "
                              "reads model.hidden, model.layers, model.memory_slots, model.head_hidden, model.dropout")


@scoped
def run(
    recipe: Recipe, data: str | None, out: str | Path | None, overwrite: bool = False, log: Log = print
) -> tuple[Path, Result | None]:
    """Train ``recipe.model.name`` through the recipe and score it on the test split."""
    t_start = time.perf_counter()
    name = recipe.model.name
    dist = distributed.from_env()
    if dist.enabled:  # checks every rank makes alike, before any rank waits for another
        if registry.get_entry(name).kind != "model":
            raise UsageError(f"'{name}' is a baseline: nothing is trained, so there is nothing to distribute; "
                             "run it without torchrun")
        distributed.accum_per_rank(recipe.train.accum_steps, dist.world_size)
        log = distributed.rank_log(log, dist)
    _, prep, device = prepare_run([name], recipe, data, log)
    run_dir = distributed.on_main(lambda: make_run_dir(out, name, overwrite))
    return start_run(recipe, prep, run_dir, device, log, t_start)


def start_run(
    recipe: Recipe, prep: Prepared, run_dir: Path, device: torch.device, log: Log, t_start: float | None = None,
    resume_hint: str | None = None,
) -> tuple[Path, Result | None]:
    """Write the run's recipe, split and data report into ``run_dir``, then train and score.

    From here on the directory is resumable (``resume_hint``, default
    ``lvmbench run --resume RUN_DIR``), whenever Ctrl-C comes.
    """
    t_start = time.perf_counter() if t_start is None else t_start
    hint = resume_hint or resume_command(run_dir)
    if distributed.current().is_main:
        atomic_write_json(run_dir / "split.json", prep.report["split"])
        report = {k: v for k, v in prep.report.items() if k != "split"}
        atomic_write_json(run_dir / "data_report.json", {"dataset": dataset_record(prep), **report})
        atomic_write_json(run_dir / "recipe.json", recipe.to_dict())  # last: it marks the directory resumable
    try:
        return train_and_score(recipe, prep, run_dir, device, log, t_start, resume_hint=hint)
    except Interrupted:
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"{run_dir}: interrupted before the first checkpoint; resume with: {hint}") from None


def _log_data(prep: Prepared, log: Log) -> None:
    g = prep.report["gates"]
    log(
        f"data {prep.store.name}: {g['chains_in']} chains -> {g['chains_kept']} after gates "
        f"(length {g['removed_length']}, coherence {g['removed_coherence']} removed); "
        f"split {', '.join(f'{k} {len(v)}' for k, v in prep.split.chains.items())} chains; "
        f"samples {', '.join(f'{k} {v}' for k, v in prep.report['samples'].items())}; leakage check OK"
    )


def train_data(prep: Prepared, recipe: Recipe, device: torch.device) -> TrainData:
    """Training samples plus the fixed val pool and queries the loop validates on.

    The contrastive recipe also gets its negatives: every vector of the training split.
    """
    unit_t = torch.from_numpy(prep.unit).to(device)
    val_pool = pool_for(prep, recipe, "val")
    data = TrainData(unit_t, prep.samples["train"], prep.samples["val"], queries_for(prep, recipe, "val", val_pool),
                     torch.from_numpy(val_pool.vectors).to(device), exclusion=exclusion_len(recipe))
    if recipe.train.loss == "contrastive":
        offsets = prep.store.offsets
        rows = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in prep.split.chains["train"]])
        data.neg_rows = torch.from_numpy(rows.astype(np.int64)).to(device)
        data.negatives = unit_t[data.neg_rows]
    return data


def _train(model: torch.nn.Module, recipe: Recipe, prep: Prepared, run_dir: Path, device: torch.device, log: Log,
           resume: dict[str, Any] | None, resume_hint: str) -> dict[str, Any] | None:
    """Train through the recipe and load the best checkpoint; None on a torchrun rank other than 0."""
    name = recipe.model.name
    extra = {"dataset_sha256": prep.store.sha256, "dataset_path": str(prep.store.path),
             "split_sha256": prep.report["split"]["sha256"], "model_config": model_config(name, recipe),
             "model_spec": registry.get_entry(name).spec()}
    dist = distributed.current()
    try:
        history = train(model, train_data(prep, recipe, device), recipe, run_dir, name, extra_ckpt=extra, log=log,
                        resume=resume, dist=dist, resume_hint=resume_hint)
    except BaseException:
        if dist.enabled:
            distributed.shutdown(barrier=False)
        raise
    if dist.enabled:  # no collective after training: rank 0 scores alone, the others are done
        distributed.shutdown()
    if not dist.is_main:
        return None
    stop = recipe.train.stop_metric
    model.load_state_dict(load_checkpoint(find_best(run_dir, stop) or run_dir / best_name(stop))["state_dict"])
    log(f"best epoch {history['best_epoch']} (val {metric_label(stop)} {metric_text(stop, history['best_metric'])}); "
        f"{history['stop_reason']}")
    from lvmbench.report import plots

    plots.plot_curves(history, run_dir / plots.CURVES, log=log)
    return history


def train_and_score(
    recipe: Recipe, prep: Prepared, run_dir: Path, device: torch.device, log: Log, t_start: float,
    resume: dict[str, Any] | None = None, resume_hint: str | None = None,
) -> tuple[Path, Result | None]:
    """Train (a model) or not (a baseline), then score on test and write every artefact."""
    name = recipe.model.name
    hint = resume_hint or resume_command(run_dir)
    _log_data(prep, log)
    t_data = time.perf_counter() - t_start
    seed_everything(training_seed(recipe))
    model = build_model(name, prep, recipe)
    history: dict[str, Any] | None = None
    t_train = 0.0
    try:
        if registry.get_entry(name).kind == "model":
            t0 = time.perf_counter()
            history = _train(model, recipe, prep, run_dir, device, log, resume, hint)
            if history is None:
                return run_dir, None
            t_train = time.perf_counter() - t0
        model.to(device)
        scored, arrays = evaluate_model(name, model, prep, recipe, device, "test", log)
        val = (check_val_consistency(model, prep, recipe, device, best_epoch_val(history))
               if history is not None else None)
    except KeyboardInterrupt:
        if history is None:
            raise
        # training is complete and in last.pt: a resume goes straight to scoring
        raise Interrupted(f"interrupted while scoring; resume with: {hint}") from None
    result = assemble(scored, model_section(name, model, recipe, run_dir if history else None, history), prep,
                      recipe, device)
    if val is not None:
        result.consistency.val = Consistency.from_json(val, str(run_dir))
    result.timings.data_s, result.timings.train_s = t_data, t_train
    result.timings.total_s = time.perf_counter() - t_start
    if history is not None and history.get("resumed"):
        result.timings.resumed_after_epochs = [r["after_epoch"] for r in history["resumed"]]
    finish(run_dir, result, arrays, recipe, log)
    log(f"wall time {result.timings.total_s:.1f}s (train {t_train:.1f}s)")
    return run_dir, result
