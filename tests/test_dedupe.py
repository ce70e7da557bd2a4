"""``lvmbench data dedupe``: a hand-made store with vectors shared by chains becomes one that passes the checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.data.corpus import load_texts
from lvmbench.data.corpus.texts import TEXTS, texts_bytes, texts_manifest
from lvmbench.data.dedupe import dedupe_store
from lvmbench.data.store import load_store, write_store
from lvmbench.errors import DataError

SHARED = "Return value: New reference. Part of the Stable ABI."


def leaky_store(path: Path, n_chains: int = 30, length: int = 12) -> Path:
    """Chains of unit vectors where position 3 of every chain is one shared vector (and text), chain 0 repeats
    its own vector at 5 and 6 (a repeat inside one chain, which stays), and chain 1 is only 2 long, one of
    them the shared vector; with texts.jsonl.gz like a built store."""
    rng = np.random.default_rng(4)
    lengths = [length] * n_chains
    lengths[1] = 2
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    v = rng.normal(size=(int(offsets[-1]), 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    v = v.astype(np.float16)
    texts = [[f"chain {c} unit {j}" for j in range(lengths[c])] for c in range(n_chains)]
    for c in range(n_chains):
        pos = 3 if lengths[c] > 3 else 1
        v[offsets[c] + pos] = v[offsets[0] + 3]
        texts[c][pos] = SHARED
    v[offsets[0] + 6] = v[offsets[0] + 5]
    texts[0][6] = texts[0][5]
    ids = [f"c{c}" for c in range(n_chains)]
    blob = texts_bytes((ids[c], f"Chain {c}", texts[c]) for c in range(n_chains))
    write_store(path, v, offsets, {"name": "leaky", "encoder": "hand-made", "license": "CC0-1.0", "chain_ids": ids,
                                   "chain_titles": [f"Chain {c}" for c in range(n_chains)],
                                   "texts": texts_manifest(blob)})
    (path / TEXTS).write_bytes(blob)
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_dedupe_writes_a_store_that_passes_the_leakage_check(tmp_path, capsys):
    src = leaky_store(tmp_path / "src")
    before = snapshot(src)
    assert main(["run", "--model", "copy_last", "--data", str(src), "--out", str(tmp_path / "r0")]) == 3
    assert "leakage" in capsys.readouterr().err

    out = tmp_path / "clean"
    assert main(["data", "dedupe", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert snapshot(src) == before  # the source is never modified
    assert "removed 30 vectors found in 2+ chains (1 distinct vectors" in printed
    assert "shared: row 3 (chain c0 #3), row 13 (chain c1 #1), row 17 (chain c2 #3)" in printed and SHARED in printed

    store = load_store(out)
    m = store.manifest
    assert m["dedupe"]["source"]["sha256"] == json.loads(before["manifest.json"])["sha256"]["dataset"]
    assert m["dedupe"]["removed_duplicate_vectors"] == 30 and m["dedupe"]["duplicate_vector_values"] == 1
    assert m["dedupe"]["dropped_short_chains"] == 0 and m["name"] == "clean" and m["license"] == "CC0-1.0"
    assert store.n_chains == 30 and store.n_vectors == 29 * 12 + 2 - 30 and str(store.vectors.dtype) == "float16"
    records = load_texts(store)
    assert [r["id"] for r in records] == store.chain_ids() == m["chain_ids"] and m["chain_titles"][2] == "Chain 2"
    assert SHARED not in {u for r in records for u in r["units"]}
    assert records[0]["units"][4] == records[0]["units"][5] == "chain 0 unit 5"  # the in-chain repeat stays
    src_store = load_store(src)
    for c, rec in enumerate(load_texts(src_store)):  # every kept vector is the source's vector for that text
        j_src = [j for j, t in enumerate(rec["units"]) if t != SHARED]
        np.testing.assert_array_equal(np.asarray(store.chain(c)), np.asarray(src_store.chain(c))[j_src])

    assert main(["data", "info", str(out)]) == 0
    assert main(["run", "--model", "copy_last", "--data", str(out), "--out", str(tmp_path / "r1"),
                 "--set", "eval.bootstrap=20"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "r1" / "results.json").read_text())["leakage"]["ok"]


def test_min_length_drops_chains_left_short(tmp_path):
    src = leaky_store(tmp_path / "src")
    store, report = dedupe_store(src, tmp_path / "out", min_length=2)
    assert report["dropped_short_chains"] == 1 and report["vectors_in_dropped_chains"] == 1
    assert "c1" not in store.chain_ids() and store.manifest["dedupe"]["dropped_chain_ids"] == ["c1"]
    assert [len(r["units"]) for r in load_texts(store)] == [int(x) for x in store.lengths]
    again, report2 = dedupe_store(tmp_path / "out", tmp_path / "again", min_length=2)
    assert report2["removed_duplicate_vectors"] == 0 and again.sha256 == store.sha256  # idempotent
    assert again.manifest["dedupe"]["previous"]["source"]["path"] == str(src)
    with pytest.raises(DataError, match="no chain keeps 13 vectors"):
        dedupe_store(src, tmp_path / "none", min_length=13)


def _bad(tmp_path: Path):
    src = leaky_store(tmp_path / "src")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    return {
        "missing": (["data", "dedupe", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                    str(tmp_path / "nope"), "not found"),
        "out_is_src": (["data", "dedupe", str(src), "--out", str(src)], str(src), "outside the source store"),
        "out_is_src_overwrite": (["data", "dedupe", str(src), "--out", str(src) + "/", "--overwrite"], str(src),
                                 "outside the source store"),
        "out_inside_src": (["data", "dedupe", str(src), "--out", str(src / "sub")], str(src / "sub"),
                           "outside the source store"),
        "out_not_empty": (["data", "dedupe", str(src), "--out", str(busy)], str(busy), "--overwrite"),
        "min_length": (["data", "dedupe", str(src), "--out", str(tmp_path / "o"), "--min-length", "0"],
                       "--min-length", ">= 1"),
    }


@pytest.mark.parametrize("case", ["missing", "out_is_src", "out_is_src_overwrite", "out_inside_src", "out_not_empty",
                                  "min_length"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys):
    argv, where, problem = _bad(tmp_path)[case]
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lvmbench: error: ") and where in err[0] and problem in err[0], err
    assert snapshot(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["busy", "src"]


def test_overwrite_replaces_an_earlier_output(tmp_path, capsys):
    src = leaky_store(tmp_path / "src")
    assert main(["data", "dedupe", str(src), "--out", str(tmp_path / "o")]) == 0
    assert main(["data", "dedupe", str(src), "--out", str(tmp_path / "o"), "--min-length", "3"]) == 2
    assert main(["data", "dedupe", str(src), "--out", str(tmp_path / "o"), "--min-length", "3", "--overwrite"]) == 0
    assert load_store(tmp_path / "o").manifest["dedupe"]["min_length"] == 3
