"""Unit selection: the text filters (1-5) of the package docstring, in their order, each counted.

The vector rule (6-7) needs the encoded rows, so it runs in ``build``.

Filter 1 also drops a unit longer than ``max_unit_chars`` characters
(default ``MAX_UNIT_CHARS``), before its words are counted.  Dropped rather
than split: MiniLM reads at most 256 word pieces (about 1,000-1,300
characters of English), so a vector could never stand for such a unit, and
cutting it at arbitrary points would invent paragraphs the document does
not have.  Units that long are in practice not prose (minified text, data
dumps, one-line files), and they are what made one 50 MB line cost
gigabytes in the encoder's tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lvmbench.data.corpus.document import Document
from lvmbench.data.describe import distribution
from lvmbench.data.corpus.duplicates import shared_keys
from lvmbench.data.corpus.sources import SourceNotes, load_documents
from lvmbench.data.corpus.textutils import n_words, split_sentences
from lvmbench.errors import DataError, UsageError

UNITS = ("paragraph", "sentence")
MAX_UNIT_CHARS = 4000  # well above the ~1,000-1,300 characters MiniLM's 256-token window reads


def _check_settings(unit: str, min_words: int, min_paragraphs: int, max_docs: int | None,
                    max_paragraphs: int | None, max_unit_chars: int) -> None:
    if unit not in UNITS:
        raise UsageError(f"unit must be 'paragraph' or 'sentence', got {unit!r}")
    if min_words < 0 or min_paragraphs < 1 or (max_docs is not None and max_docs < 1):
        raise UsageError("need min_words >= 0, min_paragraphs >= 1 and max_docs >= 1")
    if max_paragraphs is not None and max_paragraphs < min_paragraphs:
        raise UsageError(f"max_paragraphs ({max_paragraphs}) must be >= min_paragraphs ({min_paragraphs})")
    if max_unit_chars < 1:
        raise UsageError(f"max_unit_chars must be >= 1, got {max_unit_chars}")


def raw_units(doc: Document, unit: str) -> list[str]:
    """A document's units before any filter: its paragraphs, or their sentences."""
    return doc.paragraphs if unit == "paragraph" else [s for p in doc.paragraphs for s in split_sentences(p)]


def _length_filter(docs: list[Document], unit: str, min_words: int, min_paragraphs: int,
                   max_paragraphs: int | None, max_unit_chars: int) -> tuple[list[Document], dict[str, int]]:
    """Filters 1-2: over-long and short units go, then documents with too few (or too many) units."""
    units_found = dropped_long = dropped_short = short_docs = long_docs = 0
    candidates = []
    for d in docs:
        raw = raw_units(d, unit)
        units_found += len(raw)
        fit = [u for u in raw if len(u) <= max_unit_chars]
        kept = [u for u in fit if n_words(u) >= min_words]
        dropped_long += len(raw) - len(fit)
        dropped_short += len(fit) - len(kept)
        if len(kept) < min_paragraphs:
            short_docs += 1
        elif max_paragraphs is not None and len(kept) > max_paragraphs:
            long_docs += 1
        else:
            candidates.append(Document(d.id, d.title, d.paragraphs, kept))
    return candidates, {"units_found": units_found, "dropped_long_units": dropped_long,
                        "dropped_short_units": dropped_short, "dropped_short_documents": short_docs,
                        "dropped_long_documents": long_docs}


def _drop_boilerplate(docs: list[Document], min_paragraphs: int) -> tuple[list[Document], dict[str, int]]:
    """Filters 4-5: unit texts found in 2+ documents go, then documents that fell too short."""
    boiler = shared_keys(d.units for d in docs)
    dropped = short_after = 0
    kept_docs = []
    for d in docs:
        units = [u for u in d.units if u not in boiler]
        dropped += len(d.units) - len(units)
        if len(units) < min_paragraphs:
            short_after += 1
            continue
        kept_docs.append(Document(d.id, d.title, d.paragraphs, units))
    return kept_docs, {"dropped_duplicate_units": dropped, "duplicate_texts": len(boiler),
                       "dropped_short_documents_after_dedup": short_after}


def summarise(docs: list[Document]) -> dict[str, Any]:
    """The kept-side counts of a report: documents, units and their distributions."""
    lengths = np.array([len(d.units) for d in docs], dtype=np.int64)
    words = np.array([n_words(u) for d in docs for u in d.units], dtype=np.int64)
    return {
        "documents_kept": len(docs),
        "units_kept": int(lengths.sum()) if len(lengths) else 0,
        "units_per_document": distribution(lengths),
        "words_per_unit": distribution(words),
    }


def select_units(
    docs: list[Document],
    unit: str = "paragraph",
    min_words: int = 8,
    min_paragraphs: int = 7,
    max_docs: int | None = None,
    max_paragraphs: int | None = None,
    max_unit_chars: int = MAX_UNIT_CHARS,
) -> tuple[list[Document], dict[str, Any]]:
    """Apply the text filters of the package docstring (1-5); fills ``Document.units``."""
    _check_settings(unit, min_words, min_paragraphs, max_docs, max_paragraphs, max_unit_chars)
    r: dict[str, Any] = {"documents_found": len(docs), "paragraphs_found": sum(len(d.paragraphs) for d in docs)}
    candidates, counts = _length_filter(docs, unit, min_words, min_paragraphs, max_paragraphs, max_unit_chars)
    over = candidates[max_docs:] if max_docs is not None else []
    candidates = candidates[:max_docs] if max_docs is not None else candidates
    kept_docs, dedup = _drop_boilerplate(candidates, min_paragraphs)
    r.update(counts)
    r["documents_over_max_docs"] = len(over)
    r.update(dedup)
    r.update(summarise(kept_docs))
    return kept_docs, r


def scan_corpus(
    src: str | Path,
    unit: str = "paragraph",
    min_words: int = 8,
    min_paragraphs: int = 7,
    max_docs: int | None = None,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    max_paragraphs: int | None = None,
    max_unit_chars: int = MAX_UNIT_CHARS,
) -> tuple[list[Document], dict[str, Any]]:
    """Parse and filter without encoding: the kept documents and the counts (files skipped or read as Latin-1 too)."""
    notes = SourceNotes()
    docs, kind = load_documents(src, include, exclude, notes)
    kept, report = select_units(docs, unit, min_words, min_paragraphs, max_docs, max_paragraphs, max_unit_chars)
    report = {"source": str(src), "source_kind": kind, **notes.counts(), **report}
    if not kept:
        raise DataError(f"{src}: no document kept ({report['documents_found']} found; "
                        f"{report['dropped_short_documents']} had fewer than {min_paragraphs} units of >= "
                        f"{min_words} words and <= {max_unit_chars} characters"
                        + (f"; {len(notes.binary)} binary files skipped" if notes.binary else "") + ")")
    return kept, report
