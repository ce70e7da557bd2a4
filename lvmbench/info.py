"""``lvmbench data info``: what a dataset looks like and how hard it is.

Difficulty is measured, not guessed: the trivial baselines are scored on the
test split through the same pool, predict() and FAISS path as any model, so
"Hit@5 = 60 %" can be read against what copying the last vector already gets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tabulate import tabulate

from lvmbench.config import Recipe
from lvmbench.data.gates import adjacent_cosines
from lvmbench.data.prepare import prepare
from lvmbench.data.store import ChainStore

DIFFICULTY_BASELINES = ("copy_last", "mean_context", "random")


def _quantiles(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {}
    q = np.quantile(x, [0.0, 0.1, 0.5, 0.9, 1.0])
    return {"min": float(q[0]), "p10": float(q[1]), "median": float(q[2]), "p90": float(q[3]),
            "max": float(q[4]), "mean": float(x.mean())}


def dataset_info(store: ChainStore, recipe: Recipe) -> dict[str, Any]:
    from lvmbench.pipeline import build_model, make_queries, pool_for, score_one

    prep = prepare(store, recipe)
    lengths = store.lengths.astype(np.float64)
    adj = adjacent_cosines(prep.unit, store.offsets)
    m = store.manifest
    info: dict[str, Any] = {
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
        "chain_length": _quantiles(lengths),
        "adjacent_cosine": _quantiles(adj),
        "duplicate_rate": prep.gates.report["duplicate_vectors"] / max(store.n_vectors, 1),
        "gates": prep.gates.report,
        "split": prep.report["split"]["sizes"],
        "samples": prep.report["samples"],
    }
    device = torch.device("cpu")
    unit_t = torch.from_numpy(prep.unit)
    pool = pool_for(prep, recipe, "test")
    queries = make_queries(prep.samples["test"], pool, recipe.data.context_len)
    difficulty = {}
    for name in DIFFICULTY_BASELINES:
        model = build_model(name, prep, recipe).to(device)
        scored, _ = score_one(name, model, prep, recipe, unit_t, pool, queries)
        difficulty[name] = {k: scored.metrics[k] for k in ("hit@1", "hit@5", "hit@10", "mrr")}
    info["difficulty"] = {
        "pool": {"split": "test", "size": pool.size, "exclude_context": recipe.eval.exclude_context},
        "queries": len(queries),
        "chance": scored.metrics["chance"],
        "baselines": difficulty,
    }
    return info


def render_info(info: dict[str, Any]) -> str:
    def row(name: str, q: dict[str, float], fmt: str) -> list[str]:
        return [name] + [format(q.get(k, float("nan")), fmt) for k in ("min", "p10", "median", "p90", "max", "mean")]

    d = info["difficulty"]
    lines = [
        f"{info['name']}  ({info['path']})",
        f"encoder {info['encoder']}, unit {info['unit']}, dim {info['dim']} {info['dtype']}, license {info['license']}",
        f"{info['chains']} chains, {info['vectors']} vectors; exact-duplicate vectors {100 * info['duplicate_rate']:.2f}%",
        f"after gates: {info['gates']['chains_kept']} chains "
        f"(length < {info['gates']['min_chain_len']}: {info['gates']['removed_length']} removed, "
        f"coherence < {info['gates']['coherence_min']}: {info['gates']['removed_coherence']} removed); "
        f"coherence thresholds would remove {info['gates']['coherence_would_remove']}",
        "split (chains/vectors): " + ", ".join(f"{k} {v['chains']}/{v['vectors']}" for k, v in info["split"].items())
        + "; samples " + ", ".join(f"{k} {v}" for k, v in info["samples"].items()),
        "",
        tabulate(
            [row("chain length", info["chain_length"], ".1f"), row("adjacent cosine", info["adjacent_cosine"], ".3f")],
            headers=["", "min", "p10", "median", "p90", "max", "mean"], disable_numparse=True,
        ),
        "",
        f"difficulty on the test split: {d['queries']} queries, pool {d['pool']['size']} "
        f"(context {'excluded' if d['pool']['exclude_context'] else 'included'})",
        tabulate(
            [[n] + [f"{100 * m[k]:.1f}" for k in ("hit@1", "hit@5", "hit@10")] + [f"{m['mrr']:.3f}"]
             for n, m in d["baselines"].items()]
            + [["chance"] + [f"{100 * d['chance'][k]:.1f}" for k in ("hit@1", "hit@5", "hit@10")] + ["—"]],
            headers=["predictor", "Hit@1 %", "Hit@5 %", "Hit@10 %", "MRR"], disable_numparse=True,
        ),
    ]
    return "\n".join(lines)
