"""The builder's vector rule: texts MiniLM encodes to one vector (case, spacing) never stay in two documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from lvmbench.data.corpus import build_corpus, load_texts
from lvmbench.data.encoders import HashEncoder
from lvmbench.data.store import load_store

from test_corpus import para, write_jsonl


class CaseSpacingEncoder(HashEncoder):
    """Like MiniLM's tokenizer, blind to letter case and to spacing around punctuation: such variants
    of one text get the identical vector (HashEncoder alone would give them unrelated vectors)."""

    def vector(self, text: str) -> np.ndarray:
        folded = re.sub(r"\s*([^\w\s])\s*", r"\1", " ".join(text.lower().split()))
        return super().vector(folded)


SIGNATURE = "int f(int fd, const void key)"


def signature_variant(k: int) -> str:
    """The k-th textually distinct spelling of SIGNATURE that CaseSpacingEncoder maps to one vector."""
    words = (SIGNATURE.replace("f(", "f (") if k % 2 else SIGNATURE).split(" ")
    return " ".join(w.upper() if (k >> 1) & (1 << i) else w for i, w in enumerate(words))


def leaky_corpus(path: Path, n_docs: int = 30) -> Path:
    """Every document has one spelling of SIGNATURE; d0/d1 also share an 'Options' line up to spacing/case;
    d_short has exactly min_paragraphs units, one of them a SIGNATURE spelling."""
    docs = []
    for i in range(n_docs):
        paras = [para(i, j) for j in range(8)]
        paras.insert(3, signature_variant(i))
        docs.append((f"d{i}", paras))
    docs[0][1].append("Options: - name : From the common binding.")
    docs[1][1].append("Options: - name: from the common binding.")
    docs.append(("d_short", [para("s", j) for j in range(6)] + [signature_variant(n_docs)]))
    return write_jsonl(path, docs)


def test_units_with_one_vector_in_several_documents_are_dropped(tmp_path, monkeypatch, capsys):
    """Texts that differ only in case/spacing encode to one vector: the builder must not leave it in two
    documents, or lvmbench's own leakage check refuses the store it just wrote."""
    from lvmbench.cli import main
    from lvmbench.data import encoders

    monkeypatch.setitem(encoders._REGISTRY, "casefold", CaseSpacingEncoder)
    src = leaky_corpus(tmp_path / "c.jsonl")
    texts = [signature_variant(k) for k in range(31)]
    assert len(set(texts)) == 31 and len({CaseSpacingEncoder().vector(t).tobytes() for t in texts}) == 1
    out = tmp_path / "store"
    assert main(["data", "build", str(src), "--out", str(out), "--encoder", "casefold", "--min-words", "3"]) == 0
    printed = capsys.readouterr().out
    # the store passes lvmbench's own checks (the leakage check hashes the stored rows)
    assert main(["data", "info", str(out)]) == 0, capsys.readouterr().err
    assert main(["run", "--model", "copy_last", "--data", str(out), "--out", str(tmp_path / "run"),
                 "--set", "eval.bootstrap=20"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "results.json").read_text())["leakage"]["ok"]
    # and the build says what it removed
    store = load_store(out)
    counts = store.manifest["counts"]
    assert counts["removed_duplicate_vectors"] == 31 + 2 and counts["duplicate_vector_values"] == 2
    assert counts["dropped_short_documents_after_vector_dedup"] == 1  # d_short: 7 units -> 6
    assert counts["documents_kept"] == store.n_chains == 30 and counts["units_kept"] == store.n_vectors == 30 * 8
    assert "d_short" not in store.chain_ids()
    assert "33 with a vector also in another document" in printed and "1 too short after vector dedup" in printed
    records = load_texts(store)
    assert all(rec["units"] == [para(int(rec["id"][1:]), j) for j in range(8)] for rec in records)


class CountingCaseSpacingEncoder(CaseSpacingEncoder):
    def __init__(self, dim: int = 16):
        super().__init__(dim)
        self.texts = 0

    def encode(self, texts, batch_size=64):
        self.texts += len(texts)
        return super().encode(texts, batch_size)


def test_vector_dedup_leaves_the_encoding_cache_whole(tmp_path):
    """The cache is keyed by a document's units as encoded; units dropped afterwards must not change it."""
    src = leaky_corpus(tmp_path / "c.jsonl")
    cache = tmp_path / "cache"
    first = CountingCaseSpacingEncoder()
    store, report = build_corpus(src, tmp_path / "a", encoder=first, cache_dir=cache, min_words=3)
    assert report["removed_duplicate_vectors"] == 33 and first.texts == report["units_found"]
    again = CountingCaseSpacingEncoder()
    store2, report2 = build_corpus(src, tmp_path / "b", encoder=again, cache_dir=cache, min_words=3)
    assert again.texts == 0 and report2["encoding"]["from_cache"] == first.texts
    assert store2.sha256 == store.sha256 and load_texts(store2) == load_texts(store)
    # a build that keeps the duplicates' documents whole (float32, same units) still reuses every file
    _, report3 = build_corpus(src, tmp_path / "c", encoder=CountingCaseSpacingEncoder(), cache_dir=cache,
                              min_words=3, dtype="float32")
    assert report3["encoding"]["encoded"] == 0 and report3["removed_duplicate_vectors"] == 33


class NearTwinEncoder(HashEncoder):
    """'twin a ...' and 'twin b ...' get float32 vectors that differ by far less than a float16 step."""

    def vector(self, text: str) -> np.ndarray:
        if not text.startswith("twin "):
            return super().vector(text)
        v = super().vector("twin").astype(np.float64)
        if text.startswith("twin b"):
            v[0] += 1e-6
        v = (v / np.linalg.norm(v)).astype(np.float32)
        return v


def test_vector_rule_compares_the_rows_as_stored(tmp_path):
    """The leakage check hashes the stored rows: float16 twins are duplicates, their float32 originals are not."""
    docs = [(f"d{i}", [para(i, j) for j in range(8)] + [f"twin {'ab'[i % 2]} words from the common binding, copy {i}"])
            for i in range(4)]
    src = write_jsonl(tmp_path / "c.jsonl", docs)
    enc = NearTwinEncoder(16)
    a, b = enc.vector("twin a x"), enc.vector("twin b x")
    assert a.tobytes() != b.tobytes() and a.astype(np.float16).tobytes() == b.astype(np.float16).tobytes()
    _, r16 = build_corpus(src, tmp_path / "f16", encoder=enc)
    _, r32 = build_corpus(src, tmp_path / "f32", encoder=enc, dtype="float32")
    assert r16["removed_duplicate_vectors"] == 4 and r16["duplicate_vector_values"] == 1 and r16["units_kept"] == 32
    # float32: 'twin a' is in d0 and d2, 'twin b' in d1 and d3 -> two shared values, still all four rows go
    assert r32["removed_duplicate_vectors"] == 4 and r32["duplicate_vector_values"] == 2
    docs[2] = ("d2", [para(2, j) for j in range(8)])
    docs[3] = ("d3", [para(3, j) for j in range(8)])  # now one 'twin a' (d0) and one 'twin b' (d1)
    src = write_jsonl(tmp_path / "c2.jsonl", docs)
    _, r16 = build_corpus(src, tmp_path / "g16", encoder=enc)
    _, r32 = build_corpus(src, tmp_path / "g32", encoder=enc, dtype="float32")
    assert r16["removed_duplicate_vectors"] == 2 and r32["removed_duplicate_vectors"] == 0
