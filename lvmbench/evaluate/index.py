"""The candidate pool and exact search over it.

The pool is fixed by contract (docs/contract.md, "Scoring"): every vector of the scored split's
chains (or of every chain with ``--pool full``), each once, L2-normalised,
plus, for ``lvmbench eval --bank``, every vector of an external bank.  Its
size and hash are recorded with every score, so "longer context helps" can
never again be a shrinking pool.

Search is FAISS's exact inner-product kernel (``faiss.knn``, the routine behind
``IndexFlatIP.search``) run directly on the pool's arrays, so the vectors are
held once: an ``IndexFlatIP`` would keep a second copy (the 1M x 768 memory
target).  A pool is a list of shards searched one after another with their
top-k lists merged (``faiss.merge_knn_results``), which gives exactly the
single-index result: a candidate's score does not depend on which shard holds
it.  Candidates come from FAISS's BLAS path, pinned (FAISS otherwise picks
its kernel by batch size, queries x dim, and small batches at 384-d ran on a
per-query kernel at 13-56 % of the machine's matmul rate); the returned pairs
are then rescored one by one, because a BLAS product can score two equal
vectors 1 ulp apart by their column, which would let a duplicate outrank its
target.  Reported scores thus depend only on the two vectors: not on the
batch, the sharding or the thread count.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import faiss
import numpy as np

from lvmbench.data.gates import unit_vectors
from lvmbench.errors import DataError, UsageError, first_line

BANK_BLOCK = 65_536
"""Rows per block when a bank is validated, normalised and copied in."""


@dataclass
class Bank:
    """An external set of extra candidates (``lvmbench eval --bank``)."""

    path: Path
    vectors: np.ndarray  # float32 [M, D] L2-normalised: the memory-mapped file itself when it already was
    sha256: str  # of the file
    mapped: bool  # True: searched straight from the memory-mapped file, no copy in RAM

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    def info(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "size": self.size,
                "dim": int(self.vectors.shape[1]), "memory_mapped": self.mapped}


@dataclass
class Pool:
    split: str
    ids: np.ndarray  # int64 [P] global row ids, ascending; bank row j has id n_vectors + j
    shards: list[np.ndarray]  # float32 [P_s, D] L2-normalised; their concatenation is the pool
    bank: Bank | None = None
    starts: np.ndarray = field(init=False)  # pool position of each shard's first vector
    _keys: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        sizes = [len(s) for s in self.shards]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if int(self.starts[-1]) != len(self.ids):
            raise AssertionError(f"shards hold {self.starts[-1]} vectors for {len(self.ids)} ids")

    @property
    def size(self) -> int:
        return int(len(self.ids))

    @property
    def dim(self) -> int:
        return int(self.shards[0].shape[1])

    @property
    def vectors(self) -> np.ndarray:
        """The pool as one array; only for a single-shard pool (the default)."""
        if len(self.shards) != 1:
            raise AssertionError("a sharded pool has no single array; iterate over pool.blocks()")
        return self.shards[0]

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(first pool position, shard array)`` for each shard."""
        for start, shard in zip(self.starts[:-1], self.shards):
            yield int(start), shard

    def shard_of(self, positions: np.ndarray) -> np.ndarray:
        return shard_index(self.starts, positions)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Pool positions of global rows; raises if any row is not in the pool."""
        rows = np.asarray(rows, dtype=np.int64)
        pos = np.searchsorted(self.ids, rows)
        ok = (pos < len(self.ids)) & (self.ids[np.minimum(pos, len(self.ids) - 1)] == rows)
        if not np.all(ok):
            missing = rows[~ok][:5].tolist()
            raise AssertionError(f"rows {missing} are not in the {self.split} pool")
        return pos

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """float32 ``[len(positions), D]``: the pool's vectors at these positions, whatever the sharding."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.empty((len(positions), self.dim), dtype=np.float32)
        which = self.shard_of(positions)
        for j in np.unique(which):
            sel = np.flatnonzero(which == j)
            out[sel] = self.shards[j][positions[sel] - self.starts[j]]
        return out

    def keys(self) -> np.ndarray:
        """uint64 ``[P]``: a key per candidate, equal for bit-identical vectors (cached; see :func:`row_keys`)."""
        if self._keys is None:
            self._keys = np.concatenate([row_keys(shard) for _, shard in self.blocks()])
        return self._keys

    def sha256(self) -> str:
        """Hash of ids and vectors; the same for any sharding of the same pool."""
        h = hashlib.sha256()
        ids = np.ascontiguousarray(self.ids)
        h.update(f"{ids.dtype.str}{ids.shape}".encode())
        h.update(memoryview(ids).cast("B"))
        h.update(f"{np.dtype(np.float32).str}{(self.size, self.dim)}".encode())
        for _, shard in self.blocks():
            for s in range(0, len(shard), BANK_BLOCK):
                h.update(memoryview(np.ascontiguousarray(shard[s : s + BANK_BLOCK])).cast("B"))
        return h.hexdigest()


KEY_BLOCK = 8192
"""Rows per block when row keys are computed (a block's uint64 copy is ~25 MB at 384-d)."""


def row_keys(vectors: np.ndarray) -> np.ndarray:
    """uint64 ``[n]``: a random linear hash of each row's float32 bits, for finding bit-identical rows.

    Equal rows get equal keys; two different rows collide with probability
    about 2**-64, and callers confirm a key match by comparing the rows, so a
    collision can cost time, never a wrong answer.  One multiply-add pass:
    ~1 s per million 384-d rows.
    """
    n, dim = vectors.shape
    weights = np.random.default_rng(0x5EED).integers(1, 2**63, size=dim, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    out = np.empty(n, dtype=np.uint64)
    for s in range(0, n, KEY_BLOCK):
        bits = np.ascontiguousarray(vectors[s : s + KEY_BLOCK], dtype=np.float32).view(np.uint32)
        out[s : s + KEY_BLOCK] = (bits.astype(np.uint64) * weights).sum(axis=1)  # wraps mod 2**64, as intended
    return out


def shard_index(starts: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Which shard holds each pool position, given the shards' first positions (and the end)."""
    return np.searchsorted(starts, positions, side="right") - 1


def shard_rows(shard_size: int) -> int:
    """``shard_size`` rounded up to a whole number of FAISS's database blocks (0 stays 0).

    FAISS's BLAS kernel scores the database in blocks of
    ``distance_compute_blas_database_bs`` (1,024) rows, and a row's score can
    differ in the last bit with its place in a block; shards cut on block
    boundaries score every pair exactly as one flat pool does.
    """
    if shard_size <= 0:
        return 0
    bs = int(faiss.cvar.distance_compute_blas_database_bs)
    return -(-shard_size // bs) * bs


def _split(vectors: np.ndarray, shard_size: int) -> list[np.ndarray]:
    """Views of ``vectors`` in pieces of at most ``shard_size`` rows (0: one piece)."""
    shard_size = shard_rows(shard_size)
    if shard_size <= 0 or len(vectors) <= shard_size:
        return [vectors]
    return [vectors[s : s + shard_size] for s in range(0, len(vectors), shard_size)]


def build_pool(
    unit: np.ndarray, offsets: np.ndarray, chains: np.ndarray, split: str,
    bank: Bank | None = None, shard_size: int = 0,
) -> Pool:
    """All vectors of ``chains`` (ascending row order), then the bank's, as searchable shards.

    ``shard_size`` > 0 cuts the dataset part and the bank into shards of at
    most that many vectors, rounded up to whole FAISS blocks (:func:`shard_rows`;
    views, no copies); 0 keeps each part whole.  The bank always starts a
    shard of its own, so sharded and unsharded searches score every
    (query, candidate) pair bit for bit alike.
    """
    ids = np.concatenate([np.arange(offsets[c], offsets[c + 1]) for c in chains]).astype(np.int64)
    ids.sort()
    if len(ids) == len(unit) and (len(ids) == 0 or (ids[0] == 0 and ids[-1] == len(unit) - 1)):
        # every row, in order (--pool full): share the float32 array instead of copying it
        vectors = np.ascontiguousarray(unit, dtype=np.float32)
    else:
        vectors = np.ascontiguousarray(unit[ids], dtype=np.float32)
    shards = _split(vectors, shard_size)
    if bank is not None:
        if bank.vectors.shape[1] != vectors.shape[1]:
            raise UsageError(
                f"{bank.path}: bank vectors have dim {bank.vectors.shape[1]}, the dataset {vectors.shape[1]}"
            )
        ids = np.concatenate([ids, len(unit) + np.arange(bank.size, dtype=np.int64)])
        shards += _split(bank.vectors, shard_size)
    return Pool(split=split, ids=ids, shards=shards, bank=bank)


def load_bank(path: str | Path, dim: int | None = None, log=print) -> Bank:
    """Open a bank: an ``.npy`` file of ``[M, D]`` float16/float32 vectors, or a chain store's directory.

    The file is memory-mapped and checked block by block (finite, non-zero
    rows).  A float32 bank already L2-normalised is searched in place; any
    other is normalised block by block into one float32 array, so no step
    holds more than the bank once plus a block.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "vectors.npy"
    if not p.is_file():
        raise UsageError(f"{path}: bank not found (an .npy file of [N, D] vectors, or a chain-store directory)")
    try:
        raw = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{p}: not a readable .npy array ({first_line(exc)})") from None
    if raw.ndim != 2 or raw.shape[0] == 0 or raw.dtype not in (np.float16, np.float32):
        raise DataError(f"{p}: a bank must be a non-empty [N, D] float16/float32 array, got {raw.dtype} {raw.shape}")
    if dim is not None and raw.shape[1] != dim:
        raise DataError(f"{p}: bank vectors have dim {raw.shape[1]} but the dataset and model use {dim}")
    n = raw.shape[0]
    normalised = raw.dtype == np.float32
    h = hashlib.sha256()
    for s in range(0, n, BANK_BLOCK):
        block = np.asarray(raw[s : s + BANK_BLOCK], dtype=np.float32)
        h.update(memoryview(np.ascontiguousarray(raw[s : s + BANK_BLOCK])).cast("B"))
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            raise DataError(f"{p}: row {s + int(np.argmax(bad))} has NaN or Inf")
        norms = np.linalg.norm(block.astype(np.float64), axis=1)  # float64: a 1e30 row's square fits
        if (norms == 0).any():
            raise DataError(f"{p}: row {s + int(np.argmax(norms == 0))} is all zeros (no direction to score)")
        normalised = normalised and bool(np.all(np.abs(norms - 1.0) <= 1e-5))
    if normalised:
        vectors: np.ndarray = raw
    else:
        log(f"bank {p}: {n:,} vectors are not float32 unit vectors; normalising into memory "
            f"({n * raw.shape[1] * 4 / 1e9:.2f} GB)")
        vectors = unit_vectors(raw, block=BANK_BLOCK)
    return Bank(path=p, vectors=vectors, sha256=h.hexdigest(), mapped=normalised)


PAIRWISE_POOL_MAX = 4096
PAIRWISE_K_MIN = 512
"""Pools up to PAIRWISE_POOL_MAX searched for at least PAIRWISE_K_MIN results per query use FAISS's
per-pair kernel directly (no rescoring needed); every other search its BLAS kernel plus rescoring of
the returned pairs.  Both give each pair the same score; the choice only trades speed: rescoring
k pairs per query costs more than the per-pair kernel's scan of a small pool when k is deep, and the
BLAS kernel is 2x faster when k is short (measured 2026-12-06, 3,874 queries x 3,936 candidates)."""


@contextlib.contextmanager
def blas_kernel(on: bool = True) -> Iterator[None]:
    """Pin FAISS's exact search to its BLAS kernel (or, ``on=False``, its per-pair kernel) for the duration.

    Not thread-safe: the threshold is a FAISS global; lvmbench searches from one thread.
    """
    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = 1 if on else 2**31 - 1
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


def _knn(queries: np.ndarray, shard: np.ndarray, k: int, blas: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """FAISS exact inner-product top-k of one shard, padded to ``k`` columns (-inf, -1)."""
    kk = min(k, len(shard))
    with blas_kernel(blas):
        scores, ids = faiss.knn(queries, shard, kk, metric=faiss.METRIC_INNER_PRODUCT)
    if kk < k:
        scores = np.pad(scores, ((0, 0), (0, k - kk)), constant_values=-np.inf)
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
    return scores, ids


RESCORE_TOL = 1e-5
"""How far a BLAS score may sit from the per-pair score of the same pair (observed: a few ulps)."""


def _rescore(pool: Pool, q: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each returned (query, candidate) pair's score from FAISS's per-pair kernel (``-inf`` for id -1).

    A BLAS product's value for a pair can depend on the candidate's column in
    the block: two exact-duplicate candidates measured 1 ulp apart, so a
    duplicate of the target could outrank it.  ``fvec_inner_products_by_idx``
    computes each pair on its own (what FAISS's per-query kernel computes), so
    equal vectors score equally wherever they sit, in any batch, shard or
    thread count.
    """
    out = np.full(ids.shape, -np.inf, dtype=np.float32)
    for start, shard in pool.blocks():
        local = np.where((ids >= start) & (ids < start + len(shard)), ids - start, -1).astype(np.int64)
        if not (local >= 0).any():
            continue
        part = np.empty(ids.shape, dtype=np.float32)
        base = np.ascontiguousarray(shard, dtype=np.float32)
        local = np.ascontiguousarray(local)
        faiss.fvec_inner_products_by_idx(faiss.swig_ptr(part), faiss.swig_ptr(q), faiss.swig_ptr(base),
                                         faiss.swig_ptr(local), q.shape[1], q.shape[0], ids.shape[1])
        np.copyto(out, part, where=local >= 0)
    return out


def pair_scores(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``<queries[i], vectors[i]>`` for each row pair, by FAISS's per-pair kernel (the scores ``search`` returns)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    out = np.empty(len(q), dtype=np.float32)
    if len(q):
        ids = np.arange(len(q), dtype=np.int64)
        faiss.fvec_inner_products_by_idx(faiss.swig_ptr(out), faiss.swig_ptr(q), faiss.swig_ptr(v),
                                         faiss.swig_ptr(ids), q.shape[1], len(q), 1)
    return out


def search(pool: Pool, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over the whole pool: ``(scores [n, k], pool positions [n, k])``, best first.

    Candidates come from FAISS's BLAS kernel, shard by shard (shards are the
    outer loop, each shard's top-k merged into the running one, so a shard is
    read once per 4,096 queries, FAISS's BLAS query block); the returned scores
    are then each pair's own (:func:`_rescore`), so they depend on nothing but
    the two vectors.  Pools of at most :data:`PAIRWISE_POOL_MAX` vectors are
    searched with the per-pair kernel itself, which gives the same scores.
    Rows are ordered by that score, descending, equal scores by ascending pool
    position.  A pair within :data:`RESCORE_TOL` of the k-th place may be
    missing from the list; ``faiss_ranks`` sends a target that close to the
    boundary to its exact count.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    # by the pool's size and k, so the same for any sharding of it
    blas = pool.size > PAIRWISE_POOL_MAX or k < PAIRWISE_K_MIN
    best_s = best_i = None
    for start, shard in pool.blocks():
        scores, ids = _knn(q, shard, k, blas)
        ids = np.where(ids >= 0, ids + start, -1)
        if best_s is None:
            best_s, best_i = scores, ids
        else:
            best_s, best_i = faiss.merge_knn_results(np.stack([best_s, scores]), np.stack([best_i, ids]), keep_max=True)
    assert best_s is not None and best_i is not None
    if blas:
        best_s = _rescore(pool, q, best_i)
    # re-sort only the rows that need it: not strictly descending after rescoring, or holding equal scores
    unsorted = np.flatnonzero((best_s[:, 1:] >= best_s[:, :-1]).any(axis=1))
    if len(unsorted):
        s_t, i_t = best_s[unsorted], best_i[unsorted]
        order = np.argsort(_score_then_position(s_t, i_t), axis=-1)
        best_s[unsorted], best_i[unsorted] = np.take_along_axis(s_t, order, -1), np.take_along_axis(i_t, order, -1)
    return best_s, best_i


def _score_then_position(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """One uint64 key per entry ordering by score descending, then position ascending (-1 last).

    The float32 bits are mapped to an unsigned integer in score order (sign
    bit flipped for positives, all bits for negatives) and inverted for
    descending order; one integer sort is ~7x faster than ``np.lexsort``.
    """
    u = np.ascontiguousarray(scores, dtype=np.float32).view(np.uint32)
    ascending = np.where(u & np.uint32(0x80000000), ~u, u | np.uint32(0x80000000))
    return ((~ascending).astype(np.uint64) << np.uint64(32)) | (ids.astype(np.uint64) & np.uint64(0xFFFFFFFF))
