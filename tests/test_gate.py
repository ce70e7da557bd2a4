"""``lvmbench gate`` as a trust boundary: recomputed numbers, gateable metrics, fraction thresholds."""

from __future__ import annotations

import json
import shutil

import pytest

from lvmbench.cli import main


@pytest.fixture(scope="module")
def scored(tiny_store, tmp_path_factory):
    """A scored baseline run (copy_last: nothing to train) with results.json and predictions.npz."""
    out = tmp_path_factory.mktemp("gate") / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out),
                 "--set", "eval.bootstrap=50"]) == 0
    return out


def _copy(run, tmp_path, with_predictions=True):
    dst = tmp_path / "copy"
    dst.mkdir()
    shutil.copy(run / "results.json", dst / "results.json")
    if with_predictions:
        shutil.copy(run / "predictions.npz", dst / "predictions.npz")
    return dst


def _gate(capsys, *argv):
    capsys.readouterr()
    rc = main(["gate", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out.strip(), out.err.strip()


def test_gate_recomputes_the_metric_from_the_ranks(scored, capsys):
    res = json.loads((scored / "results.json").read_text())
    hit5 = res["metrics"]["hit@5"]
    rc, out, err = _gate(capsys, scored, "--min", max(0.0, hit5 - 0.01))
    assert rc == 0 and "PASS" in out and "recomputed from predictions.npz" in out
    rc, out, _ = _gate(capsys, scored, "--min", min(1.0, hit5 + 0.01))
    assert rc == 1 and "FAIL" in out


def test_a_hand_edited_value_is_an_integrity_failure(scored, tmp_path, capsys):
    run = _copy(scored, tmp_path)
    res = json.loads((run / "results.json").read_text())
    res["metrics"]["hit@5"] = 0.99  # its interval and n_queries still say otherwise
    (run / "results.json").write_text(json.dumps(res))
    rc, out, err = _gate(capsys, run, "--min", 0.55)
    assert rc == 3 and out == ""
    assert len(err.splitlines()) == 1 and "results.json was edited" in err and str(run / "results.json") in err


def test_an_edit_consistent_with_its_interval_is_caught_by_the_ranks(scored, tmp_path, capsys):
    from lvmbench.evaluate.metrics import wilson_interval

    run = _copy(scored, tmp_path)
    res = json.loads((run / "results.json").read_text())
    n = res["metrics"]["n_queries"]
    hits = n - 1  # a forged value whose interval and query count agree with it
    res["metrics"]["hit@5"] = hits / n
    res["metrics"]["ci"]["hit@5"] = list(wilson_interval(hits, n))
    (run / "results.json").write_text(json.dumps(res))
    rc, _, err = _gate(capsys, run, "--min", 0.5)
    assert rc == 3 and "but" in err and "predictions.npz gives" in err


def test_a_results_file_without_its_predictions_says_it_is_unverified(scored, tmp_path, capsys):
    run = _copy(scored, tmp_path, with_predictions=False)
    rc, out, _ = _gate(capsys, run / "results.json", "--min", 0.0)
    assert rc == 0 and "NOT verified" in out
    rc, out, err = _gate(capsys, run / "results.json", "--min", 0.0, "--require-predictions")
    assert rc == 2 and out == "" and "predictions.npz: not found" in err


@pytest.mark.parametrize("argv, problem", [
    (["--min", "55"], "did you mean --min 0.55"),
    (["--min", "-0.1"], "a fraction in [0, 1]"),
    (["--metric", "median_rank", "--min", "0.5"], "median_rank: is lower-is-better"),
    (["--metric", "n_queries", "--min", "0.5"], "n_queries: is not a rate metric"),
    (["--metric", "queries_with_ties", "--min", "0.5"], "queries_with_ties: is not a rate metric"),
    (["--metric", "mean_percentile_rank", "--min", "0.5"], "mean_percentile_rank: is not a rate metric"),
    (["--metric", "par", "--min", "0.5"], "par: is held against a maximum"),
    (["--metric", "hit@5", "--max", "0.5"], "hit@5: is held against a minimum"),
    (["--metric", "par", "--max", "0"], "a maximum on par is a positive ratio"),
    (["--on", "ci_high"], "the lenient end of the interval"),
])
def test_metrics_and_thresholds_a_gate_cannot_use_are_refused(scored, capsys, argv, problem):
    rc, out, err = _gate(capsys, scored, *argv)
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1 and problem in err, err


def test_mrr_and_ndcg_can_be_gated(scored, capsys):
    for metric in ("mrr", "ndcg@10"):
        rc, out, _ = _gate(capsys, scored, "--metric", metric, "--min", 0.0)
        assert rc == 0 and "recomputed from predictions.npz" in out
    rc, out, _ = _gate(capsys, scored, "--metric", "mrr", "--min", 0.0, "--on", "ci_low")
    assert rc == 0 and "bootstrap 95% lower bound" in out


def test_a_recipe_gate_on_a_count_is_refused_before_any_work(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out),
               "--set", "gate.metric=median_rank"])
    assert rc == 2 and "gate.metric median_rank" in capsys.readouterr().err
    assert not out.exists()
