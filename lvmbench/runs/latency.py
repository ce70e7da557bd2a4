"""``lvmbench latency RUN``: a saved run's inference and search latency, measured again on this machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from lvmbench import workdir
from lvmbench.config import recipe_from_dict
from lvmbench.data.prepare import prepare, resolve_data
from lvmbench.errors import DataError, UsageError
from lvmbench.evaluate import latency
from lvmbench.evaluate.score import scoring
from lvmbench.evaluate.scoring import predict_queries
from lvmbench.models import registry
from lvmbench.models.build import build_model
from lvmbench.report.results import load_results
from lvmbench.runs.rescore import checked_checkpoint, recorded_dataset
from lvmbench.runtime import configure_threads, resolve_device
from lvmbench.train.checkpoint import BEST
from lvmbench.trust import check_recipe_imports

Log = Callable[[str], None]


def _baseline_store(results: dict[str, Any], run: Path, data: str | None, log: Log):
    """A baseline run's dataset: --data, else the path it records, checked by sha256."""
    ds = results.get("dataset") or {}
    store = resolve_data(data if data is not None else ds.get("path"), log)
    if store.sha256 != ds.get("sha256"):
        raise DataError(f"{store.path}: dataset sha256 {store.sha256[:12]}… is not the one {run} records "
                        f"({str(ds.get('sha256'))[:12]}…); pass --data with that dataset")
    return store


def _model_and_data(run: Path, results: dict[str, Any], data: str | None, model: str | None, log: Log):
    name = (results.get("model") or {}).get("name")
    if (run / BEST).is_file():
        ckpt = checked_checkpoint(run / BEST, model)
        recipe = recipe_from_dict(ckpt["recipe"], run / BEST)
        check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(run / BEST))
        return recipe, recorded_dataset(ckpt, run / BEST, data, log), ckpt
    if not isinstance(name, str) or registry.get_entry(name).kind != "baseline":
        raise UsageError(f"{run}: no {BEST} to measure (a run of predictions made elsewhere has no model)")
    recipe = recipe_from_dict(results.get("recipe"), run / "results.json")
    check_recipe_imports(recipe.model.name, recipe.eval.baselines, str(run / "results.json"))
    return recipe, _baseline_store(results, run, data, log), None


def measure_run(run_dir: str | Path, data: str | None = None, device: str | None = None, calls: int | None = None,
                seconds: float | None = None, as_json: bool = False, model: str | None = None,
                log: Log = print) -> dict[str, Any]:
    """Measure RUN's model and search latency here; print a table (or JSON) beside what the run recorded."""
    run = Path(run_dir)
    workdir.check_finished(run, "latency")
    results = load_results(run)
    recipe, store, ckpt = _model_and_data(run, results, data, model, log)
    if device:
        recipe.train.device = device
    configure_threads(recipe)
    prep = prepare(store, recipe)
    s = scoring(prep, recipe, resolve_device(recipe.train.device), "test")
    net = build_model(recipe.model.name, prep, recipe)
    if ckpt is not None:
        net.load_state_dict(ckpt["state_dict"])
    net.to(s.device)
    pred = predict_queries(recipe.model.name, net, s.unit_t, s.queries, recipe, "test").cpu().numpy()
    e = recipe.eval
    rec = latency.measure(net, s.unit_t, s.queries.samples, s.pool, pred, recipe.data.context_len,
                          (1, recipe.train.eval_batch), calls if calls is not None else max(e.latency_calls, 1),
                          e.latency_warmup, seconds if seconds is not None else e.latency_seconds)
    log(json.dumps(rec, indent=2) if as_json else render(rec, results.get("latency"), recipe.model.name))
    return rec


def render(now: dict[str, Any], recorded: dict[str, Any] | None, name: str) -> str:
    from tabulate import tabulate

    def rows(rec: dict[str, Any] | None, when: str) -> list[list[Any]]:
        out = []
        for what in ("model", "search"):
            for r in ((rec or {}).get(what) or {}).values():
                out.append([f"{name if what == 'model' else 'exact search'}", r["batch"], when, r["calls"],
                            f"{r['p50_ms']:.3f}", f"{r['p95_ms']:.3f}", f"{r['p99_ms']:.3f}", f"{r['mean_ms']:.3f}"])
        return out

    m = now["machine"]
    head = (f"latency per query (ms), here: {m['device']}, {m['torch_threads']} threads, "
            f"{m.get('gpu') or m['cpu']}")
    if recorded:
        r = recorded.get("machine") or {}
        head += f"; recorded: {r.get('device')}, {r.get('torch_threads')} threads, {r.get('gpu') or r.get('cpu')}"
    table = rows(now, "here") + rows(recorded, "recorded")
    return head + "\n" + tabulate(table, headers=["what", "batch", "measured", "calls", "p50", "p95", "p99", "mean"],
                                  disable_numparse=True)

