"""Target 4, chain-store memory: a prepared store holds its unique vectors + a sample index, never
N x T x D.  Measured in a fresh process (``_store-memory``) so nothing else is on the heap."""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import available_cores, random_walk_store, rss_bytes, set_threads
from benchmarks.targets.common import GB, Log, Result, child_argv, last_json_line, result
from lvmbench.config import Recipe
from lvmbench.data.prepare import prepare
from lvmbench.data.samples import gather_batch
from lvmbench.data.store import load_store

CHILD = "store-memory"


def _store_memory_child(path: str) -> dict[str, Any]:
    """Run in a fresh process: what loading + preparing a chain store holds."""
    rss0 = rss_bytes()
    tracemalloc.start()
    store = load_store(path)
    after_load = tracemalloc.get_traced_memory()
    rss_load = rss_bytes()
    recipe = Recipe()
    prep = prepare(store, recipe)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_prep = rss_bytes()
    n, d = store.vectors.shape
    T = recipe.data.context_len
    n_samples = sum(len(s) for s in prep.samples.values())
    sample_index = sum(s.target.nbytes + s.start.nbytes + s.chain.nbytes for s in prep.samples.values())
    unit = prep.unit.nbytes
    ctx_sizes = np.minimum(np.concatenate([s.target - s.start for s in prep.samples.values()]), T)
    unit_t = torch.from_numpy(prep.unit)
    tr = prep.samples["train"]
    ctx, _, _ = gather_batch(unit_t, tr.target[:32], tr.start[:32], T)
    return {
        "store": store.name, "vectors": n, "dim": d, "stored_dtype": str(store.vectors.dtype),
        "file_bytes": int(store.vectors.nbytes), "is_memmap": isinstance(store.vectors, np.memmap),
        "samples": n_samples,
        "traced_after_load_bytes": after_load[0],
        "traced_held_after_prepare_bytes": current, "traced_peak_during_prepare_bytes": peak,
        "unique_vectors_float32_bytes": unit, "sample_index_bytes": sample_index,
        "materialised_N_T_D_bytes": int(n_samples) * T * d * 4,
        "materialised_actual_contexts_bytes": int(ctx_sizes.sum()) * d * 4,
        "held_over_unique_plus_index": current / (unit + sample_index),
        "held_over_N_T_D": current / (int(n_samples) * T * d * 4),
        "rss_start": rss0["rss"], "rss_after_load": rss_load["rss"], "rss_after_prepare": rss_prep["rss"],
        "peak_rss": rss_prep["peak_rss"], "batch_bytes": int(ctx.numel() * 4),
    }


def child_main(args: list[str]) -> str:
    """``_store-memory PATH``: the child's one JSON line."""
    set_threads(available_cores())
    return json.dumps(_store_memory_child(args[0]))


def target_memory(log: Log) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "walk"
        random_walk_store(path, n_chains=1000, dim=384, min_len=120, max_len=200, seed=0)
        proc = subprocess.run(child_argv(CHILD, str(path)), capture_output=True, text=True, check=True)
    c = last_json_line(proc.stdout)
    log(f"[memory] {c['vectors']} x {c['dim']} {c['stored_dtype']} store, {c['samples']} samples: prepare holds "
        f"{c['traced_held_after_prepare_bytes'] / GB:.3f} GB (unique float32 vectors "
        f"{c['unique_vectors_float32_bytes'] / GB:.3f} GB + sample index {c['sample_index_bytes'] / GB:.4f} GB); "
        f"N x T x D would be {c['materialised_N_T_D_bytes'] / GB:.1f} GB")
    return [result("4 chain-store memory", "held after prepare / (unique vectors + sample index)",
                   c["held_over_unique_plus_index"], 1.25, "lower", c)]


def run(args: argparse.Namespace, threads: int, log: Log) -> list[Result]:
    return target_memory(log)
