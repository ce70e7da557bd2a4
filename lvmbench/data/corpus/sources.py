"""Finding and reading the documents of a source, in a deterministic order.

A folder is walked for the suffixes of the format registry (each also
gzip-compressed); hidden files and folders are skipped; documents are taken in
sorted relative-path order (POSIX separators).  ``include``/``exclude`` are
shell globs (``fnmatch``, ``*`` crosses ``/``) matched against the relative
path with and without its ``.gz``.  A JSONL file is read in line order.
"""

from __future__ import annotations

import fnmatch
import gzip
import os
from pathlib import Path
from typing import Sequence

from lvmbench.data.corpus.document import Document
from lvmbench.data.corpus.formats import format_for, suffix_summary
from lvmbench.data.corpus.formats.jsonl import is_jsonl, read_jsonl
from lvmbench.errors import DataError


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


def _decoded(path: Path) -> str:
    """The text of a file (gunzipped by name); UTF-8 (with or without BOM), else Latin-1."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_document(path: str | Path, rel: str | None = None) -> Document:
    """Parse one file (by its extension, ``.gz`` allowed) into a Document."""
    path = Path(path)
    rel = rel or path.name
    fmt = format_for(path.name)
    if fmt is None:
        raise DataError(f"{path}: unsupported document type (use {suffix_summary(', ')}, optionally .gz)")
    title, paras = fmt.parse(_decoded(path))
    stem = rel[:-3] if rel.endswith(".gz") else rel
    return Document(rel, title or Path(stem).stem, paras)


def load_documents(
    src: str | Path, include: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> tuple[list[Document], str]:
    """All documents of ``src`` (folder, one file or JSONL) in build order, and the source kind."""
    src = Path(src)
    if src.is_file():
        if is_jsonl(src):
            docs = read_jsonl(src)
            if include or exclude:
                docs = [d for d in docs if _selected(d.id, include, exclude)]
            return docs, "jsonl"
        return [read_document(src, src.name)], "file"
    if not src.is_dir():
        raise DataError(f"{src}: source not found (expected a folder of documents or a .jsonl file)")
    rels = discover(src, include, exclude)
    if not rels:
        raise DataError(
            f"{src}: no {suffix_summary()} documents found"
            + (f" matching include={list(include)}" if include else "")
            + (f" exclude={list(exclude)}" if exclude else "")
        )
    return [read_document(src / rel, rel) for rel in rels], "folder"
