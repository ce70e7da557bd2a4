"""Predictions made anywhere: ``lvmbench task`` out, plain-numpy predictions in, ``lvmbench score`` back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvmbench.cli import main


@pytest.fixture(scope="module")
def task(tiny_store, tmp_path_factory):
    path = tmp_path_factory.mktemp("task") / "task.npz"
    assert main(["task", "--data", str(tiny_store.path), "--out", str(path), "--set", "eval.bootstrap=20"]) == 0
    return path


def copy_last_from_raw_vectors(store_dir, task_path):
    """What an outside user would write: only numpy, the task file and the store's vectors.npy."""
    vectors = np.load(store_dir / "vectors.npy").astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    with np.load(task_path) as t:
        context = t["context_ids"]
    last = context[np.arange(len(context)), (context >= 0).sum(axis=1) - 1]
    return unit[last]


def test_task_file_describes_the_queries(task, tiny_store):
    with np.load(task) as t:
        meta = json.loads(t["meta"].item())
        target, context, lo, hi, pool = (t[k] for k in ("target_ids", "context_ids", "exclude_lo", "exclude_hi",
                                                        "pool_ids"))
    assert meta["dataset"]["sha256"] == tiny_store.sha256 and meta["n_queries"] == len(target)
    valid = context >= 0
    assert (valid[:, :-1] >= valid[:, 1:]).all()  # right-padded
    last = context[np.arange(len(context)), valid.sum(axis=1) - 1]
    assert np.array_equal(last, target - 1)  # oldest first, ending just before the target
    assert np.array_equal(hi, target) and np.all(lo <= hi) and np.isin(target, pool).all()


def test_plain_numpy_copy_last_scores_exactly_like_the_built_in_baseline(task, tiny_store, tmp_path, capsys):
    pred = tmp_path / "copy_last.npy"
    np.save(pred, copy_last_from_raw_vectors(tiny_store.path, task))
    out = tmp_path / "scored"
    assert main(["score", str(pred), "--task", str(task), "--out", str(out)]) == 0
    with np.load(out / "predictions.npz") as z:
        ours, builtin = z["rank"], z["rank__copy_last"]
    assert np.array_equal(ours, builtin)  # query by query
    res = json.loads((out / "results.json").read_text())
    assert res["model"]["kind"] == "predictions" and res["consistency"]["ok"]
    assert res["lift_over"]["copy_last"]["wins"] == 0 and res["lift_over"]["copy_last"]["losses"] == 0
    # and like a separate `run --model copy_last` on the same data: same queries, pool, ranks
    run = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(run),
                 "--set", "eval.bootstrap=20"]) == 0
    with np.load(run / "predictions.npz") as z:
        assert np.array_equal(z["rank"], ours)
    # the run directory works with compare, gate and trec unchanged
    capsys.readouterr()
    assert main(["compare", str(out), str(run)]) == 0
    assert "copy_last" in capsys.readouterr().out
    assert main(["gate", str(out), "--min", "0"]) == 0
    assert main(["trec", str(out), "--out", str(tmp_path / "trec")]) == 0


def _bad_cases(tmp_path, task, tiny_store):
    good = copy_last_from_raw_vectors(tiny_store.path, task)
    cases = {}

    def save(name, array, **kw):
        path = tmp_path / f"{name}.npy"
        np.save(path, array, **kw)
        return path

    cases["rows"] = (save("rows", good[:-1]), [], f"{len(good) - 1} rows")
    cases["dim"] = (save("dim", good[:, :-1]), [], "dim 31 but the dataset's vectors have dim 32")
    nan = good.copy()
    nan[7, 3] = np.nan
    cases["nan"] = (save("nan", nan), [], "row 7 has NaN or Inf")
    zero = good.copy()
    zero[4] = 0.0
    cases["zero"] = (save("zero", zero), [], "row 4 is all zeros")
    obj = np.empty(len(good), dtype=object)
    cases["pickled"] = (save("pickled", obj, allow_pickle=True), [], "holds Python objects")
    cases["ints"] = (save("ints", np.ones(good.shape, dtype=np.int64)), [], "predictions must be floats")
    from lvmbench.data.synth import write_synth

    other = write_synth(tmp_path / "other", n_chains=60, dim=32, seed=1)
    cases["hash"] = (save("ok", good), ["--data", str(other.path)], "is not the one")
    cases["no task"] = (save("ok2", good), ["--task", str(tmp_path / "missing.npz")], "task file not found")
    return cases


def test_bad_predictions_are_refused_with_one_line_and_nothing_written(task, tiny_store, tmp_path, capsys):
    for name, (pred, extra, problem) in _bad_cases(tmp_path, task, tiny_store).items():
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        argv = ["score", str(pred), "--task", str(task), "--out", str(out)] + extra
        if "--task" in extra:
            argv = ["score", str(pred), "--out", str(out)] + extra
        capsys.readouterr()
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and problem in err[0], (name, err)
        assert not out.exists(), name
