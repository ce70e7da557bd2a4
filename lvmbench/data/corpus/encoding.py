"""Encoding with a resumable per-document cache.

Vectors are cached per document as ``<sha256(encoder id + unit texts)>.npy``
float32 files written atomically, so an interrupted build resumes where it
stopped and a rebuild with other filters re-encodes only what changed.  The
key is the whole unit list of a document as encoded: anything decided after
encoding (such as dropping units) never writes to the cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lvmbench.data.corpus.document import Document
from lvmbench.data.encoders import Encoder
from lvmbench.errors import DataError
from lvmbench.progress import Progress
from lvmbench.io import atomic_save_npy

ENCODE_GROUP = 512  # texts per encoder call (and per progress update / cache flush)


def cache_key(encoder_name: str, texts: list[str]) -> str:
    """The cache file stem of one document's unit list under one encoder."""
    return hashlib.sha256(json.dumps([encoder_name, texts], ensure_ascii=False).encode("utf-8")).hexdigest()


def _load_cached(path: Path, n: int, dim: int) -> np.ndarray | None:
    """A cached array if it is present and sound, else None (a damaged file is re-encoded, not trusted)."""
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if arr.shape != (n, dim) or arr.dtype != np.float32 or not np.isfinite(arr).all():
        return None
    return arr


def _groups(sizes: list[int], todo: list[int]) -> list[list[int]]:
    """Consecutive documents of ``todo`` batched until each group holds >= ENCODE_GROUP units."""
    out: list[list[int]] = []
    group: list[int] = []
    for pos, k in enumerate(todo):
        group.append(k)
        if sum(sizes[g] for g in group) >= ENCODE_GROUP or pos == len(todo) - 1:
            out.append(group)
            group = []
    return out


def _encode_group(docs: list[Document], group: list[int], encoder: Encoder, batch_size: int) -> list[np.ndarray]:
    """One encoder call for a group of documents; one float32 array per document."""
    texts = [u for g in group for u in docs[g].units]
    vecs = np.asarray(encoder.encode(texts, batch_size=batch_size), dtype=np.float32)
    if vecs.shape != (len(texts), encoder.dim):
        raise DataError(f"encoder {encoder.name}: returned shape {vecs.shape}, expected ({len(texts)}, {encoder.dim})")
    bounds = np.cumsum([0] + [len(docs[g].units) for g in group])
    return [vecs[bounds[j] : bounds[j + 1]] for j in range(len(group))]


def encode_documents(
    docs: list[Document],
    encoder: Encoder,
    cache_dir: str | Path,
    batch_size: int = 64,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """One float32 [len(units), dim] array per document, cached per document in ``cache_dir``.

    ``progress`` False silences the progress report; otherwise a terminal gets
    a bar and any other output a line through ``log`` now and then.
    """
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    keys = [cache_key(encoder.name, d.units) for d in docs]
    out = [_load_cached(cache / f"{key}.npy", len(d.units), encoder.dim) for d, key in zip(docs, keys)]
    todo = [k for k, a in enumerate(out) if a is None]
    sizes = [len(d.units) for d in docs]
    n_cached = sum(sizes[k] for k, a in enumerate(out) if a is not None)
    n_todo = sum(sizes[k] for k in todo)
    t0 = time.perf_counter()
    with Progress(n_todo, "encoding", log, "texts", enabled=progress is not False) as bar:
        for group in _groups(sizes, todo):
            for g, arr in zip(group, _encode_group(docs, group, encoder, batch_size)):
                out[g] = arr
                atomic_save_npy(cache / f"{keys[g]}.npy", arr)
            bar.update(sum(sizes[g] for g in group))
    seconds = time.perf_counter() - t0
    stats = {
        "encoded": n_todo,
        "from_cache": n_cached,
        "seconds": round(seconds, 2),
        "seconds_per_1000": round(1000 * seconds / n_todo, 2) if n_todo else None,
    }
    return [a for a in out if a is not None], stats
