"""``texts.jsonl.gz``: the unit texts next to a store, so every vector can be traced to its text.

One line per chain, ``{"id", "title", "units": [...]}``, gzip with a zero
mtime (the same texts give the same bytes); its sha256 is in the manifest and
is checked on reading, together with the unit counts against the chain lengths.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from lvmbench.data.store import ChainStore, load_store
from lvmbench.errors import DataError

TEXTS = "texts.jsonl.gz"
TEXTS_FORMAT = "gzip JSONL, one line per chain: {id, title, units}"


def texts_bytes(records: Iterable[tuple[str, str, list[str]]]) -> bytes:
    """The file's bytes for ``(id, title, units)`` records, reproducibly."""
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for doc_id, title, units in records:
            gz.write((json.dumps({"id": doc_id, "title": title, "units": units}, ensure_ascii=False) + "\n").encode())
    return raw.getvalue()


def texts_manifest(blob: bytes) -> dict[str, str]:
    """The manifest's ``texts`` entry for a texts file holding ``blob``."""
    return {"file": TEXTS, "sha256": hashlib.sha256(blob).hexdigest(), "format": TEXTS_FORMAT}


def load_texts(store: ChainStore | str | Path) -> list[dict[str, Any]]:
    """The ``{id, title, units}`` records saved next to a store, checked against the manifest."""
    if not isinstance(store, ChainStore):
        store = load_store(store, verify=False)
    meta = store.manifest.get("texts")
    if not meta:
        raise DataError(f"{store.path}: this store was built without texts")
    path = store.path / str(meta.get("file", TEXTS))
    if not path.is_file():
        raise DataError(f"{path}: texts file not found")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
        raise DataError(f"{path}: sha256 does not match the manifest")
    records = [json.loads(line) for line in gzip.decompress(blob).decode("utf-8").splitlines() if line]
    lengths = [len(r["units"]) for r in records]
    expected = [int(x) for x in store.lengths]
    if lengths != expected:
        if len(lengths) != len(expected):
            raise DataError(f"{path}: {len(lengths)} records for the store's {len(expected)} chains")
        c = next(i for i, (a, b) in enumerate(zip(lengths, expected)) if a != b)
        raise DataError(f"{path}: line {c + 1} (chain {c}, id {records[c].get('id')!r}) has {lengths[c]} units "
                        f"but the chain has {expected[c]} vectors")
    return records


def iter_units(store: ChainStore | str | Path) -> Iterator[tuple[str, int, str]]:
    """``(chain id, position, text)`` for every vector of a store built with texts."""
    for rec in load_texts(store):
        for j, text in enumerate(rec["units"]):
            yield rec["id"], j, text
