"""JSONL (``.jsonl``, ``.json``, ``.ndjson``, optionally ``.gz``): documents already split.

One document per line, ``{"id", "title", "paragraphs": [...]}``, taken in line
order with the paragraphs used as given (only whitespace is normalised).  Not
in the per-file registry: one JSONL file holds many documents.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from lvmbench.data.corpus.document import Document
from lvmbench.data.corpus.textutils import normalise_ws
from lvmbench.errors import DataError

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def is_jsonl(path: Path) -> bool:
    """Whether a source file is a JSONL collection (by name, ``.gz`` allowed)."""
    base = path.name[:-3] if path.name.endswith(".gz") else path.name
    return base.endswith(JSONL_SUFFIXES)


def _document(obj: Any, lineno: int, where: str) -> Document:
    """One parsed line as a Document, or one error line naming the file and line."""
    if not isinstance(obj, dict) or not isinstance(obj.get("paragraphs"), list):
        raise DataError(f"{where}:{lineno}: expected an object with a 'paragraphs' list")
    if not all(isinstance(p, str) for p in obj["paragraphs"]):
        raise DataError(f"{where}:{lineno}: every entry of 'paragraphs' must be a string")
    paras = [t for t in (normalise_ws(p) for p in obj["paragraphs"]) if t]
    return Document(str(obj.get("id", f"line-{lineno}")), str(obj.get("title", "") or ""), paras)


def read_jsonl(path: str | Path) -> list[Document]:
    """All documents of a JSONL file in line order; ids must be unique."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    docs: list[Document] = []
    seen: set[str] = set()
    try:
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
                except RecursionError:  # json's decoder recurses once per [ or {
                    raise DataError(f"{path}:{lineno}: JSON nested too deeply (beyond Python's recursion limit "
                                    f"of {sys.getrecursionlimit()})") from None
                doc = _document(obj, lineno, str(path))
                if doc.id in seen:
                    raise DataError(f"{path}:{lineno}: duplicate document id {doc.id!r}")
                seen.add(doc.id)
                docs.append(doc)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    return docs
