"""``lvmbench suite``: the standard suite of real corpora, listed and run.

``suite run`` prepares every task first (its fixed split and gates), times a
few training steps of the model on each and prints the estimated training
time per task before any training starts, then trains and scores every job
(task x fold x training seed: :mod:`lvmbench.runs.jobs`, one ordinary run
directory each, ``OUT/<task>/<model>[-fold-<f>]-s<seed>-<hash>/``; finished
jobs in OUT are reused, ``--jobs N`` or ``--executor ray`` runs them side by
side) and ends with the
suite table: per task Hit@K with Wilson intervals, MRR, lift over that
task's best baseline with a paired bootstrap interval and exact McNemar p
(Holm over the tasks), and the macro average (``OUT/suite.json``,
``OUT/suite.md``).  Nothing shrinks a pool or a test set to save time.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lvmbench import workdir
from lvmbench.config import Recipe, recipe_from_dict, training_seed
from lvmbench.errors import UsageError
from lvmbench.data.prepare import Prepared, prepare
from lvmbench.data.store import load_store
from lvmbench.data.suite import SuiteTask, suite_tasks
from lvmbench.evaluate import metrics
from lvmbench.evaluate.evaluation import check_ks, pool_for, queries_for
from lvmbench.format import duration
from lvmbench.io import atomic_write_json, atomic_write_text, read_json
from lvmbench.models import outside, registry
from lvmbench.models.build import build_model
from lvmbench.report import suite as suite_report
from lvmbench.report.compare import load_run
from lvmbench.report.gate import check_recipe_gate
from lvmbench.report.results import SCHEMA_VERSION, utc_now
from lvmbench.runs import folds as cv
from lvmbench.runs.rundir import claim_existing, scoped, series_dir
from lvmbench.runs.executors import ExecutorSpec
from lvmbench.runs.jobs import job_dir
from lvmbench.runs.series import PLAN, run_series, seeded, series_exit_code, series_resume_command, slug
from lvmbench.runs.single import check_outside_models, train_data
from lvmbench.runtime import configure_threads, resolve_device, rng_state, set_rng_state
from lvmbench.trust import check_recipe_imports
from lvmbench.train import distributed
from lvmbench.train.validate import batch_loss

Log = Callable[[str], None]


def task_recipe(recipe: Recipe, task: SuiteTask) -> tuple[Recipe, Prepared]:
    """The run's recipe with the task's fixed split and gates, and the task prepared under it."""
    r = copy.deepcopy(recipe)
    prep = prepare(load_store(task.path), r)
    return r, prep


def task_info(task: SuiteTask, recipe: Recipe) -> dict[str, Any]:
    """What ``suite list`` shows: size, test queries, pool, chance Hit@5, licence and source."""
    r, prep = task_recipe(recipe, task)
    pool = pool_for(prep, r, "test")
    queries = queries_for(prep, r, "test", pool)
    source = task.manifest.get("source") or {}
    return {
        "name": task.name, "path": str(task.path), "domain": task.manifest["suite"].get("domain"),
        "chains": prep.store.n_chains, "vectors": prep.store.n_vectors, "test_queries": len(queries),
        "pool": pool.size, "chance_hit@5": metrics.chance_hit_at_k(5, queries.candidates(r.eval.exclude_context,
                                                                                          pool.size)),
        "split": {k: getattr(r.data, k) for k in ("train_frac", "val_frac", "test_frac")},
        "license": task.manifest.get("license"),
        "source": {k: source.get(k) for k in ("package", "version", "distribution", "url") if k in source},
        "dataset_sha256": prep.store.sha256,
    }


def suite_list(recipe: Recipe, root: str | Path | None = None) -> list[dict[str, Any]]:
    return [task_info(t, recipe) for t in suite_tasks(root)]


def estimate(prep: Prepared, recipe: Recipe, device: torch.device, steps: int = 3) -> dict[str, Any] | None:
    """Seconds per epoch, timed on the micro-batches an epoch really draws, in the recipe's precision.

    With ``train.bucket_by_length`` a micro-batch is padded to its own
    samples' lengths, so its cost depends on that length: the shortest, the
    median and the longest micro-batch of epoch 1 (as the trainer cuts them,
    grouped or not) are timed (forward + loss + backward, under bf16 autocast
    when the recipe says so) after one untimed micro-batch that pays for
    allocations and thread start-up, and the epoch is the sum over its
    micro-batches of a line fitted through those times against the padded
    length.  The RNG state is restored afterwards, so a run with an estimate
    trains exactly as one without.
    """
    name = recipe.model.name
    if registry.get_entry(name).kind != "model":
        return None
    state = rng_state()
    try:
        model = build_model(name, prep, recipe).to(device).train()
        data = train_data(prep, recipe, device)
        padded, timed = _timed_batches(model, data, recipe, device, steps)
    finally:
        set_rng_state(state)
    fit = np.polyfit([p for p, _ in timed], [t for _, t in timed], 1) if len({p for p, _ in timed}) > 1 else None
    per_batch = np.polyval(fit, padded) if fit is not None else np.full(len(padded), np.mean([t for _, t in timed]))
    epoch = float(np.maximum(per_batch, 0).sum())
    return {"s_per_micro_batch": epoch / len(padded), "epoch_s": epoch, "max_s": epoch * recipe.train.max_epochs,
            "bucket_by_length": recipe.train.bucket_by_length, "bf16_autocast": recipe.train.bf16_autocast}


def _timed_batches(model: torch.nn.Module, data: Any, recipe: Recipe, device: torch.device,
                   steps: int) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """(each micro-batch's padded length in epoch 1, [(padded length, seconds)] of the timed ones)."""
    from lvmbench.data.samples import gather_batch
    from lvmbench.models.predict import predict
    from lvmbench.train.distributed import ShardedOrder

    cfg = recipe.train
    lengths = np.minimum(data.train.target - data.train.start, recipe.data.context_len)
    order = ShardedOrder(len(data.train), cfg.micro_batch, cfg.accum_steps, training_seed(recipe),
                         lengths=lengths if cfg.bucket_by_length else None)
    order.set_epoch(1)
    batches = [order.batch(i) for i in range(order.n_micro)]
    padded = np.array([int(lengths[b].max()) for b in batches])
    by_len = np.argsort(padded, kind="stable")
    chosen = list(dict.fromkeys(int(by_len[i]) for i in (0, len(by_len) // 2, len(by_len) - 1)))[: max(steps, 1)]
    picks = [chosen[len(chosen) // 2]] + chosen  # the first, untimed, pays for allocations
    timed: list[tuple[int, float]] = []
    for j, i in enumerate(picks):
        idx = batches[i]
        t0 = time.perf_counter()
        ctx, lens, target = gather_batch(data.unit, data.train.target[idx], data.train.start[idx],
                                         recipe.data.context_len)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16_autocast):
            pred = predict(model, ctx, lens)
        batch_loss(pred.float(), target, data.train.target[idx], data.train.start[idx], data, recipe)[0].backward()
        if j:  # the first one is untimed
            timed.append((int(padded[i]), time.perf_counter() - t0))
    return padded, timed


def _announce(plan: list[dict[str, Any]], folds: int, log: Log, seeds: list[int] | None = None) -> None:
    """Before any training: each task's size and the estimated cost, so hours are never a surprise."""
    runs = max(folds, 1) * len(seeds or [0])
    for p in plan:
        est = p["estimate"]
        how = ", ".join(x for x, on in (("bf16", est and est["bf16_autocast"]),
                                          ("grouped by length", est and est["bucket_by_length"])) if on) or "fp32"
        cost = ("no training (scored directly)" if est is None else
                f"~{duration(est['epoch_s'])} per epoch ({est['s_per_micro_batch']:.2f} s per micro-batch on average, "
                f"{how}; the shortest, median and longest micro-batch timed), "
                f"at most {duration(est['max_s'] * runs)} for {p['recipe'].train.max_epochs} epochs"
                + (f" x {folds} folds" if folds else "") + (f" x {len(seeds)} seeds" if seeds else ""))
        log(f"  {p['task'].name}: {p['info']['train']} training samples, {p['info']['test']} test queries; {cost}")
    total = sum(p["estimate"]["max_s"] for p in plan if p["estimate"]) * runs
    if total:
        log(f"estimated upper bound: {duration(total)} of training (early stopping usually ends sooner)")


def _prepare_tasks(recipe: Recipe, tasks: list[SuiteTask], folds: int, device: torch.device,
                   with_estimate: bool) -> list[dict[str, Any]]:
    plan = []
    for t in tasks:
        r, prep = task_recipe(cv.fold_recipes(recipe, folds)[0] if folds else recipe, t)
        for split in ("val", "test"):
            check_ks(prep, r, split)
        check_outside_models([r.model.name], prep, r)
        plan.append({"task": t, "recipe": r, "prep": prep,
                     "estimate": estimate(prep, r, device) if with_estimate else None,
                     "info": {"train": len(prep.samples["train"]), "test": len(prep.samples["test"])}})
    return plan


def _points(plan: list[dict[str, Any]], parent: Path, folds: int, seeds: list[int] | None) -> list[dict[str, Any]]:
    """Every job of the suite: task x fold x training seed, each into ``OUT/<task>/<model>-...-<hash>/``."""
    out = []
    for p in plan:
        task, recipe, sha = p["task"], p["recipe"], p["prep"].store.sha256
        if folds:
            points, what = cv.fold_points(recipe, folds, parent / task.name, sha, seeds, prefix=f"{task.name} ")
        else:
            points = [(task.name + (f" seed {seed}" if seeds is not None else ""), r,
                       job_dir(parent / task.name, slug(r.model.name, f"s{seed}"), r, sha))
                      for seed, r in seeded(recipe, seeds)]
            what = [{"seed": seed} for seed, _ in seeded(recipe, seeds)]
        out += [{"task": task.name, "point": pt, "store": p["prep"].store, **w} for pt, w in zip(points, what)]
    return out


def _task_row(p: dict[str, Any], jobs: list[dict[str, Any]], outcomes: list[Any], parent: Path,
              folds: int) -> tuple[dict[str, Any] | None, int]:
    """One task's suite row from its finished jobs (None when none finished) and its exit code."""
    task, recipe, ks = p["task"], p["recipe"], list(p["recipe"].eval.ks)
    mine = [(j, o) for j, o in zip(jobs, outcomes) if j["task"] == task.name]
    code = series_exit_code([o for _, o in mine])
    try:
        if folds:
            row = cv.cv_row(task.name, recipe.model.name, [o for _, o in mine], [j for j, _ in mine], ks)
        else:
            done = [(j, o) for j, o in mine if o.ok]
            if not done:
                return None, code
            arrays = {j["seed"]: load_run(o.run_dir).arrays for j, o in done}
            first = arrays[min(arrays)]
            base = {k[len("rank__"):]: v for k, v in first.items() if k.startswith("rank__")}
            row = suite_report.seeds_row(task.name, recipe.model.name, {s: a["rank"] for s, a in arrays.items()},
                                         base, ks)
    except UsageError:
        return None, code
    row["runs"] = [{"run_dir": str(Path(o.run_dir).relative_to(parent)), "status": "ok" if o.ok else "failed",
                    **{k: j[k] for k in ("fold", "seed") if k in j}} for j, o in mine]
    return row, code


def _run_all(plan: list[dict[str, Any]], parent: Path, folds: int, seeds: list[int] | None, device: torch.device,
             log: Log, resume: bool, spec: ExecutorSpec | None) -> list[tuple[dict[str, Any] | None, int]]:
    """Every task's jobs through one executor (tasks run side by side with --jobs N), then each task's row."""
    jobs = _points(plan, parent, folds, seeds)
    hint = series_resume_command("suite", parent)
    outcomes = run_series([j["point"] for j in jobs], [j["store"] for j in jobs], device, False, log, hint,
                          resume=resume, spec=spec)
    return [_task_row(p, jobs, outcomes, parent, folds) for p in plan]


def _finish(parent: Path, recipe: Recipe, plan: list[dict[str, Any]],
            results: list[tuple[dict[str, Any] | None, int]], folds: int, log: Log,
            seeds: list[int] | None = None) -> tuple[Path, dict[str, Any], int]:
    ks = list(recipe.eval.ks)
    rows = [r for r, _ in results]
    done = [r for r in rows if r is not None]
    summary = suite_report.summarize(done, ks)
    failed = [p["task"].name for p, r in zip(plan, rows) if r is None]
    summary.update({"schema_version": SCHEMA_VERSION, "created_utc": utc_now(), "model": recipe.model.name,
                    "folds": folds, "seeds": seeds, "tasks": [p["task"].name for p in plan], "failed": failed,
                    "estimates": {p["task"].name: p["estimate"] for p in plan}, "recipe": recipe.to_dict()})
    table = suite_report.render(summary, ks)
    base = suite_report.render_baselines(summary, ks)
    atomic_write_json(parent / "suite.json", summary)
    atomic_write_text(parent / "suite.md", f"# lvmbench suite: {recipe.model.name}\n\n```\n{table}\n```\n\n"
                      f"Baselines, Hit@5 % [95% CI]:\n\n```\n{base}\n```\n")
    from lvmbench.report.html.build import REPORT, write_beside

    write_beside("suite", [parent], parent / REPORT, log)
    workdir.mark_complete(parent)
    log("")
    log(f"suite of {recipe.model.name} ({recipe.name} recipe) on {len(done)} of {len(plan)} tasks; "
        f"{summary['paired_test']}")
    log(table)
    log("")
    log(base)
    log(f"artefacts in {parent} (suite.json, suite.md, one run directory per task)")
    return parent, summary, max((code for _, code in results), default=0)


@scoped
def suite_run(recipe: Recipe, tasks: list[str] | None, out: str | Path | None, overwrite: bool = False,
              folds: int = 0, log: Log = print, root: str | Path | None = None,
              dry_run: bool = False, seeds: list[int] | None = None,
              spec: ExecutorSpec | None = None) -> tuple[Path | None, dict[str, Any], int]:
    """Train and score ``recipe.model.name`` on every task (or ``tasks``); see the module docstring.

    ``dry_run``: prepare the tasks, print the estimated cost and stop; nothing is written.
    """
    distributed.refuse_series("suite run")
    name = recipe.model.name
    registry.get_entry(name)
    check_recipe_gate(recipe.gate)
    configure_threads(recipe)
    device = resolve_device(recipe.train.device)
    selected = suite_tasks(root, tasks)
    plan = _prepare_tasks(recipe, selected, folds, device, with_estimate=True)
    if dry_run:
        log(f"suite run of {name} ({recipe.name} recipe) on {len(plan)} tasks "
            "(dry run: nothing is trained or written):")
        _announce(plan, folds, log, seeds)
        return None, {"estimates": {p["task"].name: p["estimate"] for p in plan}}, 0
    parent = series_dir(out, f"{name}-suite", overwrite, kind="suite", log=log)
    atomic_write_json(parent / PLAN, {
        "schema_version": SCHEMA_VERSION, "kind": "suite", "created_utc": utc_now(), "folds": folds,
        "seeds": seeds,
        "root": str(root) if root is not None else None, "tasks": [t.name for t in selected],
        "datasets": {p["task"].name: p["prep"].store.sha256 for p in plan}, "recipe": recipe.to_dict(),
    })
    log(f"suite run of {name} ({recipe.name} recipe) on {len(plan)} tasks into {parent}:")
    _announce(plan, folds, log, seeds)
    results = _run_all(plan, parent, folds, seeds, device, log, False, spec)
    return _finish(parent, recipe, plan, results, folds, log, seeds)


@scoped
def resume_suite(parent: str | Path, log: Log = print,
                 models: list[str] | None = None) -> tuple[Path, dict[str, Any], int]:
    """Continue an interrupted ``suite run``: finished tasks and folds are kept, started ones resume."""
    parent = Path(parent)
    plan_path = parent / PLAN
    saved = read_json(plan_path, UsageError) if plan_path.is_file() else {}
    if saved.get("kind") != "suite":
        raise UsageError(f"{plan_path}: not a suite run directory")
    if (parent / "suite.json").is_file() and workdir.incomplete(parent) is None:
        raise UsageError(f"{parent}: this suite run already finished; nothing to resume")
    claim_existing(parent)
    recipe = recipe_from_dict(saved["recipe"], plan_path)
    outside.confirm([recipe.model.name], models, str(plan_path))
    check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(plan_path))
    configure_threads(recipe)
    device = resolve_device(recipe.train.device)
    plan = _prepare_tasks(recipe, suite_tasks(saved.get("root"), saved["tasks"]), saved["folds"], device,
                          with_estimate=False)
    for p in plan:
        if p["prep"].store.sha256 != saved["datasets"][p["task"].name]:
            raise UsageError(f"{p['task'].path}: dataset sha256 differs from the one {plan_path} records")
    log(f"resuming the suite run in {parent}")
    results = _run_all(plan, parent, saved["folds"], saved.get("seeds"), device, log, True, None)
    return _finish(parent, recipe, plan, results, saved["folds"], log, saved.get("seeds"))
