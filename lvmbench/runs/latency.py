"""``lvmbench latency RUN``: a saved run's inference and search latency, measured again on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from lvmbench import workdir
from lvmbench.config import recipe_from_dict
from lvmbench.result import Latency, Machine, Result, results_path
from lvmbench.data.prepare import prepare, resolve_data
from lvmbench.errors import DataError, UsageError
from lvmbench.evaluate import latency
from lvmbench.evaluate.evaluation import make_eval_split
from lvmbench.evaluate.inference import predict_queries
from lvmbench.models import registry
from lvmbench.models.build import build_model
from lvmbench.runs.rescore import checked_checkpoint, recorded_dataset
from lvmbench.runtime import configure_threads, resolve_device
from lvmbench.train.checkpoint import find_best
from lvmbench.trust import check_recipe_imports

Log = Callable[[str], None]


def _baseline_store(result: Result, run: Path, data: str | None, log: Log):
    """A baseline run's dataset: --data, else the path it records, checked by sha256."""
    path, sha = (result.dataset.path, result.dataset.sha256) if result.dataset is not None else (None, None)
    store = resolve_data(data if data is not None else path, log)
    if store.sha256 != sha:
        raise DataError(f"{store.path}: dataset sha256 {store.sha256[:12]}… is not the one {run} records "
                        f"({str(sha)[:12]}…); pass --data with that dataset")
    return store


def _model_and_data(run: Path, result: Result, data: str | None, model: str | None, log: Log):
    name = result.model_name
    best = find_best(run)
    if best is not None:
        ckpt = checked_checkpoint(best, model)
        recipe = recipe_from_dict(ckpt["recipe"], best)
        check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(best))
        return recipe, recorded_dataset(ckpt, best, data, log), ckpt
    if not isinstance(name, str) or registry.get_entry(name).kind != "baseline":
        raise UsageError(f"{run}: no best checkpoint (best_val_<metric>.pt) to measure (a run of predictions made "
                         "elsewhere has no model)")
    where = results_path(run)
    recipe = result.recipe.parsed(where) if result.recipe is not None else recipe_from_dict(None, where)
    check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(where))
    return recipe, _baseline_store(result, run, data, log), None


def measure_run(run_dir: str | Path, data: str | None = None, device: str | None = None, calls: int | None = None,
                seconds: float | None = None, as_json: bool = False, model: str | None = None,
                log: Log = print) -> dict[str, Any]:
    """Measure RUN's model and search latency here; print a table (or JSON) beside what the run recorded."""
    run = Path(run_dir)
    workdir.check_finished(run, "latency")
    result = Result.from_json(run)
    recipe, store, ckpt = _model_and_data(run, result, data, model, log)
    if device:
        recipe.train.device = device
    configure_threads(recipe)
    prep = prepare(store, recipe)
    s = make_eval_split(prep, recipe, resolve_device(recipe.train.device), "test")
    net = build_model(recipe.model.name, prep, recipe)
    if ckpt is not None:
        net.load_state_dict(ckpt["state_dict"])
    net.to(s.device)
    pred = predict_queries(recipe.model.name, net, s.unit_t, s.queries, recipe, "test").cpu().numpy()
    e = recipe.eval
    rec = latency.measure(net, s.unit_t, s.queries.samples, s.pool, pred, recipe.data.context_len,
                          (1, recipe.train.eval_batch), calls if calls is not None else max(e.latency_calls, 1),
                          e.latency_warmup, seconds if seconds is not None else e.latency_seconds)
    log(json.dumps(rec, indent=2) if as_json else render(Latency.from_json(rec), result.latency, recipe.model.name))
    return rec


def render(now: Latency, recorded: Latency | None, name: str) -> str:
    from tabulate import tabulate

    def rows(rec: Latency | None, when: str) -> list[list[Any]]:
        out = []
        for what, stats in (("model", rec.model if rec else None), ("search", rec.search if rec else None)):
            for r in (stats or {}).values():
                out.append([f"{name if what == 'model' else 'exact search'}", r.batch, when, r.calls,
                            f"{r.p50_ms:.3f}", f"{r.p95_ms:.3f}", f"{r.p99_ms:.3f}", f"{r.mean_ms:.3f}"])
        return out

    m = now.machine
    head = f"latency per query (ms), here: {m.device}, {m.torch_threads} threads, {m.gpu or m.cpu}"
    if recorded is not None:
        r = recorded.machine or Machine()
        head += f"; recorded: {r.device}, {r.torch_threads} threads, {r.gpu or r.cpu}"
    table = rows(now, "here") + rows(recorded, "recorded")
    return head + "\n" + tabulate(table, headers=["what", "batch", "measured", "calls", "p50", "p95", "p99", "mean"],
                                  disable_numparse=True)

