"""``lvmbench data info``: the diagnostic reports (even on leakage) and scores the way ``run`` scores."""

from __future__ import annotations

import json

import numpy as np

from lvmbench.cli import main
from lvmbench.data.store import write_store


def _leaky(tmp_path):
    rng = np.random.default_rng(4)
    v = rng.normal(size=(30 * 12, 16)).astype(np.float32)
    o = np.arange(0, 30 * 12 + 1, 12, dtype=np.int64)
    v[o[:-1] + 3] = v[3]  # one paragraph shared by every chain
    return write_store(tmp_path / "leaky", v, o, {})


def test_info_on_a_leaky_dataset_prints_the_whole_report_then_exits_3(tmp_path, capsys):
    store = _leaky(tmp_path)
    assert main(["data", "info", str(store.path), "--set", "eval.bootstrap=20"]) == 3
    captured = capsys.readouterr()
    out = captured.out
    assert "LEAKAGE:" in out and "also in training chains" in out
    assert "difficulty on the test split" in out  # the rest of the report is still there
    assert "lvmbench data dedupe" in out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "leakage" in err[0] and str(store.path) in err[0]


def test_info_json_names_the_leaked_vectors_their_chains_and_splits(tmp_path, capsys):
    store = _leaky(tmp_path)
    assert main(["data", "info", str(store.path), "--json", "--set", "eval.bootstrap=20"]) == 3
    info = json.loads(capsys.readouterr().out)
    leak = info["leakage"]
    assert not leak["ok"] and leak["leaked_vectors"] > 0
    first = leak["vectors"][0]
    assert first["split"] in ("val", "test") and first["position"] == 3 and first["also_in_train"]
    assert first["row"] == store.offsets[store.chain_ids().index(first["chain"])] + 3


def _run_copy_last(store, tmp_path, overrides):
    out = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(store.path), "--out", str(out)] + overrides) == 0
    return json.loads((out / "results.json").read_text())


def test_info_difficulty_uses_the_runs_exclusion(tiny_store, tmp_path, capsys):
    """The same queries, pool and excluded window as `run` with the same --set, so the same copy_last score."""
    for overrides in (["--set", "data.context_len=20"], ["--set", "data.context_len=5", "--set", "eval.exclude_len=30"]):
        overrides = overrides + ["--set", "eval.bootstrap=20"]
        res = _run_copy_last(tiny_store, tmp_path / str(len(overrides)), overrides)
        capsys.readouterr()
        assert main(["data", "info", str(tiny_store.path), "--json"] + overrides) == 0
        info = json.loads(capsys.readouterr().out)
        d = info["difficulty"]
        assert d["pool"]["exclude_len"] == res["pool"]["exclude_len"]
        assert d["baselines"]["copy_last"]["hit@5"] == res["baselines"]["copy_last"]["hit@5"]
        assert main(["data", "info", str(tiny_store.path)] + overrides) == 0
        assert f"each query's {res['pool']['exclude_len']} preceding vectors excluded" in capsys.readouterr().out
