"""``lvmbench data info``: what a dataset looks like and how hard it is.

Difficulty is measured, not guessed: the trivial baselines are scored on the
test split through the same pool, queries, exclusion, predict() and FAISS
path as any model (:mod:`lvmbench.evaluate.evaluation`), so "Hit@5 = 60 %" can be
read against what copying the last vector already gets.
"""

from __future__ import annotations

from typing import Any

import torch
from tabulate import tabulate

from lvmbench.config import Recipe, exclusion_len
from lvmbench.data.describe import distribution
from lvmbench.data.gates import adjacent_cosines
from lvmbench.data.prepare import Prepared, prepare
from lvmbench.data.store import ChainStore
from lvmbench.evaluate.evaluation import pool_for, predict_and_summarise, queries_for
from lvmbench.models.build import build_model
from lvmbench.format import DASH, num, pct
from lvmbench.report import columns

DIFFICULTY_BASELINES = ("copy_last", "mean_context", "random")
STAT_COLUMNS = ("min", "p10", "median", "p90", "max", "mean")


def difficulty(prep: Prepared, recipe: Recipe) -> dict[str, Any]:
    """Hit@K and MRR of the trivial baselines on the test split, with pool size and chance."""
    unit_t = torch.from_numpy(prep.unit)
    pool = pool_for(prep, recipe, "test")
    queries = queries_for(prep, recipe, "test", pool)
    keys = columns.shown(recipe.eval.ks, vectors=False)  # the rank metrics the tables show (Hit@K, nDCG@K, MRR, CA)
    scores = {}
    for name in DIFFICULTY_BASELINES:
        model = build_model(name, prep, recipe).to(torch.device("cpu"))
        scored, _ = predict_and_summarise(name, model, prep, recipe, unit_t, pool, queries)
        scores[name] = {k: scored.metrics[k] for k in keys}
    return {
        "pool": {"split": "test", "size": pool.size, "exclude_context": recipe.eval.exclude_context,
                 "exclude_len": exclusion_len(recipe) if recipe.eval.exclude_context else 0},
        "queries": len(queries),
        "chance": scored.metrics["chance"],
        "baselines": scores,
    }


def data_info(store: ChainStore, recipe: Recipe) -> dict[str, Any]:
    """Everything ``data info`` reports; leakage is recorded (``info['leakage']``), never raised here."""
    prep = prepare(store, recipe, strict=False)
    m = store.manifest
    return {
        "path": str(store.path),
        "name": store.name,
        "sha256": store.sha256,
        "encoder": m.get("encoder"),
        "unit": m.get("unit"),
        "license": m.get("license"),
        "chains": store.n_chains,
        "vectors": store.n_vectors,
        "dim": store.dim,
        "dtype": str(store.vectors.dtype),
        "chain_length": distribution(store.lengths),
        "adjacent_cosine": distribution(adjacent_cosines(prep.unit, store.offsets)),
        "duplicate_rate": prep.gates.report["duplicate_vectors"] / max(store.n_vectors, 1),
        "gates": prep.gates.report,
        "split": prep.report["split"]["sizes"],
        "samples": prep.report["samples"],
        "leakage": prep.leakage,
        "difficulty": difficulty(prep, recipe),
    }


def _stat_row(name: str, q: dict[str, float], digits: int) -> list[str]:
    return [name] + [num(q.get(k, float("nan")), digits) for k in STAT_COLUMNS]


def _difficulty_table(d: dict[str, Any]) -> str:
    keys = list(next(iter(d["baselines"].values()))) if d["baselines"] else []
    rows = [[n] + [columns.cell(k, m.get(k)) for k in keys] for n, m in d["baselines"].items()]
    rows.append(["chance"] + [pct(d["chance"].get(k)) if k in d["chance"] else DASH for k in keys])
    headers = ["predictor"] + [columns.heading(k) for k in keys]
    return tabulate(rows, headers=headers, disable_numparse=True)


def _leakage_lines(leak: dict[str, Any]) -> list[str]:
    if leak["ok"]:
        return [f"leakage check: OK ({leak['checked_vectors']} val/test vectors, none also in training)"]
    rows = [[v["row"], v["chain"], v["split"], v["position"],
             ", ".join(v["also_in_train"]) + (" …" if v["train_chains"] > len(v["also_in_train"]) else "")]
            for v in leak["vectors"]]
    listed = f"; the first {len(rows)}:" if leak["leaked_vectors"] > len(rows) else ":"
    return [
        f"LEAKAGE: {leak['leaked_vectors']} of {leak['checked_vectors']} val/test vectors also occur in training "
        f"chains, in {len(leak['leaked_chains'])} chains" + listed,
        tabulate(rows, headers=["row", "chain", "split", "position", "also in training chains"],
                 disable_numparse=True),
        "`lvmbench run` refuses this dataset; `lvmbench data dedupe SRC --out NEW_DIR` writes a copy without "
        "vectors shared between chains",
    ]


def render_info(info: dict[str, Any]) -> str:
    d, g = info["difficulty"], info["gates"]
    pool = d["pool"]
    excluded = (f"each query's {pool['exclude_len']} preceding vectors excluded" if pool["exclude_context"]
                else "context included")
    return "\n".join([
        f"{info['name']}  ({info['path']})",
        f"encoder {info['encoder']}, unit {info['unit']}, dim {info['dim']} {info['dtype']}, license {info['license']}",
        f"{info['chains']} chains, {info['vectors']} vectors; "
        f"exact-duplicate vectors {100 * info['duplicate_rate']:.2f}%",
        f"after gates: {g['chains_kept']} chains "
        f"(length < {g['min_chain_len']}: {g['removed_length']} removed, "
        f"coherence < {g['coherence_min']}: {g['removed_coherence']} removed); "
        f"coherence thresholds would remove {g['coherence_would_remove']}",
        "split (chains/vectors): " + ", ".join(f"{k} {v['chains']}/{v['vectors']}" for k, v in info["split"].items())
        + "; samples " + ", ".join(f"{k} {v}" for k, v in info["samples"].items()),
        "",
        tabulate([_stat_row("chain length", info["chain_length"], 1),
                  _stat_row("adjacent cosine", info["adjacent_cosine"], 3)],
                 headers=["", *STAT_COLUMNS], disable_numparse=True),
        "",
        *_leakage_lines(info["leakage"]),
        "",
        f"difficulty on the test split: {d['queries']} queries, pool {pool['size']} ({excluded})",
        _difficulty_table(d),
    ])
