"""``lvmbench data dedupe``: a copy of a chain store without the vectors that several chains share.

The leakage check (``split.check_leakage``) refuses a store in which a
val/test vector is bit-identical to a training one.  ``lvmbench data build``
never writes such a store (its vector rule drops them); a hand-made one may
hold some.  This writes a NEW store: every stored vector that occurs in two or
more chains goes, all its occurrences (the builder's rule: repeats inside one
chain stay, a chain never leaks into itself); chains left with fewer than
``min_length`` vectors go too (default 1: only emptied chains; the run's
``data.min_chain_len`` gate still applies later); ``texts.jsonl.gz`` is
filtered alongside; the manifest keeps the source's other entries and records
what was removed and the source's sha256.  The source is never modified.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lvmbench.data.corpus.duplicates import VectorDedup, dedupe_vectors
from lvmbench.data.corpus.texts import TEXTS, load_texts, texts_bytes, texts_manifest
from lvmbench.data.store import ChainStore, load_store, write_store
from lvmbench.errors import DataError, UsageError
from lvmbench.io import atomic_write

# Manifest entries write_store derives from the arrays, or that describe the source's files.
STORE_KEYS = ("format", "format_version", "dim", "dtype", "n_chains", "n_vectors", "chain_length", "files", "sha256",
              "texts")
RULE = ("every stored vector (bit-identical row, as the leakage check compares them) found in 2+ chains: all "
        "occurrences dropped, repeats inside one chain kept; then chains with fewer than min_length vectors dropped")


def check_paths(src: Path, out: Path, overwrite: bool) -> None:
    """Refuse, before anything is read or written, an ``out`` that could touch ``src`` or a store in the way."""
    if not src.is_dir():
        raise DataError(f"{src}: dataset directory not found")
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents or o in s.parents:
        raise UsageError(f"{out}: --out must be a new directory outside the source store {src} (never modified)")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: directory exists and is not empty (pass --overwrite to replace it)")


def _kept_texts(records: list[dict[str, Any]], plan: VectorDedup, offsets: np.ndarray) -> bytes:
    """The texts file of the new store: each kept chain's record, with the dropped units removed."""
    kept = []
    for c in np.flatnonzero(plan.chain_keep).tolist():
        rec, mask = records[c], plan.row_keep[offsets[c] : offsets[c + 1]]
        kept.append((rec["id"], rec.get("title", ""), [u for u, keep in zip(rec["units"], mask) if keep]))
    return texts_bytes(kept)


def _manifest(store: ChainStore, plan: VectorDedup, out: Path, name: str | None, min_length: int) -> dict[str, Any]:
    """The source's own entries (provenance, encoder, license...), narrowed to the kept chains, plus a record."""
    m = {k: v for k, v in store.manifest.items() if k not in STORE_KEYS}
    kept, dropped = np.flatnonzero(plan.chain_keep).tolist(), np.flatnonzero(~plan.chain_keep).tolist()
    ids = store.chain_ids()
    titles = m.pop("chain_titles", None)
    m["name"] = name or out.name
    m["chain_ids"] = [ids[c] for c in kept]
    if isinstance(titles, list) and len(titles) == store.n_chains:
        m["chain_titles"] = [titles[c] for c in kept]
    previous = m.pop("dedupe", None)
    m["dedupe"] = {
        "source": {"path": str(store.path), "name": store.name, "sha256": store.sha256,
                   "n_chains": store.n_chains, "n_vectors": store.n_vectors},
        "rule": RULE,
        "min_length": min_length,
        "removed_duplicate_vectors": plan.removed_rows,
        "duplicate_vector_values": plan.distinct_values,
        "dropped_short_chains": plan.dropped_chains,
        "dropped_chain_ids": [ids[c] for c in dropped],
        **({"previous": previous} if previous else {}),
    }
    return m


def _examples(store: ChainStore, plan: VectorDedup, records: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A few shared vectors: their rows, chains and positions, and the text when the store has texts."""
    ids, offsets = store.chain_ids(), store.offsets
    out = []
    for rows in plan.examples():
        chains = [int(np.searchsorted(offsets, r, side="right") - 1) for r in rows]
        positions = [r - int(offsets[c]) for r, c in zip(rows, chains)]
        text = records[chains[0]]["units"][positions[0]] if records is not None else None
        out.append({"rows": rows, "chains": [ids[c] for c in chains], "positions": positions, "text": text})
    return out


def _report(store: ChainStore, new: ChainStore, plan: VectorDedup, records: list[dict[str, Any]] | None,
            min_length: int) -> dict[str, Any]:
    return {
        "source": str(store.path), "source_sha256": store.sha256,
        "chains_in": store.n_chains, "vectors_in": store.n_vectors,
        "removed_duplicate_vectors": plan.removed_rows, "duplicate_vector_values": plan.distinct_values,
        "dropped_short_chains": plan.dropped_chains, "vectors_in_dropped_chains": plan.dropped_chain_rows,
        "min_length": min_length, "examples": _examples(store, plan, records),
        "out": str(new.path), "chains_kept": new.n_chains, "vectors_kept": new.n_vectors,
        "dtype": str(new.vectors.dtype), "dataset_sha256": new.sha256,
    }


def dedupe_store(
    src: str | Path, out: str | Path, min_length: int = 1, overwrite: bool = False, name: str | None = None
) -> tuple[ChainStore, dict[str, Any]]:
    """Write ``out``: the store at ``src`` without the vectors found in 2+ chains (see the module docstring)."""
    src, out = Path(src), Path(out)
    if min_length < 1:
        raise UsageError(f"min_length (--min-length) must be >= 1, got {min_length}")
    check_paths(src, out, overwrite)
    store = load_store(src)
    records = load_texts(store) if store.manifest.get("texts") else None
    plan = dedupe_vectors(store.vectors, store.offsets, min_length)
    if not plan.chain_keep.any():
        raise DataError(f"{src}: no chain keeps {min_length} vectors once the vectors shared by chains are dropped")
    manifest = _manifest(store, plan, out, name, min_length)
    blob = _kept_texts(records, plan, store.offsets) if records is not None else None
    if blob is not None:
        manifest["texts"] = texts_manifest(blob)
    new = write_store(out, np.asarray(store.vectors[plan.row_keep]), plan.offsets(), manifest, overwrite=overwrite)
    if blob is not None:
        atomic_write(out / TEXTS, lambda fh: fh.write(blob))
    return new, _report(store, new, plan, records, min_length)


def format_dedupe_report(r: dict[str, Any]) -> str:
    """Human-readable summary of a dedupe: what went, a few examples, what was written."""
    lines = [
        f"source: {r['source']}: {r['chains_in']} chains, {r['vectors_in']} vectors, "
        f"dataset sha256 {r['source_sha256'][:16]}…",
        f"removed {r['removed_duplicate_vectors']} vectors found in 2+ chains ({r['duplicate_vector_values']} "
        "distinct vectors; every occurrence, repeats inside one chain kept)",
        f"dropped {r['dropped_short_chains']} chains left with fewer than {r['min_length']} vectors "
        f"({r['vectors_in_dropped_chains']} more vectors)",
    ]
    for ex in r["examples"]:
        rows = ", ".join(f"row {row} (chain {c} #{p})" for row, c, p in
                         list(zip(ex["rows"], ex["chains"], ex["positions"]))[:4])
        more = f" and {len(ex['rows']) - 4} more" if len(ex["rows"]) > 4 else ""
        text = f': "{ex["text"][:60]}{"…" if len(ex["text"]) > 60 else ""}"' if ex["text"] is not None else ""
        lines.append(f"  shared: {rows}{more}{text}")
    lines.append(f"wrote {r['chains_kept']} chains, {r['vectors_kept']} vectors ({r['dtype']}) to {r['out']}, "
                 f"dataset sha256 {r['dataset_sha256'][:16]}…")
    return "\n".join(lines)
