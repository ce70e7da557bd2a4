"""Named, pinned benchmarks: what a number was measured on, so a gate can refuse a number measured on anything else.

A benchmark is a dataset (sha256) plus everything that defines its queries
and candidates: the split (its sha256) and which split is scored, the exact
query set (the count and the sha256 of the target rows), the pool (size,
sha256, kind, any bank), the context length, the minimum context, the
excluded window and the K's.  A smaller pool, an easier subset or a luckier
split all change one of these, so ``lvmbench gate RUN --benchmark NAME``
refuses (exit 1) a run whose pins differ, naming each field that does.

Shipped benchmarks live in ``lvmbench/pins/`` as ``BENCH.json`` files:
``default`` (the python-docs data and its shipped split) and each task of the
standard suite under its name.  ``lvmbench benchmark pin RUN_DIR`` writes a
team's own from one of its finished runs.  What a pin cannot cover: how the
predictions were made (a predictions file produced by peeking at the
targets is scored on the pinned queries like any other).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench.errors import UsageError
from lvmbench.io import atomic_write_json, read_json, sha256_arrays
from lvmbench.result import (
    DatasetInfo, DataSettings, EvalSettings, PoolInfo, QueryRecord, RecipeRecord, Result, SplitInfo,
)

FORMAT = "lvmbench-benchmark"
FORMAT_VERSION = 1
SHIPPED = Path(__file__).resolve().parents[1] / "pins"

FIELDS: dict[str, str] = {
    "dataset_sha256": "dataset sha256",
    "split_sha256": "split sha256",
    "split": "scored split",
    "queries": "queries",
    "queries_sha256": "query set (sha256 of the target rows)",
    "pool": "pool",
    "pool_sha256": "pool sha256",
    "pool_kind": "pool kind",
    "bank_sha256": "bank sha256",
    "context_len": "context_len",
    "min_context": "min_context",
    "exclude_context": "exclude_context",
    "exclude_len": "excluded window",
    "ks": "K's",
}
"""Every pinned field, and how a refusal names it."""


def pins_of(result: Result, target_ids: np.ndarray | None = None) -> dict[str, Any]:
    """The pinned fields of a scored run (``target_ids`` from its predictions.npz when results.json predates them)."""
    recipe = result.recipe or RecipeRecord()
    pool, data, ev = result.pool or PoolInfo(), recipe.data or DataSettings(), recipe.eval or EvalSettings()
    q = result.queries
    split = q.split if q is not None and q.has("split") else pool.split
    n = q.n if q is not None and q.has("n") else (result.metrics.n_queries if result.metrics else None)
    sha = q.sha256 if q is not None else None
    if target_ids is not None:
        n, sha = int(len(target_ids)), sha256_arrays(np.asarray(target_ids, dtype=np.int64))
    return {
        "dataset_sha256": result.dataset.sha256 if result.dataset else None,
        "split_sha256": result.split.sha256 if result.split else None,
        "split": split,
        "queries": n,
        "queries_sha256": sha,
        "pool": pool.size,
        "pool_sha256": pool.sha256,
        "pool_kind": ev.pool if ev.has("pool") else "split",
        "bank_sha256": pool.bank.sha256 if pool.bank else None,
        "context_len": data.context_len,
        "min_context": data.min_context,
        "exclude_context": pool.exclude_context,
        "exclude_len": pool.exclude_len,
        "ks": list(ev.ks or []),
    }


def data_pins(prep: Any, recipe: Any, split: str = "test") -> dict[str, Any]:
    """The pins a run of ``recipe`` on prepared data would record, without scoring anything.

    The same fields :func:`pins_of` reads from a run, built the way scoring
    builds them (the pool, the queries and their exclusion), so a shipped pin
    can be checked against its fixture in seconds.
    """
    from lvmbench.config import exclusion_len
    from lvmbench.evaluate.evaluation import pool_for, queries_for, query_record

    pool = pool_for(prep, recipe, split)
    queries = queries_for(prep, recipe, split, pool)
    excl = recipe.eval.exclude_context
    result = Result(dataset=DatasetInfo(sha256=prep.store.sha256),
                    split=SplitInfo(sha256=prep.report["split"]["sha256"]),
                    queries=QueryRecord.from_json(query_record(queries, split)),
                    recipe=RecipeRecord.from_json(recipe.to_dict()),
                    pool=PoolInfo(split=pool.split, size=pool.size, sha256=pool.sha256(), exclude_context=excl,
                                  exclude_len=exclusion_len(recipe) if excl else 0))
    return pins_of(result)


def pin(result: Result, target_ids: np.ndarray, name: str, description: str = "",
        source: str | None = None) -> dict[str, Any]:
    """A BENCH.json object for a scored run."""
    chance = (result.metrics.chance if result.metrics else None) or {}
    ds = result.dataset or DatasetInfo()
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "description": description,
            "pins": pins_of(result, target_ids), "chance": chance,
            "dataset": {"name": ds.name, "n_vectors": ds.n_vectors, "dim": ds.dim, "source": ds.source},
            "source_run": source}


def write(bench: dict[str, Any], out: str | Path, overwrite: bool = False) -> Path:
    p = Path(out)
    if p.exists() and not overwrite:
        raise UsageError(f"{p}: exists (pass --overwrite to replace it)")
    atomic_write_json(p, bench)
    return p


def shipped() -> dict[str, Path]:
    """The benchmarks that ship with lvmbench, by name."""
    return {p.stem: p for p in sorted(SHIPPED.glob("*.json"))}


def load(spec: str) -> dict[str, Any]:
    """A benchmark by shipped name or by BENCH.json path; one line when it is neither or is malformed."""
    path = Path(spec)
    if not path.is_file():
        found = shipped().get(spec)
        if found is None:
            raise UsageError(f"--benchmark {spec}: neither a BENCH.json file nor a shipped benchmark "
                             f"({', '.join(shipped())}; `lvmbench benchmark list`)")
        path = found
    bench = read_json(path, UsageError)
    if not isinstance(bench, dict) or bench.get("format") != FORMAT or not isinstance(bench.get("pins"), dict):
        raise UsageError(f"{path}: not an lvmbench benchmark file (write one with `lvmbench benchmark pin`)")
    if bench.get("format_version", 0) > FORMAT_VERSION:
        raise UsageError(f"{path}: benchmark format {bench.get('format_version')} is newer than this lvmbench reads")
    missing = [k for k in FIELDS if k not in bench["pins"]]
    if missing:
        raise UsageError(f"{path}: benchmark pins lack {', '.join(missing)}")
    bench.setdefault("name", path.stem)
    return bench


def _short(value: Any) -> str:
    return f"{value[:12]}…" if isinstance(value, str) and len(value) > 12 else json.dumps(value)


def differences(run_pins: dict[str, Any], bench: dict[str, Any]) -> list[str]:
    """One phrase per pinned field on which a run differs from ``bench``; empty when it was measured on it."""
    name, want = bench.get("name", "?"), bench["pins"]
    out = []
    for key, label in FIELDS.items():
        got = run_pins.get(key)
        if got == want.get(key):
            continue
        if key in ("queries", "pool"):
            unit = "queries" if key == "queries" else "candidates"
            out.append(f"{label}: {got} {unit}, benchmark '{name}' has {want.get(key)}")
        elif key.endswith("sha256"):
            out.append(f"{label} differs ({_short(got)} vs {_short(want.get(key))})")
        else:
            out.append(f"{label}: {_short(got)}, benchmark '{name}' has {_short(want.get(key))}")
    return out


def describe(run_pins: dict[str, Any], c5: float | None) -> str:
    """What a run was measured on, in one phrase: the verdict's context line (``c5``: the chance Hit@5)."""
    return (f"{run_pins.get('queries')} {run_pins.get('split')} queries, pool {run_pins.get('pool')} "
            f"({run_pins.get('pool_kind')}), chance Hit@5 {'?' if c5 is None else f'{100 * c5:.1f}%'}, "
            f"split sha256 {_short(run_pins.get('split_sha256'))}")
