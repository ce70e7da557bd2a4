"""Baseline results cached by everything that defines them, verified on every read.

A baseline's ranks on a benchmark depend only on the dataset, its split, the
scored queries and pool, the recipe fields that build and score the
baselines, and lvmbench's code - not on the model being scored.  So ``run``,
``eval`` and ``score`` on the same benchmark compute them once; a later
command reuses them.  The key hashes every one of those inputs (including a
hash of lvmbench's own source files, the library versions and the device
type), so any change recomputes instead of reusing.  An entry is never
trusted: its bytes must match the sha256 written beside it, its arrays must
have one value per query, and the Hit@K it records must be what its ranks
give; any mismatch (a corrupt or edited file) is recomputed and rewritten.

``LVMBENCH_BASELINE_CACHE=off`` disables it; entries live under
``$LVMBENCH_CACHE/baselines`` (default ``~/.cache/lvmbench``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench.data.prepare import cache_dir
from lvmbench.evaluate import metrics
from lvmbench.io import atomic_write, sha256_arrays, sha256_json

CACHE_VERSION = 1
PACKAGE = Path(__file__).resolve().parents[1]


@dataclass
class BaselineSummary:
    """What a run keeps of one baseline: its metrics, its ranks, PAR's terms and its direction row."""

    metrics: dict[str, Any]
    rank: np.ndarray
    par_pred: np.ndarray
    direction: dict[str, Any]


def enabled() -> bool:
    return os.environ.get("LVMBENCH_BASELINE_CACHE", "on").lower() not in ("off", "0", "false", "no")


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """sha256 of lvmbench's source files: an edit to any of them makes every entry stale."""
    h = hashlib.sha256()
    for p in sorted(PACKAGE.rglob("*.py")):
        h.update(str(p.relative_to(PACKAGE)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def key(inputs: dict[str, Any]) -> str:
    """The entry's name: a hash of the caller's inputs, the code, the libraries and the cache format."""
    import faiss
    import torch

    return sha256_json({"cache_version": CACHE_VERSION, "code": code_hash(), "torch": torch.__version__,
                        "numpy": np.__version__, "faiss": getattr(faiss, "__version__", "?"), **inputs})


def directory() -> Path:
    return cache_dir() / "baselines"


def _consistent(score: BaselineSummary, n: int) -> bool:
    """The entry describes itself: one value per query, and its Hit@K is what its ranks give."""
    if len(score.rank) != n or len(score.par_pred) != n:
        return False
    for k, v in score.metrics.items():
        if k.startswith("hit@") and isinstance(v, float) and v != metrics.value(k, score.rank):
            return False
    return True


def load(name: str, n: int) -> dict[str, BaselineSummary] | None:
    """The verified entry ``name`` for ``n`` queries, or None (absent, disabled, corrupt or edited)."""
    path = directory() / f"{name}.npz"
    if not enabled() or not path.is_file():
        return None
    try:
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != (directory() / f"{name}.sha256").read_text().strip():
            return None
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            meta = json.loads(z["meta"].item())
            out = {b: BaselineSummary(meta["metrics"][b], np.asarray(z[f"rank__{b}"]), np.asarray(z[f"par__{b}"]),
                                    meta["direction"][b]) for b in meta["names"]}
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
    return out if all(_consistent(s, n) for s in out.values()) else None


def store(name: str, scores: dict[str, BaselineSummary]) -> None:
    """Write an entry (atomically) and the sha256 that vouches for it."""
    if not enabled():
        return
    meta = {"names": list(scores), "metrics": {b: s.metrics for b, s in scores.items()},
            "direction": {b: s.direction for b, s in scores.items()}}
    arrays = {"meta": np.array(json.dumps(meta, default=_plain))}
    for b, s in scores.items():
        arrays[f"rank__{b}"], arrays[f"par__{b}"] = s.rank, s.par_pred
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    atomic_write(directory() / f"{name}.npz", lambda fh: fh.write(blob))
    atomic_write(directory() / f"{name}.sha256", lambda fh: fh.write(hashlib.sha256(blob).hexdigest().encode()))


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def queries_hash(target: np.ndarray, excl_lo: np.ndarray, excl_hi: np.ndarray) -> str:
    return sha256_arrays(np.asarray(target, np.int64), np.asarray(excl_lo, np.int64), np.asarray(excl_hi, np.int64))

