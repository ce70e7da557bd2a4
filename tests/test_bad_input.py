"""Bad input through the command line: exit 2, one line naming the file and the problem, nothing half-written.

Each case builds its own broken input, runs ``main([...])`` and checks the
single stderr line.  Stores are written raw (bypassing ``write_store``'s
checks) with a manifest whose hashes match, so the check under test is the
one that fires, not the hash check.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.config import ModelConfig, Recipe, apply_overrides
from lvmbench.data.store import write_store
from lvmbench.models import registry
from lvmbench.train.checkpoint import save_checkpoint

from conftest import FAST


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw_store(path: Path, vectors, offsets, allow_pickle: bool = False, **manifest_extra) -> Path:
    """A chain store written without validation, with a manifest whose hashes match its files."""
    path.mkdir(parents=True)
    np.save(path / "vectors.npy", vectors, allow_pickle=allow_pickle)
    np.save(path / "offsets.npy", offsets, allow_pickle=allow_pickle)
    return seal(path, **manifest_extra)


def seal(path: Path, **manifest_extra) -> Path:
    """(Re)write the manifest so its hashes match whatever the array files now hold."""
    v, o = _sha(path / "vectors.npy"), _sha(path / "offsets.npy")
    manifest = {
        "format": "lvmbench-chain-store", "format_version": 1, "name": path.name,
        "files": {"vectors": "vectors.npy", "offsets": "offsets.npy"},
        "sha256": {"vectors": v, "offsets": o, "dataset": hashlib.sha256(f"{v}:{o}".encode()).hexdigest()},
        **manifest_extra,
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def unit(n, d=8, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chains(n_chains, length, d=8, seed=0):
    return unit(n_chains * length, d, seed), np.arange(0, n_chains * length + 1, length, dtype=np.int64)


def small_checkpoint(path: Path, dim: int) -> Path:
    recipe = apply_overrides(Recipe(), list(FAST))
    model = registry.build("memory_gru", dim, ModelConfig(hidden=8, layers=1, memory_slots=4, head_hidden=8))
    recipe.model.hidden, recipe.model.layers, recipe.model.memory_slots, recipe.model.head_hidden = 8, 1, 4, 8
    save_checkpoint(path, {"model": "memory_gru", "dim": dim, "recipe": recipe.to_dict(),
                           "state_dict": model.state_dict(), "epoch": 1})
    return path


def results_file(path: Path, **body) -> Path:
    path.write_text(json.dumps({"schema_version": 1, "status": "complete", "metrics": {"hit@5": 0.6, "mrr": 0.4}, **body}))
    return path


# ---- each case: build(tmp_path, tiny_store) -> (argv, text the line must contain, file the line must name)

def _run(data, tmp):
    return ["run", "--data", str(data), "--out", str(tmp / "out"), "--set", "eval.bootstrap=20"]


def _nan(tmp, tiny):
    v, o = chains(10, 8)
    v[13, 2] = np.nan
    return _run(raw_store(tmp / "ds", v, o), tmp), "vector 13 (chain 1) has NaN or Inf", tmp / "ds"


def _inf(tmp, tiny):
    v, o = chains(10, 8)
    v[3, 0] = np.inf
    return _run(raw_store(tmp / "ds", v, o), tmp), "vector 3 (chain 0) has NaN or Inf", tmp / "ds"


def _zero_norm(tmp, tiny):
    v, o = chains(10, 8)
    v[20] = 0
    return _run(raw_store(tmp / "ds", v, o), tmp), "vector 20 (chain 2) has zero norm", tmp / "ds"


def _empty(tmp, tiny):
    ds = raw_store(tmp / "ds", np.zeros((0, 8), np.float32), np.zeros(1, np.int64))
    return _run(ds, tmp), "dataset is empty", ds


def _all_chains_too_short(tmp, tiny):
    v, o = chains(20, 4)
    return _run(write_store(tmp / "ds", v, o, {}).path, tmp), "no chain passes the quality gates (min_chain_len=7)", tmp / "ds"


def _empty_split(tmp, tiny):
    v, o = chains(4, 10)
    return _run(write_store(tmp / "ds", v, o, {}).path, tmp), "leave an empty split", tmp / "ds"


def _truncated_npy(tmp, tiny):
    v, o = chains(10, 8)
    ds = raw_store(tmp / "ds", v, o)
    data = (ds / "vectors.npy").read_bytes()
    (ds / "vectors.npy").write_bytes(data[: len(data) - 100])
    seal(ds)  # hashes match the cut file: the truncation itself must be caught
    return _run(ds, tmp), "truncated .npy", ds / "vectors.npy"


def _npy_header_cut(tmp, tiny):
    v, o = chains(10, 8)
    ds = raw_store(tmp / "ds", v, o)
    (ds / "offsets.npy").write_bytes((ds / "offsets.npy").read_bytes()[:40])
    seal(ds)
    return _run(ds, tmp), "truncated or corrupt .npy header", ds / "offsets.npy"


def _empty_npy_file(tmp, tiny):
    v, o = chains(10, 8)
    ds = raw_store(tmp / "ds", v, o)
    (ds / "vectors.npy").write_bytes(b"")
    seal(ds)
    return _run(ds, tmp), "not a .npy file", ds / "vectors.npy"


def _hash_mismatch(tmp, tiny):
    v, o = chains(10, 8)
    ds = write_store(tmp / "ds", v, o, {}).path
    np.save(ds / "vectors.npy", unit(80, seed=1))
    return _run(ds, tmp), "does not match the manifest", ds / "vectors.npy"


def _offsets_wrong_end(tmp, tiny):
    v, o = chains(10, 8)
    o[-1] = 200
    return _run(raw_store(tmp / "ds", v, o), tmp), "offsets must start at 0", tmp / "ds"


def _offsets_decreasing(tmp, tiny):
    v, o = chains(10, 8)
    o[4] = 20  # below offsets[3] = 24
    return _run(raw_store(tmp / "ds", v, o), tmp), "offsets[4] = 20 is below offsets[3] = 24 (chain 3)", tmp / "ds"


def _unknown_toml_key(tmp, tiny):
    toml = tmp / "recipe.toml"
    toml.write_text("[train]\nlrr = 1\n")
    return _run(tiny.path, tmp) + ["--recipe", str(toml)], "unknown setting 'train.lrr'", toml


def _offsets_float(tmp, tiny):
    v, o = chains(10, 8)
    return _run(raw_store(tmp / "ds", v, o.astype(np.float64)), tmp), "offsets must be int64", tmp / "ds" / "offsets.npy"


def _offsets_2d(tmp, tiny):
    v, o = chains(10, 8)
    return _run(raw_store(tmp / "ds", v, o[None, :]), tmp), "offsets must be a 1-D int64 array", tmp / "ds"


def _chain_ids_wrong_length(tmp, tiny):
    v, o = chains(10, 8)
    ds = raw_store(tmp / "ds", v, o, chain_ids=["a", "b"])
    return _run(ds, tmp), "'chain_ids' must list one id per chain (2 for 10 chains)", ds / "manifest.json"


def _manifest_files_not_a_table(tmp, tiny):
    v, o = chains(10, 8)
    ds = raw_store(tmp / "ds", v, o)
    m = json.loads((ds / "manifest.json").read_text())
    m["files"] = ["vectors.npy"]
    (ds / "manifest.json").write_text(json.dumps(m))
    return _run(ds, tmp), "'files' must be an object", ds / "manifest.json"


def _dim_mismatch_eval(tmp, tiny):
    ckpt = small_checkpoint(tmp / "m.pt", dim=16)
    return (["eval", str(ckpt), "--data", str(tiny.path), "--out", str(tmp / "out")],
            f"checkpoint expects dim 16 but dataset {tiny.path} has dim 32", ckpt)


def _corrupt_pt(tmp, tiny):
    ckpt = tmp / "m.pt"
    ckpt.write_bytes(b"\x80\x04this is not a checkpoint" * 20)
    return ["eval", str(ckpt), "--data", str(tiny.path), "--out", str(tmp / "out")], "corrupt", ckpt


def _truncated_pt(tmp, tiny):
    ckpt = small_checkpoint(tmp / "m.pt", dim=32)
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    return (["eval", str(ckpt), "--data", str(tiny.path), "--out", str(tmp / "out")],
            "truncated or corrupt checkpoint", ckpt)


def _bitflip_pt(tmp, tiny):
    ckpt = small_checkpoint(tmp / "m.pt", dim=32)
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # torch alone does not check CRCs: it could load different numbers
    ckpt.write_bytes(bytes(data))
    return (["eval", str(ckpt), "--data", str(tiny.path), "--out", str(tmp / "out")],
            "fails its CRC check", ckpt)


def _empty_pt(tmp, tiny):
    ckpt = tmp / "m.pt"
    ckpt.write_bytes(b"")
    return ["eval", str(ckpt), "--data", str(tiny.path), "--out", str(tmp / "out")], "empty file", ckpt


def _unknown_model(tmp, tiny):
    return _run(tiny.path, tmp) + ["--model", "nope"], "unknown model 'nope'", None


def _unknown_set_key(tmp, tiny):
    return _run(tiny.path, tmp) + ["--set", "train.lrr=1"], "unknown setting 'train.lrr'", None


def _wrong_type(tmp, tiny):
    return _run(tiny.path, tmp) + ["--set", "train.micro_batch=big"], "train.micro_batch: expected an integer", None


def _k_not_positive(tmp, tiny):
    return _run(tiny.path, tmp) + ["--set", "eval.ks=0,5"], "eval.ks must be positive", None


def _k_larger_than_pool(tmp, tiny):
    return (_run(tiny.path, tmp) + ["--model", "copy_last", "--set", "eval.ks=5,100000"],
            "eval.ks [100000] larger than the val pool", tiny.path)


def _k_larger_than_pool_eval(tmp, tiny):
    ckpt = small_checkpoint(tmp / "m.pt", dim=32)
    return (["eval", str(ckpt), "--data", str(tiny.path), "--out", str(tmp / "out"), "--set", "eval.ks=5,5000"],
            "eval.ks [5000] larger than the test pool", tiny.path)


def _gate_unknown_metric(tmp, tiny):
    res = results_file(tmp / "results.json")
    return ["gate", str(res), "--metric", "hit@3"], "metric 'hit@3' not in results", res


def _newer_schema(tmp, tiny):
    res = results_file(tmp / "results.json", schema_version=99)
    return ["gate", str(res)], "schema_version 99 is newer", res


def _resume_not_a_run(tmp, tiny):
    (tmp / "out").mkdir()
    return ["run", "--resume", str(tmp / "out")], "not an lvmbench run directory", tmp / "out" / "recipe.json"


CASES = {f.__name__.lstrip("_"): f for f in [
    _nan, _inf, _zero_norm, _empty, _all_chains_too_short, _empty_split, _truncated_npy, _npy_header_cut,
    _empty_npy_file, _hash_mismatch, _offsets_wrong_end, _offsets_decreasing, _unknown_toml_key, _offsets_float, _offsets_2d, _chain_ids_wrong_length,
    _manifest_files_not_a_table, _dim_mismatch_eval, _corrupt_pt, _truncated_pt, _bitflip_pt, _empty_pt, _unknown_model,
    _unknown_set_key, _wrong_type, _k_not_positive, _k_larger_than_pool, _k_larger_than_pool_eval,
    _gate_unknown_metric, _newer_schema, _resume_not_a_run,
]}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case, tiny_store, tmp_path, capsys):
    argv, problem, where = CASES[case](tmp_path, tiny_store)
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("lvmbench: error: ") and problem in lines[0], lines[0]
    if where is not None:
        assert str(where) in lines[0], lines[0]
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())


def test_duplicate_vectors_within_eval_chains_are_copies_of_the_target(tmp_path, capsys):
    """Paragraphs repeated inside a document are copies of the target: hits, not a crash and not leakage."""
    v, o = chains(30, 12, d=16, seed=3)
    for c in range(30):
        s = o[c]
        v[s + 4 : s + 9] = v[s + 4]  # five identical vectors in every chain, distinct across chains
    store = write_store(tmp_path / "dups", v, o, {})
    out = tmp_path / "out"
    assert main(["run", "--model", "copy_last", "--data", str(store.path), "--out", str(out),
                 "--set", "eval.bootstrap=20"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["metrics"]["queries_with_copies"] > 0 and res["metrics"]["queries_with_ties"] == 0
    assert res["gates"]["duplicate_vectors"] == 30 * 5
    assert res["consistency"]["ok"]
    # copy_last predicts the repeated vector exactly: its later copies are the target's, not rivals
    assert res["metrics"]["hit@1"] > 0
    # ...and what a tool that counts every tie against the target reports is recorded beside it
    strict = res["copies"]["metrics_copies_against"]
    assert strict["hit@1"] < res["metrics"]["hit@1"] and strict["hit@10"] <= res["metrics"]["hit@10"]
    out_text = capsys.readouterr().out
    assert "copies" in out_text


def test_duplicates_across_train_and_eval_chains_fail_the_leakage_check(tmp_path, capsys):
    v, o = chains(30, 12, d=16, seed=4)
    v[o[:-1] + 3] = v[3]  # one shared paragraph in every chain
    store = write_store(tmp_path / "leaky", v, o, {})
    out = tmp_path / "out"
    assert main(["run", "--model", "copy_last", "--data", str(store.path), "--out", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "leakage" in err
    assert not out.exists()
