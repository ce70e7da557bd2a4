"""TREC run and qrels files, so trec_eval, pytrec_eval, ranx or ir_measures can re-score a run.

``run.trec`` holds, per query, the top-N pool candidates FAISS returns for the
model's predicted vector, with the query's excluded context vectors removed
(as in the headline ranks), one line each::

    qid Q0 docid rank score tag

``qrels.trec`` holds the single relevant item of each query (its true next
vector)::

    qid 0 docid 1

* ``qid`` is ``q<i>``: the i-th query of the run's ``predictions.npz``
  (``target_ids[i]``, ``queries[i]``, ``rank[i]`` …).
* ``docid`` is the global row of the candidate in the dataset's
  ``vectors.npy``, so docids mean the same thing in every run on that dataset.
* ``score`` is FAISS's float32 inner product, written with 9 significant
  digits (exactly the float32 value, so no two different scores print equal).

Two differences from lvmbench's own numbers, both by construction:

* **Truncation.** trec_eval's ``recip_rank`` over a top-N run is 0 for a
  query whose target is not in its top N; lvmbench's MRR is untruncated (the
  exact rank over the whole pool).  They agree when every target lies within N
  (``--depth 0`` writes every candidate).  ``success_K`` (= Hit@K) agrees for
  every K <= N.
* **Ties.** trec_eval orders equal scores by docid; lvmbench's rank counts only
  strictly greater scores, so a tie never hurts the target.  With continuous
  embeddings exact ties are rare; results.json counts them
  (``queries_with_ties``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np

from lvmbench.errors import DataError, UsageError
from lvmbench.io import atomic_open, atomic_write_json, sha256_arrays

RUN = "run.trec"
QRELS = "qrels.trec"
META = "trec.json"
DEFAULT_DEPTH = 100

Log = Callable[[str], None]


def exclusion_ranges(target_ids: np.ndarray, context_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the excluded global rows as a range ``[lo, hi)`` (contexts are consecutive rows).

    ``context_ids`` is ``[n, T]`` with -1 padding (predictions.npz's
    ``context_ids``); None excludes nothing.
    """
    target_ids = np.asarray(target_ids, dtype=np.int64)
    if context_ids is None or context_ids.size == 0:
        return target_ids.copy(), target_ids.copy()
    ctx = np.asarray(context_ids, dtype=np.int64)
    valid = ctx >= 0
    count = valid.sum(axis=1)
    big = np.iinfo(np.int64).max
    lo = np.where(count > 0, np.where(valid, ctx, big).min(axis=1), target_ids)
    hi = np.where(count > 0, np.where(valid, ctx, -1).max(axis=1) + 1, target_ids)
    if not np.array_equal(hi - lo, count):
        q = int(np.argmax(hi - lo != count))
        raise UsageError(f"context_ids of query {q} (qid q{q}) are not consecutive rows; "
                         "cannot turn them into exclusion ranges")
    return lo, hi


def write_trec(
    out_dir: str | Path,
    pred: np.ndarray,
    target_ids: np.ndarray,
    pool_ids: np.ndarray,
    pool_vectors: np.ndarray,
    context_ids: np.ndarray | None,
    depth: int = DEFAULT_DEPTH,
    tag: str = "lvmbench",
    block: int = 1024,
) -> dict[str, Any]:
    """Write ``run.trec`` (top-``depth`` per query; 0 = every candidate) and ``qrels.trec``.

    Candidates whose global row falls in the query's excluded range are
    removed before the top ``depth`` is taken.  Returns what ``trec.json`` records.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred = np.ascontiguousarray(pred, dtype=np.float32)
    target_ids = np.asarray(target_ids, dtype=np.int64)
    pool_ids = np.asarray(pool_ids, dtype=np.int64)
    n, size = len(target_ids), len(pool_ids)
    if pred.shape[0] != n:
        raise UsageError(f"{pred.shape[0]} query vectors for {n} targets")
    missing = ~np.isin(target_ids, pool_ids)
    if missing.any():
        q = int(np.argmax(missing))
        raise UsageError(f"query {q} (qid q{q}): its target row {target_ids[q]} is not in the pool")
    if any(ch.isspace() for ch in tag) or not tag:
        raise UsageError(f"TREC run tag {tag!r} must be one word")
    lo, hi = exclusion_ranges(target_ids, context_ids)
    n_excl = hi - lo
    depth = size if depth <= 0 else int(depth)
    k = int(min(size, depth + (int(n_excl.max()) if n else 0)))
    index = faiss.IndexFlatIP(pool_vectors.shape[1])
    index.add(np.ascontiguousarray(pool_vectors, dtype=np.float32))
    within = 0
    lines_written = 0
    with atomic_open(out / RUN, "w") as run_fh:
        for s in range(0, n, block):
            e = min(s + block, n)
            scores, pos = index.search(pred[s:e], k)
            rows = pool_ids[np.maximum(pos, 0)]
            keep = (pos >= 0) & ~((rows >= lo[s:e, None]) & (rows < hi[s:e, None]))
            for i in range(e - s):
                r, sc = rows[i][keep[i]][:depth], scores[i][keep[i]][:depth]
                within += int(np.any(r == target_ids[s + i]))
                qid = f"q{s + i}"
                run_fh.write("".join(
                    f"{qid} Q0 {int(doc)} {rank} {float(score):.9g} {tag}\n"
                    for rank, (doc, score) in enumerate(zip(r, sc), 1)
                ))
                lines_written += len(r)
    with atomic_open(out / QRELS, "w") as q_fh:
        q_fh.write("".join(f"q{i} 0 {int(t)} 1\n" for i, t in enumerate(target_ids)))
    return {
        "run": RUN,
        "qrels": QRELS,
        "tag": tag,
        "depth": depth,
        "n_queries": n,
        "lines": lines_written,
        "pool_size": size,
        "targets_within_depth": within,
        "context_excluded": context_ids is not None,
        "qid": "q<i> = the i-th query of predictions.npz",
        "docid": "global row of the candidate in the dataset's vectors.npy",
        "notes": "recip_rank over this run equals lvmbench's untruncated MRR only when every target is within "
        "depth; trec_eval orders equal scores by docid, lvmbench never counts a tie against the target",
    }


def export_run(
    run_dir: str | Path, out_dir: str | Path, depth: int = DEFAULT_DEPTH, data: str | None = None, log: Log = print,
) -> dict[str, Any]:
    """TREC files for a scored run directory (results.json + predictions.npz).

    The pool is rebuilt from the dataset (``data``, else the path results.json
    records) and must reproduce the pool sha256 the run recorded.
    """
    import zipfile

    from lvmbench.data.gates import unit_vectors
    from lvmbench.data.prepare import resolve_data
    from lvmbench.result import Result

    run_dir = Path(run_dir)
    result = Result.from_json(run_dir)
    if result.pool is not None and result.pool.bank:
        raise UsageError(f"{run_dir}: scored against an external bank (--bank); TREC export covers dataset pools only "
                         "(docids are dataset rows): export the eval without --bank")
    npz = run_dir / "predictions.npz"
    if not npz.is_file():
        raise UsageError(f"{npz}: not found; TREC export needs the run's per-query predictions")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("queries", "target_ids", "pool_ids", "context_ids", "excluded") if k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{npz}: not a readable predictions file ({exc})") from None
    missing = [k for k in ("queries", "target_ids", "pool_ids") if k not in arrays]
    if missing:
        raise UsageError(f"{npz}: lacks {', '.join(missing)}; not an lvmbench predictions file")
    recorded_sha = result.dataset.sha256 if result.dataset is not None else None
    store = resolve_data(data if data is not None else (result.dataset.path if result.dataset else None), log)
    if recorded_sha and store.sha256 != recorded_sha:
        raise DataError(f"{store.path}: dataset sha256 differs from the one {run_dir} was scored on")
    pool_ids = arrays["pool_ids"].astype(np.int64)
    vectors = np.ascontiguousarray(unit_vectors(store.vectors)[pool_ids], dtype=np.float32)
    want = result.pool.sha256 if result.pool is not None else None
    if want and sha256_arrays(pool_ids, vectors) != want:
        raise DataError(f"{store.path}: the rebuilt pool's sha256 differs from the one {run_dir} recorded")
    excluded = bool(arrays["excluded"]) if "excluded" in arrays else True
    tag = str(result.model_name or "lvmbench")
    meta = write_trec(out_dir, arrays["queries"], arrays["target_ids"], pool_ids, vectors,
                      arrays.get("context_ids") if excluded else None, depth, tag)
    meta.update({"source_run": str(run_dir), "pool_sha256": want, "dataset_sha256": store.sha256})
    atomic_write_json(Path(out_dir) / META, meta)
    top = "every candidate" if meta["depth"] >= meta["pool_size"] else f"top {meta['depth']} of {meta['pool_size']}"
    log(f"TREC files in {out_dir}: {RUN} ({top} per query, "
        f"{meta['n_queries']} queries, targets within the top {meta['depth']}: {meta['targets_within_depth']}), "
        f"{QRELS}")
    return meta


__all__ = ["write_trec", "export_run", "exclusion_ranges", "RUN", "QRELS", "DEFAULT_DEPTH"]
