"""A task file: the exact queries of one split, for predictions made outside lvmbench.

``lvmbench task`` writes it, ``lvmbench score`` reads it back.  It is an
``.npz`` (loaded with ``allow_pickle=False``) holding, per query ``i``:

=============  ==================  =====================================================
array          shape, dtype        meaning
=============  ==================  =====================================================
target_ids     [n] int64           row of ``vectors.npy`` to predict (the truth)
context_ids    [n, T] int64        the rows before it in its document, oldest first,
                                   right-padded with -1 (T = data.context_len at most)
exclude_lo/hi  [n] int64           rows ``[lo, hi)`` left out of this query's candidates
                                   (the vectors just before the target)
pool_ids       [P] int64           the candidate rows every query is ranked against
meta           0-d str (JSON)      dataset and split sha256, pool size and sha256,
                                   context length, exclusion, the whole recipe
=============  ==================  =====================================================

A prediction file for it is ``[n, D]`` floats, row ``i`` = the prediction for
``target_ids[i]`` from ``vectors[context_ids[i][context_ids[i] >= 0]]``.
lvmbench L2-normalises each row (as ``predict()`` does) and ranks it against
the ``pool_ids`` vectors, L2-normalised, minus the excluded rows.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import lvmbench
from lvmbench.config import Recipe, exclusion_len
from lvmbench.data.prepare import Prepared
from lvmbench.data.samples import context_index
from lvmbench.errors import DataError
from lvmbench.evaluate.evaluation import excluded_rows, pool_for, queries_for

FORMAT = "lvmbench-task"
FORMAT_VERSION = 1
ARRAYS = ("target_ids", "context_ids", "exclude_lo", "exclude_hi", "pool_ids")


@dataclass
class Task:
    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.arrays["target_ids"])


def make_task(prep: Prepared, recipe: Recipe, split: str) -> dict[str, np.ndarray]:
    """The arrays of a task file for ``split`` under ``recipe`` (pool, queries and exclusion as scoring uses)."""
    pool = pool_for(prep, recipe, split)
    queries = queries_for(prep, recipe, split, pool)
    samples = queries.samples
    context, _ = context_index(samples.target, samples.start, recipe.data.context_len)
    lo, hi = excluded_rows(queries, pool, recipe)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "lvmbench": lvmbench.__version__,
        "dataset": {"name": prep.store.name, "path": str(prep.store.path), "sha256": prep.store.sha256,
                    "n_vectors": prep.store.n_vectors, "dim": prep.store.dim},
        "split": split, "split_sha256": prep.report["split"]["sha256"], "n_queries": len(queries),
        "pool": {"split": pool.split, "size": pool.size, "sha256": pool.sha256()},
        "context_len": recipe.data.context_len, "exclude_context": recipe.eval.exclude_context,
        "exclude_len": exclusion_len(recipe) if recipe.eval.exclude_context else 0,
        "recipe": recipe.to_dict(),
    }
    return {"format": np.array(FORMAT), "meta": np.array(json.dumps(meta)), "target_ids": samples.target,
            "context_ids": context, "exclude_lo": lo, "exclude_hi": hi, "pool_ids": pool.ids}


def read_task(path: str | Path) -> Task:
    """A task file, checked: the format, the arrays and their shapes; one line naming the file otherwise."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: task file not found (write one with `lvmbench task --out {p.name}`)")
    try:
        with np.load(p, allow_pickle=False) as z:
            files = set(z.files)
            arrays = {k: z[k] for k in files}
    except ValueError as exc:
        raise DataError(f"{p}: holds Python objects or is not a task file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p}: not a readable .npz task file ({exc})") from None
    if arrays.get("format", np.array("")).item() != FORMAT or "meta" not in arrays:
        raise DataError(f"{p}: not an lvmbench task file")
    try:
        meta = json.loads(arrays.pop("meta").item())
    except (ValueError, TypeError) as exc:
        raise DataError(f"{p}: malformed task meta ({exc})") from None
    _check_meta(meta, p)
    if meta["format_version"] > FORMAT_VERSION:
        raise DataError(f"{p}: task format {meta.get('format_version')} is newer than this lvmbench reads")
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise DataError(f"{p}: lacks {', '.join(missing)}; not an lvmbench task file")
    for key in ARRAYS:
        a, ndim = arrays[key], 2 if key == "context_ids" else 1
        if a.dtype.kind not in "iu" or a.ndim != ndim:
            raise DataError(f"{p}: '{key}' is a {a.ndim}-D {a.dtype} array; expected a {ndim}-D integer array")
    n = len(arrays["target_ids"])
    if any(len(arrays[k]) != n for k in ARRAYS[:4]) or n != meta.get("n_queries"):
        raise DataError(f"{p}: the per-query arrays disagree on the number of queries ({n})")
    return Task(p, meta, arrays)


META: dict[str, type | tuple[type, ...]] = {
    "format_version": int, "dataset": dict, "dataset.path": str, "dataset.sha256": str, "split": str,
    "split_sha256": str, "n_queries": int, "recipe": dict,
}
"""The meta keys ``score`` reads, and their types."""


def _check_meta(meta: Any, p: Path) -> None:
    """Every key ``score`` reads is there with its type: one line naming the first that is not."""
    if not isinstance(meta, dict):
        raise DataError(f"{p}: task meta is not a JSON object")
    for key, typ in META.items():
        value: Any = meta
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            raise DataError(f"{p}: task meta lacks '{key}'; not an lvmbench task file (write one with lvmbench task)")
        if not isinstance(value, typ) or isinstance(value, bool):
            raise DataError(f"{p}: task meta '{key}' is {type(value).__name__} {value!r:.40}, expected "
                            f"{getattr(typ, '__name__', typ)}")
    if meta["split"] not in ("test", "val"):
        raise DataError(f"{p}: task meta 'split' is {meta['split']!r}, expected 'test' or 'val'")


def check_task(task: Task, prep: Prepared, recipe: Recipe) -> None:
    """The data rebuilt here must give the task's queries and pool exactly (else it is another task)."""
    split = task.meta["split"]
    if prep.report["split"]["sha256"] != task.meta["split_sha256"]:
        raise DataError(f"{task.path}: the split rebuilt from {prep.store.path} differs from the task's")
    rebuilt = make_task(prep, recipe, split)
    for key in ("target_ids", "pool_ids", "exclude_lo", "exclude_hi", "context_ids"):
        if not np.array_equal(rebuilt[key], task.arrays[key]):
            raise DataError(f"{task.path}: '{key}' differs from the one {prep.store.path} gives for this recipe")
