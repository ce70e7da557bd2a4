"""The build: parse, filter, encode (resumably), then write the store, its texts and manifest.

Cost of one document.  Parsing is linear in the document's size (the HTML
parser keeps counters instead of scanning its open elements, and closes
unclosed ``<li>``/``<dd>``/``<td>``... as HTML implies), and reading one
document - bytes, decoded text, paragraph split, sentence split,
whitespace normalisation - allocates at most ``MEMORY_MULTIPLE`` (5) times
its size on top of the documents already read (measured with tracemalloc
on one 5 MB line: 3x for text, Markdown and reST, 4x for HTML and JSONL),
plus Python's ~50-100 bytes per string for a document of many tiny units.
No unit longer than ``max_unit_chars`` (default 4,000 characters) reaches
the duplicate rule, the encoding cache or the encoder: it is dropped and
counted (``dropped_long_units``), so the tokenizer never sees a
document-sized text (one 50 MB line used to peak at 6.7 GB there).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lvmbench.data.corpus.document import Document
from lvmbench.data.corpus.duplicates import dedupe_vectors
from lvmbench.data.corpus.encoding import encode_documents
from lvmbench.data.corpus.select import MAX_UNIT_CHARS, scan_corpus, summarise
from lvmbench.data.corpus.texts import TEXTS, texts_bytes, texts_manifest
from lvmbench.data.encoders import Encoder, get_encoder
from lvmbench.data.store import ChainStore, write_store
from lvmbench import workdir
from lvmbench.errors import DataError, UsageError
from lvmbench.io import atomic_write

CORPUS_VERSION = 3  # bump when parsing or filtering changes the units produced
DTYPES = ("float16", "float32")
MEMORY_MULTIPLE = 5  # peak bytes allocated while reading one document, per byte of it (module docstring)
COUNT_KEYS = (
    "skipped_binary_files", "documents_not_utf8", "documents_found", "paragraphs_found", "units_found",
    "dropped_long_units", "dropped_short_units", "dropped_short_documents",
    "dropped_long_documents", "documents_over_max_docs", "dropped_duplicate_units", "duplicate_texts",
    "dropped_short_documents_after_dedup", "removed_duplicate_vectors", "duplicate_vector_values",
    "dropped_short_documents_after_vector_dedup", "documents_kept", "units_kept",
)


@dataclass(frozen=True)
class BuildOptions:
    """Every setting of a build; the defaults are ``lvmbench data build``'s."""

    encoder: str | Encoder = "minilm"
    unit: str = "paragraph"
    min_words: int = 8
    min_paragraphs: int = 7
    max_paragraphs: int | None = None
    max_docs: int | None = None
    max_unit_chars: int = MAX_UNIT_CHARS  # longer units are dropped and counted (select's docstring says why)
    include: Sequence[str] | None = None
    exclude: Sequence[str] | None = None
    dtype: str = "float16"
    cache_dir: str | Path | None = None  # None: <out>.cache, deleted after success; else kept
    batch_size: int = 64
    device: str = "cpu"
    name: str | None = None
    license: str | None = None
    source_info: dict[str, Any] | None = None
    save_texts: bool = True
    overwrite: bool = False
    progress: bool | None = None  # None: a bar on a terminal, a line now and then through ``log`` elsewhere
    log: Callable[[str], None] | None = None

    def filters(self) -> dict[str, Any]:
        """The keyword arguments of ``scan_corpus`` (shared by the build and the dry run)."""
        return {"unit": self.unit, "min_words": self.min_words, "min_paragraphs": self.min_paragraphs,
                "max_docs": self.max_docs, "include": _globs(self.include), "exclude": _globs(self.exclude),
                "max_paragraphs": self.max_paragraphs, "max_unit_chars": self.max_unit_chars}


def _globs(patterns: Sequence[str] | None) -> list[str] | None:
    return list(patterns) if patterns else None


def _check_target(out: Path, o: BuildOptions) -> None:
    """Refuse bad settings and an occupied ``out`` before any parsing or encoding is spent."""
    if o.dtype not in DTYPES:
        raise UsageError(f"dtype must be float16 or float32, got {o.dtype!r}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not o.overwrite:
        raise DataError(f"{out}: directory exists and is not empty (pass --overwrite to replace it)")


def _encoder(o: BuildOptions) -> Encoder:
    if not isinstance(o.encoder, str):
        return o.encoder
    return get_encoder(o.encoder, **({"device": o.device} if o.device != "cpu" else {}))


def stored_vectors(arrays: list[np.ndarray], encoder_name: str, dtype: str) -> np.ndarray:
    """The rows exactly as the store will hold them: L2-normalised, then cast to ``dtype``."""
    vectors = np.concatenate(arrays).astype(np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms <= 1e-12):
        raise DataError(f"encoder {encoder_name}: produced a zero or non-finite vector")
    return (vectors / norms).astype(np.float16 if dtype == "float16" else np.float32)


def _offsets(docs: list[Document]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([len(d.units) for d in docs])]).astype(np.int64)


def drop_shared_vectors(
    docs: list[Document], vectors: np.ndarray, min_paragraphs: int
) -> tuple[list[Document], np.ndarray, dict[str, int]]:
    """Filters 6-7: units whose stored vector is in 2+ documents go, then documents that fell too short.

    Texts that differ only in case or spacing can encode to one vector, which
    the text rule cannot see and the leakage check refuses.  ``vectors`` are
    the rows as stored; the documents' unit lists shrink to match.
    """
    plan = dedupe_vectors(vectors, _offsets(docs), min_paragraphs)
    masks = np.split(plan.row_keep, np.cumsum([len(d.units) for d in docs])[:-1])
    kept = [Document(d.id, d.title, d.paragraphs, [u for u, keep in zip(d.units, mask) if keep])
            for d, mask, keep_doc in zip(docs, masks, plan.chain_keep) if keep_doc]
    counts = {"removed_duplicate_vectors": plan.removed_rows, "duplicate_vector_values": plan.distinct_values,
              "dropped_short_documents_after_vector_dedup": plan.dropped_chains}
    return kept, vectors[plan.row_keep], counts


def _cleanup(o: BuildOptions) -> dict[str, Any]:
    """The manifest's record of every setting that shaped the units."""
    f = o.filters()
    return {
        "corpus_version": CORPUS_VERSION,
        "min_words": o.min_words,
        "min_paragraphs": o.min_paragraphs,
        "max_paragraphs": o.max_paragraphs,
        "max_docs": o.max_docs,
        "max_unit_chars": o.max_unit_chars,
        "include": f["include"],
        "exclude": f["exclude"],
        "dedup": "unit texts (whitespace-normalised, case-sensitive) found in 2+ documents: all occurrences dropped",
        "dedup_vectors": "then units whose stored vector (bit-identical after the dtype cast, as the leakage check "
                         "compares them) is found in 2+ documents: all occurrences dropped, min_paragraphs re-applied",
        "html_units": "text between block tags (p, li, dd...); dropped: head, script, style, pre, code blocks, "
                      "table, nav, header, footer, aside, form, figure, headings, dt, sidebar/related/navigation; "
                      "only the main region (main, role=main, div.body) when present",
        "text_units": "blank-line-separated blocks; md/rst markup, code, tables, headings and directives removed",
        "sentence_split": "regex after . ! ? ... + whitespace + capital/digit; not after single letters or "
                          "common abbreviations" if o.unit == "sentence" else None,
    }


def _manifest(src: str | Path, out: Path, docs: list[Document], report: dict[str, Any], encoder: Encoder,
              o: BuildOptions) -> dict[str, Any]:
    info = o.source_info or {}
    return {
        "name": o.name or out.name,
        "source": {"path": str(src), "kind": report["source_kind"], **info},
        "license": o.license or info.get("license") or "unknown (not stated at build time)",
        "encoder": encoder.name,
        "encoder_info": encoder.info(),
        "unit": o.unit,
        "normalisation": "l2",
        "cleanup": _cleanup(o),
        "counts": {k: report[k] for k in COUNT_KEYS},
        "source_files_noted": {"skipped_binary": report["skipped_binary_examples"],
                               "not_utf8": report["not_utf8_examples"]},
        "units_per_document": report["units_per_document"],
        "words_per_unit": report["words_per_unit"],
        "chain_ids": [d.id for d in docs],
        "chain_titles": [d.title for d in docs],
    }


def _write(out: Path, vectors: np.ndarray, docs: list[Document], manifest: dict[str, Any],
           o: BuildOptions) -> ChainStore:
    """The store, then its texts file (whose hash the manifest already carries)."""
    blob = texts_bytes((d.id, d.title, d.units) for d in docs) if o.save_texts else None
    if blob is not None:
        manifest["texts"] = texts_manifest(blob)
    store = write_store(out, vectors, _offsets(docs), manifest, overwrite=o.overwrite)
    if blob is not None:
        atomic_write(out / TEXTS, lambda fh: fh.write(blob))
    return store


def build_corpus(
    src: str | Path, out: str | Path, options: BuildOptions | None = None, **overrides: Any
) -> tuple[ChainStore, dict[str, Any]]:
    """Parse ``src``, filter, encode (resumably) and write a chain store to ``out``.

    Settings are ``options`` with keyword overrides on top, so both
    ``build_corpus(src, out, BuildOptions(...))`` and
    ``build_corpus(src, out, encoder="hash", min_words=3)`` work.  The output
    (and the encoding cache) are locked for the whole build, before the cache
    exists: a second build of the same ``out`` is refused at once, naming the
    first, and leaves nothing behind.
    """
    if options is not None and not isinstance(options, BuildOptions):
        raise TypeError(f"options must be a BuildOptions, got {type(options).__name__}")
    o = replace(options or BuildOptions(), **overrides)
    out = Path(out)
    cache = Path(o.cache_dir) if o.cache_dir is not None else out.with_name(out.name + ".cache")
    workdir.acquire(out, sibling=True)
    try:
        workdir.acquire(cache, sibling=True)
        try:
            return _build(src, out, cache, o)
        finally:
            workdir.release(cache, sibling=True)
    finally:
        workdir.release(out, sibling=True)


def _build(src: str | Path, out: Path, cache: Path, o: BuildOptions) -> tuple[ChainStore, dict[str, Any]]:
    _check_target(out, o)
    docs, report = scan_corpus(src, **o.filters())
    encoder = _encoder(o)
    arrays, enc_stats = encode_documents(docs, encoder, cache, batch_size=o.batch_size, progress=o.progress,
                                          log=o.log)
    docs, vectors, vector_counts = drop_shared_vectors(docs, stored_vectors(arrays, encoder.name, o.dtype),
                                                       o.min_paragraphs)
    if not docs:
        raise DataError(f"{src}: no document kept: all fell below {o.min_paragraphs} units once the units whose "
                        "vector also occurs in another document were dropped")
    report.update({**vector_counts, **summarise(docs)})
    store = _write(out, vectors, docs, _manifest(src, out, docs, report, encoder, o), o)
    if o.cache_dir is None:
        shutil.rmtree(cache, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    report.update({"encoder": encoder.name, "unit": o.unit, "dtype": o.dtype, "encoding": enc_stats,
                   "out": str(out), "bytes": size, "dataset_sha256": store.sha256,
                   "cache": None if o.cache_dir is None else str(cache)})
    return store, report
