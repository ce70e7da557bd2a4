"""``lvmbench sweep``: context length against Hit@K on a fixed pool.

The artefact this command exists to prevent: a published "longer context
helps" curve whose candidate pool shrank as the context grew.  Here every
point of the sweep retrains the model with ``data.context_len = C`` and is
scored against

* the **same test queries**: the split and ``data.min_context`` define them,
  not the context length (a query with fewer than C earlier vectors simply
  gets a shorter context);
* the **same pool**: every vector of the test chains;
* the **same candidates per query**: ``eval.exclude_len`` is set to the
  longest context of the sweep for every point, so each query's preceding
  ``max(C)`` vectors leave the pool at every point — otherwise a longer context
  would exclude more candidates and make the task easier.  (A sweep point's
  headline therefore differs slightly from ``lvmbench run --set
  data.context_len=C``, which excludes only C vectors.)

These are checked, not assumed: the query target ids, the pool sha256 and the
exclusion window must be identical across points (and copy_last, which ignores
all but the last vector, must rank every query identically at every point);
any difference is an integrity failure (exit 3).  Each point is an ordinary
run directory ``OUT/ctx-<C>/``; ``OUT/sweep.json`` and ``OUT/sweep.md`` hold
the table.
"""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tabulate import tabulate

from lvmbench.config import Recipe, validate
from lvmbench.errors import ConfigError, IntegrityError, UsageError
from lvmbench.io import atomic_write_json, atomic_write_text, sha256_arrays
from lvmbench.report import SCHEMA_VERSION, utc_now

Log = Callable[[str], None]
REFERENCE = "copy_last"


def parse_contexts(spec: str) -> list[int]:
    """``5,20,100`` -> ``[5, 20, 100]`` (ascending); each >= 1, no repeats."""
    try:
        values = [int(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--context expects comma-separated integers, got {spec!r}") from None
    if not values:
        raise UsageError("--context needs at least one context length")
    if any(v < 1 for v in values):
        raise UsageError(f"--context lengths must be >= 1, got {spec!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"--context lists a length more than once: {spec!r}")
    return sorted(values)


def point_recipes(recipe: Recipe, contexts: list[int]) -> list[Recipe]:
    """One recipe per context length, all excluding the same window (the longest context)."""
    window = max(max(contexts), recipe.eval.exclude_len)
    out = []
    for c in contexts:
        r = copy.deepcopy(recipe)
        r.data.context_len = c
        r.eval.exclude_len = window
        validate(r)
        out.append(r)
    return out


def _load_point(run_dir: Path) -> dict[str, np.ndarray]:
    npz = run_dir / "predictions.npz"
    try:
        with np.load(npz, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k in ("target_ids", "pool_ids", "rank") or k.startswith("rank__")}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise IntegrityError(f"{npz}: cannot read the point's per-query ranks ({exc})") from None


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _metric_cells(m: dict[str, Any], ks: list[int]) -> list[str]:
    cells = []
    for k in ks:
        lo, hi = m["ci"][f"hit@{k}"]
        cells.append(f"{_pct(m[f'hit@{k}'])} [{_pct(lo)}, {_pct(hi)}]")
    lo, hi = m["ci"]["mrr"]
    cells.append(f"{m['mrr']:.3f} [{lo:.3f}, {hi:.3f}]")
    return cells


def render(summary: dict[str, Any]) -> str:
    ks = summary["ks"]
    headers = ["context"] + [f"Hit@{k} % [95% CI]" for k in ks] + ["MRR [95% CI]", "best epoch", "margin"]
    rows = []
    for p in summary["points"]:
        if p["status"] != "ok":
            rows.append([str(p["context"]), f"FAILED: {p['error']}"] + [""] * (len(headers) - 2))
            continue
        m = p["metrics"]
        rows.append([str(p["context"])] + _metric_cells(m, ks)
                    + ["—" if p["best_epoch"] is None else str(p["best_epoch"]), f"{m['margin']:+.3f}"])
    ref = summary.get("reference")
    if ref:
        rows.append([f"{ref['name']} (baseline, any context)"] + _metric_cells(ref["metrics"], ks)
                    + ["—", f"{ref['metrics']['margin']:+.3f}"])
    q, pool, chance = summary["queries"], summary["pool"], summary.get("chance") or {}
    checks = summary["checks"]
    lines = [
        f"context-length sweep of {summary['model']} on {summary['dataset']['name']} "
        f"(sha256 {str(summary['dataset']['sha256'])[:12]})",
        f"every point: the same {q['n']} {pool['split']} queries (target ids sha256 {str(q['target_ids_sha256'])[:12]}), "
        f"the same pool of {pool['size']} candidates (sha256 {str(pool['sha256'])[:12]}), each query's "
        f"{summary['exclude_len']} preceding vectors excluded at every point; chance "
        + ", ".join(f"Hit@{k} {_pct(chance.get(f'hit@{k}'))}%" for k in ks),
        "checks: " + ", ".join(f"{k} {'OK' if v else 'FAILED'}" for k, v in checks.items() if v is not None),
        "",
        tabulate(rows, headers=headers, disable_numparse=True),
    ]
    return "\n".join(lines)


def sweep(
    recipe: Recipe, contexts: list[int], data: str | None, out: str | Path | None, overwrite: bool = False,
    log: Log = print,
) -> tuple[Path, dict[str, Any], int]:
    """Retrain ``recipe.model.name`` at each context length and score every point on the same queries and pool.

    Returns the sweep directory, the summary (``sweep.json``) and the exit code
    (0, or the highest exit code of a failed point; an integrity failure raises).
    """
    from lvmbench.data.prepare import prepare, resolve_data
    from lvmbench.models import registry
    from lvmbench.pipeline import check_ks, configure_threads, run_series, series_dir, series_exit_code
    from lvmbench.train.loop import resolve_device

    name = recipe.model.name
    registry.get_entry(name)
    if not contexts:
        raise UsageError("sweep needs at least one context length")
    recipes = point_recipes(recipe, contexts)
    configure_threads(recipe)
    store = resolve_data(data, log)
    prep = prepare(store, recipes[0])  # gates, split and samples do not depend on data.context_len
    for split in ("val", "test"):
        check_ks(prep, recipes[0], split)
    device = resolve_device(recipe.train.device)
    parent = series_dir(out, f"{name}-sweep", overwrite)
    window = recipes[0].eval.exclude_len
    log(f"sweep of {name} over context lengths {', '.join(map(str, contexts))} into {parent}; "
        f"every point excludes each query's {window} preceding vectors")
    points = [(f"context {c}", r, parent / f"ctx-{c}") for c, r in zip(contexts, recipes)]
    outcomes = run_series(points, prep, device, overwrite, log)

    ks = list(recipe.eval.ks)
    rows: list[dict[str, Any]] = []
    loaded: list[tuple[dict[str, Any], dict[str, np.ndarray]]] = []
    for c, o in zip(contexts, outcomes):
        row: dict[str, Any] = {"context": c, "run_dir": str(o.run_dir), "status": "ok" if o.ok else "failed",
                               "error": o.error, "exit_code": o.exit_code}
        if o.ok:
            res = o.results
            arrays = _load_point(Path(o.run_dir))
            loaded.append((res, arrays))
            m = res["metrics"]
            row.update({
                "metrics": {k: m[k] for k in [f"hit@{k}" for k in ks] + ["mrr", "mean_cos", "margin", "ci", "n_queries"]},
                "best_epoch": res["model"].get("best_epoch"),
                "params": res["model"].get("params"),
                "pool_sha256": res["pool"]["sha256"],
                "exclude_len": res["pool"].get("exclude_len"),
                "target_ids_sha256": sha256_arrays(arrays["target_ids"]),
                "train_s": res.get("timings", {}).get("train_s"),
            })
        rows.append(row)

    checks: dict[str, Any] = {"same_queries": None, "same_pool": None, "same_exclusion": None,
                              "copy_last_ranks_identical": None}
    first_res, first_arr = loaded[0] if loaded else ({}, {})
    if loaded:
        checks["same_queries"] = all(np.array_equal(a["target_ids"], first_arr["target_ids"]) for _, a in loaded)
        checks["same_pool"] = all(r["pool"]["sha256"] == first_res["pool"]["sha256"] for r, _ in loaded)
        checks["same_exclusion"] = all(r["pool"].get("exclude_len") == window for r, _ in loaded)
        key = f"rank__{REFERENCE}"
        if all(key in a for _, a in loaded):
            checks["copy_last_ranks_identical"] = all(np.array_equal(a[key], first_arr[key]) for _, a in loaded)
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_utc": utc_now(),
        "model": name,
        "contexts": contexts,
        "exclude_len": window,
        "ks": ks,
        "dataset": {"name": store.name, "path": str(store.path), "sha256": store.sha256},
        "split_sha256": prep.report["split"]["sha256"],
        "queries": {
            "split": "test",
            "n": int(len(first_arr["target_ids"])) if loaded else None,
            "target_ids_sha256": sha256_arrays(first_arr["target_ids"]) if loaded else None,
            "defined_by": "the test split and data.min_context (not data.context_len)",
        },
        "pool": {k: first_res.get("pool", {}).get(k) for k in ("split", "size", "sha256", "exclude_context")},
        "chance": first_res.get("metrics", {}).get("chance"),
        "checks": checks,
        "points": rows,
        "reference": None,
        "recipe": recipe.to_dict(),
    }
    if loaded and REFERENCE in first_res.get("baselines", {}):
        summary["reference"] = {"name": REFERENCE, "metrics": first_res["baselines"][REFERENCE]}
    table = render(summary)
    atomic_write_json(parent / "sweep.json", summary)
    atomic_write_text(parent / "sweep.md", "# lvmbench context-length sweep\n\n```\n" + table + "\n```\n")
    log("")
    log(table)
    log(f"artefacts in {parent} (sweep.json, sweep.md, ctx-<C>/ run directories)")
    bad = [k for k, v in checks.items() if v is False]
    if bad:
        raise IntegrityError(f"{parent}: sweep points differ in {', '.join(bad)}; the points are not comparable")
    return parent, summary, series_exit_code(outcomes)


def check_overrides(overrides: list[str]) -> None:
    """``--set data.context_len`` would be overwritten at every point: refuse it."""
    for item in overrides:
        if item.split("=", 1)[0].strip() in ("data.context_len", "eval.exclude_len"):
            raise ConfigError(f"--set {item}: the sweep sets this itself (use --context)")


__all__ = ["sweep", "parse_contexts", "point_recipes", "render", "check_overrides"]
