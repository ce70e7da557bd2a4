"""``lvmbench compare``: the leaderboard, its paired statistics and its refusals, checked by hand."""

import csv
import io
import json

import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.evaluate.stats import holm, win_tie_loss
from lvmbench.report.compare import leaderboard, load_run
from lvmbench.evaluate.metrics import wilson_interval

N = 20
TARGETS = np.arange(100, 100 + N)
# copy_last hits (rank 1) on the first 10 queries and misses (rank 50) on the last 10
COPY_LAST = np.array([1] * 10 + [50] * 10)
RANDOM = np.full(N, 200)
ALPHA = np.full(N, 2)  # Hit@5 everywhere
BETA = np.array([1] * 10 + [3] * 6 + [100] * 4)


def _run(tmp_path, name, model, ranks, split_sha="s" * 64, targets=TARGETS, baselines=None):
    d = tmp_path / name
    d.mkdir()
    results = {
        "schema_version": 1, "status": "complete",
        "model": {"name": model},
        "dataset": {"name": "fake", "sha256": "d" * 64},
        "split": {"sha256": split_sha},
        "pool": {"sha256": "p" * 64, "size": 400, "split": "test", "exclude_context": True},
        "metrics": {"chance": {"hit@1": 0.0025, "hit@5": 0.0125, "hit@10": 0.025}},
    }
    (d / "results.json").write_text(json.dumps(results))
    if baselines is None:
        baselines = {"copy_last": COPY_LAST, "random": RANDOM}
    np.savez_compressed(d / "predictions.npz", target_ids=targets, pool_ids=np.arange(100, 500), rank=ranks,
                        **{f"rank__{b}": r for b, r in baselines.items()})
    return d


@pytest.fixture
def two_runs(tmp_path):
    return _run(tmp_path, "a", "alpha", ALPHA), _run(tmp_path, "b", "beta", BETA)


def test_holm_on_known_pvalues():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1 and monotone
    assert holm([0.04]) == [0.04]
    assert holm([]) == []


def test_win_tie_loss_by_rank():
    assert win_tie_loss(np.array([1, 2, 3, 9]), np.array([2, 2, 1, 10])) == (2, 1, 1)


def test_leaderboard_values_by_hand(two_runs):
    board = leaderboard([load_run(p) for p in two_runs], "hit@5")
    rows = {r["predictor"]: r for r in board["rows"]}
    assert [r["predictor"] for r in board["rows"]] == ["alpha", "beta", "copy_last", "random"]
    assert board["best_baseline"] == "copy_last" and board["n_queries"] == N and board["pool_size"] == 400
    a, b, c = rows["alpha"], rows["beta"], rows["copy_last"]
    assert (a["hit@1"], a["hit@5"], b["hit@1"], b["hit@5"], c["hit@5"]) == (0.0, 1.0, 0.5, 0.8, 0.5)
    assert (a["hit@5_lo"], a["hit@5_hi"]) == wilson_interval(20, 20)
    assert (b["hit@5_lo"], b["hit@5_hi"]) == wilson_interval(16, 20)
    assert a["mrr"] == pytest.approx(0.5) and b["mrr"] == pytest.approx((10 + 6 / 3 + 4 / 100) / 20)
    assert c["mrr"] == pytest.approx((10 + 10 / 50) / 20)
    assert a["mrr_lo"] == a["mrr_hi"] == pytest.approx(0.5)  # every query has 1/rank = 0.5
    assert b["mrr_lo"] <= b["mrr"] <= b["mrr_hi"]
    assert a["lift"] == pytest.approx(0.5) and b["lift"] == pytest.approx(0.3) and c["lift"] == 0.0
    # McNemar on Hit@5 vs copy_last: alpha wins 10 discordant pairs, loses none -> 2 * 0.5**10
    assert a["mcnemar_p"] == pytest.approx(2 / 1024)
    # beta: 6 discordant pairs, all its way -> 2 * 0.5**6
    assert b["mcnemar_p"] == pytest.approx(2 / 64)
    assert a["holm_p"] == pytest.approx(2 * 2 / 1024) and b["holm_p"] == pytest.approx(2 / 64)
    assert (a["wins"], a["ties"], a["losses"]) == (10, 0, 10)  # rank 2 vs 1 loses, vs 50 wins
    assert (b["wins"], b["ties"], b["losses"]) == (6, 10, 4)
    assert c["wins"] is None and c["mcnemar_p"] is None  # the best baseline itself
    assert rows["random"]["mcnemar_p"] is None and rows["random"]["wins"] == 0


def test_metric_choice_sorts_and_picks_the_best_baseline_by_it(two_runs):
    board = leaderboard([load_run(p) for p in two_runs], "mrr")
    assert [r["predictor"] for r in board["rows"]] == ["beta", "copy_last", "alpha", "random"]
    beta = board["rows"][0]
    assert beta["lift"] == pytest.approx((10 + 2 + 0.04) / 20 - 0.51)


def test_cli_table_markdown_csv_json(two_runs, capsys):
    args = ["compare", str(two_runs[0]), str(two_runs[1])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "copy_last (baseline)" in out and "10/0/10" in out and "pool 400" in out
    assert main(args + ["--format", "markdown"]) == 0
    assert "| alpha" in capsys.readouterr().out
    assert main(args + ["--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["predictor"] for r in rows] == ["alpha", "beta", "copy_last", "random"]
    assert float(rows[1]["hit@5"]) == 0.8 and rows[1]["wins"] == "6" and rows[2]["mcnemar_p"] == ""
    assert main(args + ["--format", "json", "--metric", "MRR"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert board["metric"] == "mrr" and board["rows"][0]["predictor"] == "beta"


def test_hash_mismatch_is_refused_unless_forced(tmp_path, capsys):
    a = _run(tmp_path, "a", "alpha", ALPHA)
    b = _run(tmp_path, "b", "beta", BETA, split_sha="x" * 64)
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "split sha256 differs" in err and "--force" in err
    assert main(["compare", str(a), str(b), "--force"]) == 0
    assert "WARNING (--force): split sha256 differs" in capsys.readouterr().out


def test_different_query_sets_are_refused_even_forced(tmp_path, capsys):
    a = _run(tmp_path, "a", "alpha", ALPHA)
    b = _run(tmp_path, "b", "beta", BETA, targets=TARGETS + 1)
    assert main(["compare", str(a), str(b), "--force"]) == 2
    assert "target_ids differ" in capsys.readouterr().err


def test_missing_predictions_and_same_model_twice(tmp_path, capsys):
    a = _run(tmp_path, "a", "alpha", ALPHA)
    b = _run(tmp_path, "b", "alpha", BETA)
    board = leaderboard([load_run(a), load_run(b)])
    assert {r["predictor"] for r in board["rows"] if r["kind"] == "model"} == {"alpha (a)", "alpha (b)"}
    (b / "predictions.npz").unlink()
    assert main(["compare", str(a), str(b)]) == 2
    assert "predictions.npz" in capsys.readouterr().err


def test_a_run_of_a_baseline_is_listed_once_as_a_baseline(tmp_path):
    a = _run(tmp_path, "a", "alpha", ALPHA)
    c = _run(tmp_path, "c", "copy_last", COPY_LAST)
    r = _run(tmp_path, "r", "ridge", BETA)
    for d in (c, r):
        res = json.loads((d / "results.json").read_text())
        res["model"]["kind"] = "baseline"
        (d / "results.json").write_text(json.dumps(res))
    board = leaderboard([load_run(p) for p in (a, c, r)])
    kinds = {row["predictor"]: row["kind"] for row in board["rows"]}
    assert kinds == {"alpha": "model", "copy_last": "baseline", "random": "baseline", "ridge": "baseline"}
    assert board["best_baseline"] == "ridge"  # Hit@5 0.8 beats copy_last's 0.5
    assert [row["predictor"] for row in board["rows"] if row["holm_p"] is not None] == ["alpha"]
