"""``lvmbench run`` and ``lvmbench eval``: the pipeline end to end.

data -> split -> samples -> model -> loss -> trainer -> predict -> index ->
metrics -> report/gate.  ``run`` trains then scores; ``eval`` scores a saved
checkpoint.  Both go through :func:`score_model`, which scores the model and
every baseline on the same queries and pool and checks that training-time
Hit@K equals FAISS retrieval.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np
import torch

from lvmbench import diagnostics
from lvmbench.config import Recipe
from lvmbench.data.store import ChainStore
from lvmbench.data.prepare import Prepared, prepare, resolve_data
from lvmbench.errors import CheckpointError, ConfigError, DataError, IntegrityError, UsageError
from lvmbench.evaluate import metrics
from lvmbench.evaluate.index import Bank, Pool, build_pool, load_bank, shard_rows
from lvmbench.evaluate.scoring import (
    Queries, Scored, check_consistency, make_queries, predict_all, score_predictions, torch_ranks,
)
from lvmbench.io import atomic_save_npz, atomic_write_json, atomic_write_text, read_json, sha256_file
from lvmbench.models import registry
from lvmbench.report import SCHEMA_VERSION, env_info, gate_line, gate_verdict, render_table, utc_now
from lvmbench.train import distributed
from lvmbench.train.checkpoint import load_checkpoint
from lvmbench.train.loop import (
    BEST, LAST, Interrupted, TrainData, resolve_device, resume_command, seed_everything, train,
)

Log = Callable[[str], None]


def configure_threads(recipe: Recipe) -> None:
    if recipe.train.threads > 0:
        torch.set_num_threads(recipe.train.threads)
        faiss.omp_set_num_threads(recipe.train.threads)
    if recipe.train.deterministic:
        torch.use_deterministic_algorithms(True)


def make_run_dir(out: str | Path | None, model_name: str, overwrite: bool) -> Path:
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{model_name}-{stamp}"
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out}: run directory exists and is not empty (pass --overwrite to replace its files)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def pool_for(prep: Prepared, recipe: Recipe, split: str, bank: Bank | None = None, shard_size: int = 0) -> Pool:
    """The contract's pool: the scored split's chains, or every chain with pool='full'; plus a bank's vectors."""
    if recipe.eval.pool == "full":
        chains = np.arange(prep.store.n_chains)
        return build_pool(prep.unit, prep.store.offsets, chains, "full", bank, shard_size)
    return build_pool(prep.unit, prep.store.offsets, prep.split.chains[split], split, bank, shard_size)


def check_ks(prep: Prepared, recipe: Recipe, split: str, extra: int = 0) -> None:
    """Refuse a K larger than the pool before anything is trained or written (Hit@K would be trivially 1)."""
    lengths = np.diff(prep.store.offsets)
    chains = np.arange(prep.store.n_chains) if recipe.eval.pool == "full" else prep.split.chains[split]
    size = int(lengths[chains].sum()) + extra
    too_big = [k for k in recipe.eval.ks if k > size]
    if too_big:
        raise ConfigError(
            f"{prep.store.path}: eval.ks {too_big} larger than the {split} pool of {size} candidates "
            f"(pool '{recipe.eval.pool}'); choose K <= {size}"
        )


def exclusion_len(recipe: Recipe) -> int:
    """How many vectors before each target leave the pool with ``eval.exclude_context``.

    The query's own context (``data.context_len``), or the longer window
    ``eval.exclude_len`` when set: ``lvmbench sweep`` sets it to its longest
    context so every point of the sweep ranks each target among the same
    candidates.
    """
    return max(recipe.data.context_len, recipe.eval.exclude_len)


def recipe_from_dict(table: Any, where: str | Path) -> Recipe:
    """A recipe stored as data (recipe.json, a checkpoint's 'recipe'), checked like a TOML recipe."""
    from lvmbench.config import _flatten, _set_path, validate

    if not isinstance(table, dict):
        raise ConfigError(f"{where}: the stored recipe is not a table")
    recipe = Recipe()
    try:
        for key, value in _flatten(table):
            _set_path(recipe, key, value)
        validate(recipe)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return recipe


def build_model(name: str, prep: Prepared, recipe: Recipe) -> torch.nn.Module:
    train_rows = prep.samples["train"].target
    # (x_{t-1}, x_t) training pairs: a sample's target always has its previous row in the same chain
    ctx = registry.Context(train_mean=prep.unit[train_rows].mean(axis=0), seed=recipe.seed,
                           unit=prep.unit, train_pairs=(train_rows - 1, train_rows))
    return registry.build(name, prep.store.dim, recipe.model, ctx)


def _without_exclusion(q: Queries) -> Queries:
    return Queries(q.samples, q.target_pos, q.excl_lo, q.excl_lo.copy(), q.context_rows)


def score_one(
    name: str, model: torch.nn.Module, prep: Prepared, recipe: Recipe, unit_t: torch.Tensor,
    pool: Pool, queries: Queries,
) -> tuple[Scored, torch.Tensor]:
    e = recipe.eval
    pred_t = predict_all(model, unit_t, queries.samples, recipe.data.context_len, recipe.train.eval_batch)
    pred = pred_t.cpu().numpy().astype(np.float32)
    q = queries if e.exclude_context else _without_exclusion(queries)
    # score_predictions also fills metrics_with_context from the unfiltered ranks
    scored = score_predictions(name, pred, pool, q, prep.unit, e.ks, e.search_depth, e.bootstrap, recipe.seed)
    return scored, pred_t


def consistency(
    pred_t: torch.Tensor, pool: Pool, queries: Queries, scored: Scored, recipe: Recipe, device: torch.device
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The training loop's ranks (torch) against what FAISS returned, query by query."""
    import warnings

    with warnings.catch_warnings():  # a memory-mapped bank is read-only; torch only reads it
        warnings.filterwarnings("ignore", message=".*not writable.*")
        pool_t = [(start, torch.from_numpy(shard).to(device)) for start, shard in pool.blocks()]
    t_rank, t_gap = torch_ranks(pred_t.to(device), pool_t, queries, exclude=recipe.eval.exclude_context)
    report = check_consistency(t_rank, t_gap, scored.faiss.retrieved, recipe.eval.ks, recipe.eval.tie_tol)
    report["rank_equal"] = int((t_rank == (scored.faiss.rank if recipe.eval.exclude_context else scored.faiss.rank_with_context)).sum())
    return report, t_rank, t_gap


def score_model(
    model_name: str,
    model: torch.nn.Module,
    prep: Prepared,
    recipe: Recipe,
    device: torch.device,
    split: str = "test",
    log: Log = print,
    bank: Bank | None = None,
    shard_size: int = 0,
    ann: str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score a model and every baseline on ``split``; return results and per-query arrays.

    ``bank`` adds an external bank's vectors to the pool as extra candidates;
    ``shard_size`` searches the pool in shards (same ranks as one flat index);
    ``ann`` ('ivfpq') also reports a compressed index's recall against the
    exact search, which stays the headline.
    """
    t0 = time.perf_counter()
    unit_t = torch.from_numpy(prep.unit).to(device)
    pool = pool_for(prep, recipe, split, bank, shard_size)
    queries = make_queries(prep.samples[split], pool, exclusion_len(recipe))
    samples = queries.samples
    chain_end = prep.store.offsets[samples.chain + 1]

    def direction_of(pred: np.ndarray) -> dict[str, Any]:
        return diagnostics.direction(pred, prep.unit, samples.target, samples.start, chain_end)

    log(f"scoring {model_name} and {len(recipe.eval.baselines)} baselines on {len(queries)} {split} queries "
        f"against a pool of {pool.size:,} ({recipe.eval.pool}"
        + (f" + bank of {bank.size:,}" if bank is not None else "")
        + (f"; {len(pool.shards)} shards" if len(pool.shards) > 1 else "") + ")")
    main, pred_t = score_one(model_name, model, prep, recipe, unit_t, pool, queries)
    cons, t_rank, t_gap = consistency(pred_t, pool, queries, main, recipe, device)
    entry = registry.REGISTRY.get(model_name)
    direction = {model_name: {"kind": entry.kind if entry else "model", **direction_of(main.pred)}}
    arrays: dict[str, np.ndarray] = {
        "queries": main.pred,
        "target_ids": queries.samples.target,
        "pool_ids": pool.ids,
        "context_ids": queries.context_rows,
        "excluded": np.array(recipe.eval.exclude_context),
        "rank": main.faiss.rank,
        "rank_with_context": main.faiss.rank_with_context,
        "retrieved": main.faiss.retrieved,
        "torch_rank": t_rank,
        "torch_gap": t_gap,
    }
    baselines: dict[str, Any] = {}
    hits5: dict[str, np.ndarray] = {}
    for b in recipe.eval.baselines:
        bmodel = build_model(b, prep, recipe).to(device)
        scored, _ = score_one(b, bmodel, prep, recipe, unit_t, pool, queries)
        baselines[b] = scored.metrics
        arrays[f"rank__{b}"] = scored.faiss.rank
        hits5[b] = (scored.faiss.rank if recipe.eval.exclude_context else scored.faiss.rank_with_context) <= 5
        direction.setdefault(b, {"kind": "baseline", **direction_of(scored.pred)})
    direction.update(diagnostics.references(prep.unit, samples.target, samples.start, chain_end,
                                            copy_last="copy_last" not in direction))
    headline_rank = main.faiss.rank if recipe.eval.exclude_context else main.faiss.rank_with_context
    results: dict[str, Any] = {
        "pool": {
            "split": pool.split,
            "size": pool.size,
            "exclude_context": recipe.eval.exclude_context,
            "exclude_len": exclusion_len(recipe) if recipe.eval.exclude_context else 0,
            "sha256": pool.sha256(),
            "target_in_pool": True,
            "search_depth": main.faiss.depth,
            "shards": len(pool.shards),
            "shard_size": shard_rows(shard_size),
            "bank": bank.info() if bank is not None else None,
            "ties": "rank = 1 + #(score > target score); equal scores never count against the target",
            "duplicates": "exact-duplicate vectors stay in the pool as separate candidates",
        },
        "metrics": main.metrics,
        "metrics_with_context": main.metrics_with_context,
        "baselines": baselines,
        "consistency": cons,
        "diagnostics": diagnostics.summary(direction),
    }
    if baselines:
        best = max(baselines, key=lambda b: baselines[b]["hit@5"])
        results["best_baseline"] = {"name": best, "hit@5": baselines[best]["hit@5"]}
        lift = main.metrics["hit@5"] - baselines[best]["hit@5"]
        m_lo, m_hi = main.metrics["ci"]["hit@5"]
        b_lo, b_hi = baselines[best]["ci"]["hit@5"]
        results["lift"] = {
            "over": best,
            "hit@5": lift,
            "mrr": main.metrics["mrr"] - baselines[best]["mrr"],
            "mcnemar_p_hit@5": metrics.mcnemar_exact(headline_rank <= 5, hits5[best]),
            # Wilson 95 % intervals of Hit@5 that do not overlap: the lift is outside the noise
            "intervals_separate": bool(m_lo > b_hi or m_hi < b_lo),
            "direction": "better" if m_lo > b_hi else "worse" if m_hi < b_lo else "overlapping",
        }
    if ann is not None:
        from lvmbench.evaluate.ann import ann_report

        q = queries if recipe.eval.exclude_context else _without_exclusion(queries)
        results["ann"] = ann_report(ann, pool, q, main.pred, main.faiss, recipe.eval.ks, recipe.seed, log)
    results["timings"] = {"score_s": time.perf_counter() - t0}
    return results, arrays


def dataset_info(prep: Prepared) -> dict[str, Any]:
    m = prep.store.manifest
    return {
        "name": prep.store.name,
        "path": str(prep.store.path),
        "sha256": prep.store.sha256,
        "n_chains": prep.store.n_chains,
        "n_vectors": prep.store.n_vectors,
        "dim": prep.store.dim,
        "encoder": m.get("encoder"),
        "license": m.get("license"),
        "source": m.get("source"),
    }


def val_consistency(
    model: torch.nn.Module, prep: Prepared, recipe: Recipe, device: torch.device, recorded_hit5: float | None
) -> dict[str, Any]:
    """Recorded in-loop val Hit@5 of the best epoch versus FAISS retrieval on the val pool."""
    unit_t = torch.from_numpy(prep.unit).to(device)
    pool = pool_for(prep, recipe, "val")
    queries = make_queries(prep.samples["val"], pool, exclusion_len(recipe))
    scored, pred_t = score_one("val", model, prep, recipe, unit_t, pool, queries)
    report, _, _ = consistency(pred_t, pool, queries, scored, recipe, device)
    report["recorded_val_hit@5"] = recorded_hit5
    report["faiss_val_hit@5"] = scored.metrics["hit@5"]
    return report


def finish(
    run_dir: Path, results: dict[str, Any], arrays: dict[str, np.ndarray], recipe: Recipe, log: Log
) -> int:
    g = recipe.gate
    results["gate"] = gate_verdict(results, g.metric, g.min, g.on)
    atomic_save_npz(run_dir / "predictions.npz", **arrays)
    atomic_write_json(run_dir / "results.json", results)
    table = render_table(results)
    atomic_write_text(run_dir / "report.md", "# lvmbench report\n\n```\n" + render_table(results) + "\n```\n")
    log(table)
    log(f"artefacts in {run_dir}")
    if not results["consistency"]["ok"]:
        raise IntegrityError(
            f"{run_dir}: training-time Hit@K and FAISS retrieval disagree on "
            f"{results['consistency']['n_mismatch']} queries beyond float near-ties (see results.json 'consistency')"
        )
    val = results["consistency"].get("val")
    if val is not None and not val["ok"]:
        raise IntegrityError(f"{run_dir}: val Hit@K from the training loop disagrees with FAISS retrieval")
    return 0


def _prepare_run(
    names: list[str], recipe: Recipe, data: str | None, log: Log
) -> tuple[ChainStore, Prepared, torch.device]:
    """What every training run checks and loads before it writes anything."""
    for name in names:
        registry.get_entry(name)  # unknown model: refused before any work
    configure_threads(recipe)
    store = resolve_data(data, log)
    prep = prepare(store, recipe)
    for split in ("val", "test"):
        check_ks(prep, recipe, split)
    # under torchrun: joins the process group (every rank got here with the same data) and
    # picks this rank's device; otherwise just --device
    return store, prep, distributed.init_from_env(recipe.train.device)[1]


def run(
    recipe: Recipe, data: str | None, out: str | Path | None, overwrite: bool = False, log: Log = print
) -> tuple[Path, dict[str, Any]]:
    """Train ``recipe.model.name`` through the recipe and score it on the test split.

    Under torchrun (WORLD_SIZE > 1) every rank trains its share with
    DistributedDataParallel; rank 0 alone creates the run directory, logs,
    writes and scores, and the other ranks return ``(run_dir, {})`` once
    training is done (:mod:`lvmbench.train.distributed`).
    """
    t_start = time.perf_counter()
    name = recipe.model.name
    dist = distributed.from_env()
    if dist.enabled:  # checks every rank makes alike, before any rank waits for another
        if registry.get_entry(name).kind != "model":
            raise UsageError(f"'{name}' is a baseline: nothing is trained, so there is nothing to distribute; "
                             "run it without torchrun")
        distributed.accum_per_rank(recipe.train.accum_steps, dist.world_size)
        log = distributed.rank_log(log, dist)
    store, prep, device = _prepare_run([name], recipe, data, log)
    run_dir = distributed.on_main(lambda: make_run_dir(out, name, overwrite))
    return start_run(recipe, prep, run_dir, device, log, t_start)


def start_run(
    recipe: Recipe, prep: Prepared, run_dir: Path, device: torch.device, log: Log, t_start: float | None = None
) -> tuple[Path, dict[str, Any]]:
    """Write the run's recipe, split and data report into ``run_dir``, then train and score."""
    t_start = time.perf_counter() if t_start is None else t_start
    if distributed.current().is_main:
        atomic_write_json(run_dir / "recipe.json", recipe.to_dict())
        atomic_write_json(run_dir / "split.json", prep.report["split"])
        atomic_write_json(run_dir / "data_report.json", {k: v for k, v in prep.report.items() if k != "split"})
    return _train_and_score(recipe, prep, run_dir, device, log, t_start)


# ---------------------------------------------------------------------------
# several runs on one prepared dataset: `run --model a,b,c` and `sweep`


@dataclass
class Outcome:
    """One run of a series: its results, or why it failed."""

    label: str
    run_dir: Path
    results: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> dict[str, Any]:
        m = (self.results or {}).get("metrics") or {}
        return {
            "label": self.label,
            "run_dir": str(self.run_dir),
            "status": "ok" if self.ok else "failed",
            "error": self.error,
            "exit_code": self.exit_code,
            **{k: m.get(k) for k in ("hit@1", "hit@5", "hit@10", "mrr")},
        }


def parse_models(spec: str) -> list[str]:
    """``a,b,c`` or ``all`` (every trainable model in the registry); each name checked, no repeats."""
    if spec.strip() == "all":
        return registry.trained_models()
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise UsageError(f"--model {spec!r}: no model names")
    for n in names:
        registry.get_entry(n)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"--model lists {', '.join(dup)} more than once")
    return names


def is_multi(spec: str | None) -> bool:
    return spec is not None and ("," in spec or spec.strip() == "all")


def series_dir(out: str | Path | None, suffix: str, overwrite: bool) -> Path:
    """The parent directory of a series (default runs/<timestamp>-<suffix>); refused if non-empty."""
    if out is None:
        out = Path("runs") / f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{suffix}"
    return make_run_dir(out, suffix, overwrite)


def run_series(
    points: list[tuple[str, Recipe, Path]], prep: Prepared, device: torch.device, overwrite: bool, log: Log = print,
) -> list[Outcome]:
    """Train and score each (label, recipe, run_dir) on the same prepared data, one after another.

    A run that fails (bad input, an integrity failure, or an unexpected error
    such as running out of memory) is reported and recorded, and the series
    goes on with the next one: one broken model must not cost the others'
    hours.  An unexpected error's traceback is written to ``run_dir/error.txt``.
    Ctrl-C stops the whole series (exit 130) and names the runs not started.
    """
    import traceback

    from lvmbench.errors import LvmbenchError

    distributed.refuse_series("several runs in one launch")
    outcomes: list[Outcome] = []
    for i, (label, recipe, run_dir) in enumerate(points, 1):
        log(f"=== [{i}/{len(points)}] {label} -> {run_dir}")
        try:
            run_dir = make_run_dir(run_dir, recipe.model.name, overwrite)
            _, results = start_run(recipe, prep, run_dir, device, log)
            outcomes.append(Outcome(label, run_dir, results))
        except (KeyboardInterrupt, Interrupted) as exc:
            rest = [p[0] for p in points[i:]]
            note = f"; not started: {', '.join(rest)}" if rest else ""
            raise Interrupted(f"{exc or 'interrupted'}{note}") from None
        except LvmbenchError as exc:
            log(f"FAILED {label}: {exc} (exit code {exc.exit_code}); continuing with the next run")
            outcomes.append(Outcome(label, run_dir, None, str(exc), exc.exit_code))
        except Exception as exc:  # noqa: BLE001 - one model's crash must not end the series
            tb = traceback.format_exc()
            try:
                atomic_write_text(Path(run_dir) / "error.txt", tb)
            except OSError:
                pass
            msg = f"unexpected {type(exc).__name__}: {exc}"
            log(f"FAILED {label}: {msg} (traceback in {Path(run_dir) / 'error.txt'}); continuing with the next run")
            outcomes.append(Outcome(label, run_dir, None, msg, 1))
    return outcomes


def series_exit_code(outcomes: list[Outcome]) -> int:
    """0 when every run finished; otherwise the highest exit code among the failures."""
    return max((o.exit_code for o in outcomes if not o.ok), default=0)


def run_many(
    recipe: Recipe, models: list[str], data: str | None, out: str | Path | None, overwrite: bool = False,
    log: Log = print,
) -> tuple[Path, list[Outcome]]:
    """Train and score several models, each into ``OUT/<model>/``, on the same data, queries and pool.

    Ends with the ``compare`` leaderboard of the models that finished
    (``OUT/leaderboard.md``, ``OUT/multi.json``, ``OUT/leaderboard.png``).
    """
    import copy

    from lvmbench import compare as cmp
    from lvmbench import plots

    distributed.refuse_series("run --model with several models")
    store, prep, device = _prepare_run(models, recipe, data, log)
    parent = series_dir(out, "multi", overwrite)
    points = []
    for name in models:
        r = copy.deepcopy(recipe)
        r.model.name = name
        points.append((name, r, parent / name))
    log(f"running {len(models)} models into {parent}: {', '.join(models)}")
    outcomes = run_series(points, prep, device, overwrite, log)
    done = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": utc_now(),
        "models": models,
        "runs": [o.summary() for o in outcomes],
        "failed": [o.label for o in failed],
        "leaderboard": None,
    }
    if done:
        try:
            runs = [cmp.load_run(o.run_dir) for o in done]
            cmp.check_comparable(runs)
            board = cmp.leaderboard(runs, "hit@5")
            table = cmp.render(board, "table")
            summary["leaderboard"] = board
            atomic_write_text(parent / "leaderboard.md", "# lvmbench leaderboard\n\n```\n" + table + "\n```\n")
            log("")
            log(f"leaderboard ({len(done)} of {len(models)} models; `lvmbench compare {' '.join(str(o.run_dir) for o in done)}`)")
            log(table)
            plots.plot_leaderboard(board, parent / "leaderboard.png", log=log)
        except UsageError as exc:
            log(f"no leaderboard: {exc}")
    atomic_write_json(parent / "multi.json", summary)
    for o in failed:
        log(f"FAILED {o.label}: {o.error}")
    log(f"{len(done)}/{len(models)} models finished; artefacts in {parent}")
    return parent, outcomes


def resume_run(run_dir: str | Path, data: str | None = None, log: Log = print) -> tuple[Path, dict[str, Any]]:
    """Continue an interrupted ``run`` from ``RUN_DIR/last.pt`` with the recipe in ``RUN_DIR/recipe.json``.

    The dataset defaults to the one the checkpoint records and must have the
    checkpoint's sha256.  Training restarts after the last completed epoch with
    the model, optimiser, scheduler, early-stopping and RNG state of that
    epoch, so the result equals an uninterrupted run's.
    """
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    dist = distributed.from_env()
    log = distributed.rank_log(log, dist)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: run directory not found")
    if (run_dir / "results.json").is_file():
        raise UsageError(f"{run_dir}: this run already finished (results.json exists); nothing to resume")
    rpath = run_dir / "recipe.json"
    if not rpath.is_file():
        raise UsageError(f"{rpath}: not found; {run_dir} is not an lvmbench run directory")
    table = read_json(rpath, ConfigError)
    recipe = recipe_from_dict(table, rpath)
    name = recipe.model.name
    if registry.get_entry(name).kind != "model":
        raise UsageError(f"{run_dir}: '{name}' is a baseline; nothing was trained, so there is nothing to resume")
    # every rank reads the same run directory (on several machines it must be shared) and checks alike;
    # the data order depends on (seed, epoch) only, so any world size dividing accum_steps resumes exactly
    distributed.accum_per_rank(recipe.train.accum_steps, dist.world_size,
                               hint=f"resume with a number of processes that divides {recipe.train.accum_steps}")
    lpath = run_dir / LAST
    ckpt = load_checkpoint(lpath)
    # compared through recipe_from_dict so a checkpoint written before a recipe field existed
    # (stored without it, read back with its default) still matches its own recipe.json
    try:
        same_recipe = recipe_from_dict(ckpt["recipe"], lpath).to_dict() == recipe.to_dict()
    except ConfigError:
        same_recipe = False
    if ckpt["model"] != name or not same_recipe:
        raise CheckpointError(f"{lpath}: its model or recipe differs from {rpath}; refusing to mix two runs")
    configure_threads(recipe)
    store = resolve_data(data if data is not None else ckpt.get("dataset_path"), log)
    if ckpt.get("dataset_sha256") != store.sha256:
        raise DataError(
            f"{store.path}: dataset sha256 {store.sha256[:12]}… differs from the one {lpath} was trained on "
            f"({str(ckpt.get('dataset_sha256'))[:12]}…); resume needs the same dataset"
        )
    prep = prepare(store, recipe)
    if ckpt.get("split_sha256") != prep.report["split"]["sha256"]:
        raise DataError(f"{store.path}: the split differs from the one recorded in {lpath}; cannot resume")
    device = distributed.init_from_env(recipe.train.device)[1]
    log(f"resuming {run_dir} from {lpath} (epoch {ckpt.get('epoch')})")
    return _train_and_score(recipe, prep, run_dir, device, log, t_start, resume=ckpt)


def _train_and_score(
    recipe: Recipe, prep: Prepared, run_dir: Path, device: torch.device, log: Log, t_start: float,
    resume: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    name = recipe.model.name
    entry = registry.get_entry(name)
    store = prep.store
    g = prep.report["gates"]
    log(
        f"data {store.name}: {g['chains_in']} chains -> {g['chains_kept']} after gates "
        f"(length {g['removed_length']}, coherence {g['removed_coherence']} removed); "
        f"split {', '.join(f'{k} {len(v)}' for k, v in prep.split.chains.items())} chains; "
        f"samples {', '.join(f'{k} {v}' for k, v in prep.report['samples'].items())}; leakage check OK"
    )
    t_data = time.perf_counter() - t_start
    seed_everything(recipe.seed)
    model = build_model(name, prep, recipe)
    history: dict[str, Any] | None = None
    t_train = 0.0
    try:
        if entry.kind == "model":
            unit_t = torch.from_numpy(prep.unit).to(device)
            val_pool = pool_for(prep, recipe, "val")
            val_queries = make_queries(prep.samples["val"], val_pool, exclusion_len(recipe))
            tdata = TrainData(unit_t, prep.samples["train"], prep.samples["val"], val_queries,
                              torch.from_numpy(val_pool.vectors).to(device))
            t0 = time.perf_counter()
            extra = {"dataset_sha256": store.sha256, "dataset_path": str(store.path),
                     "split_sha256": prep.report["split"]["sha256"], "model_config": dict(vars(recipe.model))}
            dist = distributed.current()
            try:
                history = train(model, tdata, recipe, run_dir, name, extra_ckpt=extra, log=log, resume=resume, dist=dist)
            except BaseException:
                if dist.enabled:
                    distributed.shutdown(barrier=False)
                raise
            if dist.enabled:  # no collective after training: rank 0 scores alone, the others are done
                distributed.shutdown()
            if not dist.is_main:
                return run_dir, {}
            t_train = time.perf_counter() - t0
            ckpt = load_checkpoint(run_dir / BEST)
            model.load_state_dict(ckpt["state_dict"])
            log(f"best epoch {history['best_epoch']} (val Hit@5 {100 * history['best_hit5']:.1f}%); {history['stop_reason']}")
            from lvmbench import plots

            plots.plot_curves(history, run_dir / plots.CURVES, log=log)
        model.to(device)
        results, arrays = score_model(name, model, prep, recipe, device, "test", log)
        if history is not None:
            results["consistency"]["val"] = val_consistency(model, prep, recipe, device, history["best_hit5"])
    except KeyboardInterrupt:
        if history is None:
            raise
        # training is complete and in last.pt: a resume goes straight to scoring
        raise Interrupted(f"interrupted while scoring; resume with: {resume_command(run_dir)}") from None
    results = assemble(results, name, model, prep, recipe, run_dir if history else None, history, device)
    results["timings"].update({"data_s": t_data, "train_s": t_train, "total_s": time.perf_counter() - t_start})
    if history is not None and history.get("resumed"):
        results["timings"]["resumed_after_epochs"] = [r["after_epoch"] for r in history["resumed"]]
    finish(run_dir, results, arrays, recipe, log)
    log(f"wall time {results['timings']['total_s']:.1f}s (train {t_train:.1f}s)")
    return run_dir, results


def assemble(
    scored: dict[str, Any], name: str, model: torch.nn.Module, prep: Prepared, recipe: Recipe,
    run_dir: Path | None, history: dict[str, Any] | None, device: torch.device,
) -> dict[str, Any]:
    ckpt_path = run_dir / BEST if run_dir else None
    params = registry.n_params(model)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "lvmbench", "version": env_info()["lvmbench"]},
        "created_utc": utc_now(),
        "model": {
            "name": name,
            "kind": registry.get_entry(name).kind,
            "params": params,
            "checkpoint": str(ckpt_path) if ckpt_path else None,
            "checkpoint_sha256": sha256_file(ckpt_path) if ckpt_path else None,
            "best_epoch": history["best_epoch"] if history else None,
            "stopped_epoch": history["stopped_epoch"] if history else None,
            "config": dict(vars(recipe.model)),
        },
        "params": params,
        "seed": recipe.seed,
        "recipe": recipe.to_dict(),
        "dataset": dataset_info(prep),
        "split": {
            "seed": prep.split.seed,
            "sizes": prep.report["split"]["sizes"],
            "samples": prep.report["samples"],
            "sha256": prep.report["split"]["sha256"],
        },
        "gates": prep.report["gates"],
        "leakage": {k: v for k, v in prep.leakage.items()},
        **scored,
        "env": env_info(str(device)),
    }


def evaluate_checkpoint(
    checkpoint: str | Path, data: str | None, recipe_overrides: list[str], out: str | Path | None,
    split: str, overwrite: bool, log: Log = print,
    bank: str | Path | None = None, shard_size: int = 0, ann: str | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Score a saved checkpoint (a file, or a run directory holding best_val_hit5.pt).

    ``bank``: an ``.npy`` of extra candidate vectors (or a chain store), added
    to the pool; see :func:`score_model` for ``shard_size`` and ``ann``.
    """
    from lvmbench.config import apply_overrides

    t0 = time.perf_counter()
    path = Path(checkpoint)
    if path.is_dir():
        path = path / BEST
    ckpt = load_checkpoint(path)
    recipe = apply_overrides(recipe_from_dict(ckpt["recipe"], path), recipe_overrides)
    if not isinstance(ckpt["model"], str) or ckpt["model"] not in registry.REGISTRY:
        raise CheckpointError(f"{path}: unknown model {ckpt['model']!r} in checkpoint")
    if not isinstance(ckpt["dim"], int) or isinstance(ckpt["dim"], bool):
        raise CheckpointError(f"{path}: checkpoint dim {ckpt['dim']!r} is not an integer")
    configure_threads(recipe)
    store = resolve_data(data, log)
    if store.dim != ckpt["dim"]:
        raise CheckpointError(f"{path}: checkpoint expects dim {ckpt['dim']} but dataset {store.path} has dim {store.dim}")
    if ckpt.get("dataset_sha256") and ckpt["dataset_sha256"] != store.sha256:
        log(f"warning: {store.path} is not the dataset this checkpoint was trained on (sha256 differs)")
    if shard_size < 0:
        raise UsageError(f"--shard-size {shard_size}: must be >= 0 (0 = no sharding)")
    bank_ = load_bank(bank, store.dim, log) if bank is not None else None
    prep = prepare(store, recipe)
    check_ks(prep, recipe, split, bank_.size if bank_ else 0)
    device = resolve_device(recipe.train.device)
    model = build_model(ckpt["model"], prep, recipe)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit model '{ckpt['model']}' ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    model.to(device)
    run_dir = make_run_dir(out if out else path.parent / f"eval-{split}", ckpt["model"], overwrite)
    results, arrays = score_model(ckpt["model"], model, prep, recipe, device, split, log, bank_, shard_size, ann)
    results = assemble(results, ckpt["model"], model, prep, recipe, None, None, device)
    results["model"]["checkpoint"] = str(path)
    results["model"]["checkpoint_sha256"] = sha256_file(path)
    results["model"]["best_epoch"] = ckpt.get("epoch")
    results["timings"]["total_s"] = time.perf_counter() - t0
    finish(run_dir, results, arrays, recipe, log)
    return run_dir, results


__all__ = ["run", "resume_run", "evaluate_checkpoint", "score_model", "gate_line"]
