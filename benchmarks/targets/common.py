"""Helpers shared by the targets: result rows, interleaved timing, call timers, the trainer
setup, phase timing, child processes, and the external bank file with its dataset part.

Helpers that the pytest-benchmark suites use as well live in ``benchmarks._common``.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks._common import (
    RssSampler, available_cores, fill_unit_rows, reset_peak_rss, rss_bytes, set_threads, timed, unit_rows,
)
from lvmbench.config import Recipe
from lvmbench.data.prepare import DEFAULT_DATASET, prepare
from lvmbench.data.samples import make_samples
from lvmbench.data.store import ChainStore, load_store
from lvmbench.evaluate.queries import make_queries
from lvmbench.evaluate.evaluation import pool_for
from lvmbench.models.build import build_model
from lvmbench.train.trainer import TrainData

GB = 1e9

Log = Callable[[str], None]
Result = dict[str, Any]


def result(target: str, what: str, value: float, limit: float, better: str, details: dict[str, Any]) -> Result:
    """One row of the final table (and of ``--json``): ``value`` against ``limit``, lower or higher better."""
    met = value <= limit if better == "lower" else value >= limit
    return {"target": target, "what": what, "value": value, "limit": limit, "better": better, "met": bool(met),
            "details": details}


def interleaved(fns: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each function, timed round-robin so drift hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        names = list(fns) if r % 2 == 0 else list(reversed(fns))
        for k in names:
            times[k].append(timed(fns[k])[0])
    return {k: float(np.median(v)) for k, v in times.items()}


def default_store(log: Log) -> ChainStore:
    """The prepared default dataset; the targets measure lvmbench on real data, so it must exist."""
    if (DEFAULT_DATASET / "manifest.json").is_file():
        return load_store(DEFAULT_DATASET)
    raise SystemExit(f"{DEFAULT_DATASET}: the default dataset is missing")


class CallTimer:
    """Wraps a module's functions to time and count their calls (the trainer's validation and
    file writes, so their time can be taken out; the scorer's search and exact fallback)."""

    def __init__(self, module: Any, names: tuple[str, ...]) -> None:
        self.module, self.names = module, names
        self.seconds = {k: 0.0 for k in names}
        self.calls = {k: 0 for k in names}
        self._orig = {k: getattr(module, k) for k in names}

    def __enter__(self) -> "CallTimer":
        for k in self.names:
            setattr(self.module, k, self._wrap(k, self._orig[k]))
        return self

    def __exit__(self, *exc: Any) -> None:
        for k, fn in self._orig.items():
            setattr(self.module, k, fn)

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[name] += time.perf_counter() - t0
                self.calls[name] += 1
        return wrapped


TRAINER_CALLS = ("validate_epoch", "save_checkpoint", "atomic_write_json")
"""``lvmbench.train.trainer`` functions whose time is not optimiser steps (timed apart by :class:`CallTimer`)."""


def trainer_setup(store: ChainStore, model_name: str, n_samples: int
                  ) -> tuple[Recipe, Any, TrainData, torch.nn.Module, dict[str, torch.Tensor]]:
    """A one-epoch recipe on the first ``n_samples`` training samples, and the model's initial weights."""
    recipe = Recipe()
    recipe.model.name = model_name
    recipe.train.max_epochs = 1
    prep = prepare(store, recipe)
    unit_t = torch.from_numpy(prep.unit)
    val_pool = pool_for(prep, recipe, "val")
    val_queries = make_queries(prep.samples["val"], val_pool, recipe.data.context_len)
    sub = prep.samples["train"].subset(np.arange(min(n_samples, len(prep.samples["train"]))))
    data = TrainData(unit_t, sub, prep.samples["val"], val_queries, torch.from_numpy(val_pool.vectors))
    torch.manual_seed(recipe.seed)
    model = build_model(model_name, prep, recipe)
    return recipe, prep, data, model, copy.deepcopy(model.state_dict())


def phase(fn: Callable[[], Any]) -> tuple[dict[str, Any], Any]:
    """Seconds (wall, and CPU of all this process's threads: on a shared machine CPU / threads is
    what the phase would take alone), RSS after, peak RSS (VmHWM, reset first) and sampled
    anon/file peaks of one call."""
    reset_peak_rss()
    with RssSampler() as rs:
        cpu0 = time.process_time()
        t, out = timed(fn)
        cpu = time.process_time() - cpu0
    return {"seconds": t, "cpu_seconds": cpu, **rss_bytes(), **rs.info()}, out


# --------------------------------------------------------------------------- child processes

CHILD_MODULE = "benchmarks.targets"
"""Re-launched as ``python -m benchmarks.targets _<kind> ...``: a fresh process measures peak RSS
cleanly; ``cli.main`` hands ``_<kind>`` to the module's ``child_main``."""


def child_argv(kind: str, *args: str) -> list[str]:
    """The command line of the ``_<kind>`` child, run by this same interpreter."""
    return [sys.executable, "-m", CHILD_MODULE, f"_{kind}", *args]


def last_json_line(stdout: str) -> dict[str, Any]:
    """A child's result: the last line of its stdout (anything printed before it is progress)."""
    return json.loads(stdout.strip().splitlines()[-1])


def run_child(kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """``python -m benchmarks.targets _<kind> JSON`` in a fresh process (clean peak RSS); its
    progress goes to our stderr, its result is the last line of its stdout."""
    proc = subprocess.run(child_argv(kind, json.dumps(cfg)), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed ({proc.returncode}); its stderr is above")
    return last_json_line(proc.stdout)


def cfg_child(args: list[str], child: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
    """The child side of :func:`run_child`: threads as the parent's, then ``child(cfg)`` as one JSON line."""
    cfg = json.loads(args[0])
    set_threads(cfg.get("threads") or available_cores())
    return json.dumps(child(cfg), default=float)


def child_log(msg: str) -> None:
    """A child's progress: stderr, which the parent passes through (stdout carries the result)."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the external bank (bank, bank-ann)

BANK_SEED = 0
BANK_SPREAD = 0.6  # as unit_rows' default (and memory-1m's pool): cluster mates at cosine ~0.73
BANK_CHAIN_LEN = 100
BANK_SHARD_SIZES = (0, 262_144)


def bank_file(workdir: Path, n: int, dim: int) -> Path:
    return workdir / f"bank-{n}x{dim}-f32-seed{BANK_SEED}.npy"


def ensure_bank(path: Path, n: int, dim: int, log: Log) -> dict[str, Any]:
    """Write ``n x dim`` clustered float32 unit vectors to ``path`` (an ``.npy``), block by block.

    A file already there is reused when its shape, dtype, byte size and
    generator parameters (the ``.json`` beside it) match.  Written under a
    temporary name and renamed, so an interrupted write is never reused.
    """
    meta = {"n": n, "dim": dim, "dtype": "float32", "seed": BANK_SEED, "spread": BANK_SPREAD,
            "n_centres": max(1, n // 100), "generator": "benchmarks._common.fill_unit_rows"}
    side = path.with_suffix(".json")
    if path.is_file() and side.is_file():
        try:
            arr = np.load(path, mmap_mode="r")
            ok = (arr.shape == (n, dim) and arr.dtype == np.float32
                  and path.stat().st_size == arr.offset + n * dim * 4 and json.loads(side.read_text()) == meta)
            del arr
        except (ValueError, OSError):
            ok = False
        if ok:
            log(f"[bank] reusing {path} ({path.stat().st_size / GB:.2f} GB)")
            return {"path": str(path), "bytes": path.stat().st_size, "written": False, "write_s": 0.0}
        log(f"[bank] {path} does not match {meta}; rewriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    need = n * dim * 4
    free = shutil.disk_usage(path.parent).free + (path.stat().st_size if path.is_file() else 0)
    if free < need * 1.05:
        raise SystemExit(f"{path.parent}: {free / GB:.1f} GB free, the bank needs {need / GB:.2f} GB "
                         "(--workdir elsewhere)")
    tmp = path.with_name(path.stem + ".partial.npy")
    log(f"[bank] writing {n:,} x {dim} float32 unit vectors ({need / GB:.2f} GB) to {path}")
    t0 = time.perf_counter()
    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dim))
    fill_unit_rows(mm, seed=BANK_SEED, spread=BANK_SPREAD)
    mm.flush()
    del mm
    side.unlink(missing_ok=True)
    tmp.replace(path)
    side.write_text(json.dumps(meta))
    write_s = time.perf_counter() - t0
    log(f"[bank] written in {write_s:.1f} s")
    return {"path": str(path), "bytes": path.stat().st_size, "written": True, "write_s": write_s}


def bank_dataset(n_bank: int, dim: int, n_queries: int, noise: float = 2.0,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, np.ndarray]:
    """A small dataset part drawn from the bank's distribution (same centres, other samples):
    chains of 100, ~20 % more samples than queries, ``n_queries`` distinct samples (min context 1),
    and each query's prediction: a noisy copy of its target, cosine ~1 / sqrt(1 + noise^2)
    (noise 2: ~0.45, as in memory-1m; the target then nearly always ranks first among its
    ~100 cluster mates at cosine ~0.73; noise 8 (~0.12) spreads ranks past the search depth
    and exercises the exact fallback)."""
    n_chains = max(2, -(-n_queries * 6 // (5 * (BANK_CHAIN_LEN - 1))))
    unit = unit_rows(n_chains * BANK_CHAIN_LEN, dim, seed=BANK_SEED, n_centres=max(1, n_bank // 100),
                     sample_seed=7, spread=BANK_SPREAD)
    offsets = np.arange(0, n_chains * BANK_CHAIN_LEN + 1, BANK_CHAIN_LEN, dtype=np.int64)
    chains = np.arange(n_chains)
    samples = make_samples(offsets, chains, 1)
    if n_queries > len(samples):
        raise SystemExit(f"{n_queries} queries > {len(samples)} samples")
    samples = samples.subset(np.sort(np.random.default_rng(0).choice(len(samples), size=n_queries, replace=False)))
    rng = np.random.default_rng(1)
    noise_rows = rng.standard_normal((n_queries, dim), dtype=np.float32) * np.float32(noise / np.sqrt(dim))
    pred = unit[samples.target] + noise_rows
    pred /= np.linalg.norm(pred, axis=1, keepdims=True)
    return unit, offsets, chains, samples, np.ascontiguousarray(pred, dtype=np.float32)
