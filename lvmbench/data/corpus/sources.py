"""Finding and reading the documents of a source, in a deterministic order.

A folder is walked for the suffixes of the format registry (each also
gzip-compressed); hidden files and folders are skipped; documents are taken in
sorted relative-path order (POSIX separators).  ``include``/``exclude`` are
shell globs (``fnmatch``, ``*`` crosses ``/``) matched against the relative
path with and without its ``.gz``.  A JSONL file is read in line order.

A file whose first ``BINARY_SAMPLE`` bytes (after gunzip) hold a NUL byte or
more than ``CONTROL_SHARE`` control characters (other than tab, newline,
carriage return, form feed, vertical tab and escape) is binary whatever its
name says: a folder source skips it, a single-file source is an error.  A
file that is not valid UTF-8 is read as Latin-1, as before, and listed.
Both are counted (``SourceNotes``) so the build report says what was
skipped or guessed instead of encoding garbage silently.
"""

from __future__ import annotations

import fnmatch
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lvmbench.data.corpus.document import Document
from lvmbench.data.corpus.formats import format_for, suffix_summary
from lvmbench.data.corpus.formats.jsonl import is_jsonl, read_jsonl
from lvmbench.errors import DataError


BINARY_SAMPLE = 8192
CONTROL_SHARE = 0.1
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27)) + b"\x7f"
EXAMPLES = 5  # file names listed per kind of note


class BinaryFileError(DataError):
    """A document file whose content is binary (skipped in a folder, an error as the whole source)."""


@dataclass
class SourceNotes:
    """Files a source read with a caveat: skipped as binary, or decoded as Latin-1 (not UTF-8)."""

    binary: list[str] = field(default_factory=list)
    not_utf8: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """The report's entries: both counts, and the first ``EXAMPLES`` names of each."""
        return {"skipped_binary_files": len(self.binary), "documents_not_utf8": len(self.not_utf8),
                "skipped_binary_examples": self.binary[:EXAMPLES], "not_utf8_examples": self.not_utf8[:EXAMPLES]}


def looks_binary(raw: bytes) -> bool:
    """Whether the start of a file's bytes is binary: a NUL byte, or many control characters."""
    sample = raw[:BINARY_SAMPLE]
    if b"\0" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    return controls > CONTROL_SHARE * len(sample)


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    """Whether ``rel`` (or ``rel`` without ``.gz``) matches one of the globs."""
    names = {rel, rel[:-3]} if rel.endswith(".gz") else {rel}
    return any(fnmatch.fnmatchcase(name, pat) for name in names for pat in patterns)


def _selected(rel: str, include: Sequence[str] | None, exclude: Sequence[str] | None) -> bool:
    return (not include or _matches(rel, include)) and not (exclude and _matches(rel, exclude))


def discover(src: str | Path, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None) -> list[str]:
    """Relative POSIX paths of the documents under ``src``, sorted."""
    src = Path(src)
    found = []
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith("."):
                continue
            rel = (Path(root) / name).relative_to(src).as_posix()
            if format_for(rel) is not None and _selected(rel, include, exclude):
                found.append(rel)
    return sorted(found)


def _decoded(path: Path) -> tuple[str, bool]:
    """The text of a file (gunzipped by name) and whether it was UTF-8 (with or without BOM), else Latin-1."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if looks_binary(raw):
        raise BinaryFileError(f"{path}: binary content (a NUL byte or over {CONTROL_SHARE:.0%} control characters "
                              f"in the first {BINARY_SAMPLE // 1024} KiB), not a text document")
    try:
        return raw.decode("utf-8-sig"), True
    except UnicodeDecodeError:
        return raw.decode("latin-1"), False


def read_document(path: str | Path, rel: str | None = None, notes: SourceNotes | None = None) -> Document:
    """Parse one file (by its extension, ``.gz`` allowed) into a Document.

    Binary content raises ``BinaryFileError``; a parser's ``DataError`` is raised again as one line that starts
    with the file's path; a Latin-1 fallback is recorded in ``notes`` when given.
    """
    path = Path(path)
    rel = rel or path.name
    fmt = format_for(path.name)
    if fmt is None:
        raise DataError(f"{path}: unsupported document type (use {suffix_summary(', ')}, optionally .gz)")
    text, utf8 = _decoded(path)
    if not utf8 and notes is not None:
        notes.not_utf8.append(rel)
    try:
        title, paras = fmt.parse(text)
    except DataError as exc:  # the parser knows the line, not the file
        raise DataError(f"{path}: {' '.join(str(exc).splitlines())}") from None
    stem = rel[:-3] if rel.endswith(".gz") else rel
    return Document(rel, title or Path(stem).stem, paras)


def _read_folder(src: Path, rels: list[str], notes: SourceNotes) -> list[Document]:
    """The documents of a folder in order; binary files are skipped and noted."""
    docs = []
    for rel in rels:
        try:
            docs.append(read_document(src / rel, rel, notes))
        except BinaryFileError:
            notes.binary.append(rel)
    return docs


def load_documents(
    src: str | Path, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
    notes: SourceNotes | None = None,
) -> tuple[list[Document], str]:
    """All documents of ``src`` (folder, one file or JSONL) in build order, and the source kind.

    ``notes``, when given, collects the files skipped as binary or read as Latin-1.
    """
    notes = notes if notes is not None else SourceNotes()
    src = Path(src)
    if src.is_file():
        if is_jsonl(src):
            docs = read_jsonl(src)
            if include or exclude:
                docs = [d for d in docs if _selected(d.id, include, exclude)]
            return docs, "jsonl"
        return [read_document(src, src.name, notes)], "file"
    if not src.is_dir():
        raise DataError(f"{src}: source not found (expected a folder of documents or a .jsonl file)")
    rels = discover(src, include, exclude)
    if not rels:
        raise DataError(
            f"{src}: no {suffix_summary()} documents found"
            + (f" matching include={list(include)}" if include else "")
            + (f" exclude={list(exclude)}" if exclude else "")
        )
    return _read_folder(src, rels, notes), "folder"
