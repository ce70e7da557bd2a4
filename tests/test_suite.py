"""``lvmbench suite`` on small synthetic tasks, document-level k-fold cross-validation, compare of suites."""

from __future__ import annotations

import json

import pytest

from conftest import job
from lvmbench.cli import main
from lvmbench.data.synth import write_synth

QUICK = ["--set", "eval.bootstrap=20", "--set", "train.max_epochs=2", "--set", "model.hidden=32",
         "--set", "model.layers=1", "--set", "model.head_hidden=32", "--set", "train.accum_steps=1"]


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory):
    """Three synthetic tasks, each fixing its split and gates in its manifest, as the real suite does."""
    root = tmp_path_factory.mktemp("suite")
    for name, seed, test_frac in (("alpha", 1, 0.2), ("beta", 2, 0.3), ("gamma", 3, 0.25)):
        store = write_synth(root / name, n_chains=40, dim=16, seed=seed)
        mpath = store.path / "manifest.json"
        manifest = json.loads(mpath.read_text())
        manifest["recipe"] = {"data": {"train_frac": 0.8 - test_frac, "val_frac": 0.2, "test_frac": test_frac,
                                       "min_chain_len": 7}}
        manifest["suite"] = {"task": name, "domain": f"synthetic {name}"}
        manifest["license"] = "CC0-1.0"
        manifest["source"] = {"package": "lvmbench-synth", "version": "2"}
        mpath.write_text(json.dumps(manifest, indent=2))
    (root / "not-a-task").mkdir()
    return root


def _json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_suite_list_agrees_with_data_info(suite_root, capsys):
    tasks = _json(capsys, ["suite", "list", "--json", "--root", str(suite_root)])
    assert [t["name"] for t in tasks] == ["alpha", "beta", "gamma"]
    for t in tasks:
        assert {"name", "path", "test_queries", "pool", "license", "source", "chance_hit@5"} <= set(t)
        info = _json(capsys, ["data", "info", t["path"], "--json", "--set", "eval.bootstrap=20"])
        assert info["samples"]["test"] == t["test_queries"] == info["difficulty"]["queries"]
        assert info["difficulty"]["pool"]["size"] == t["pool"]
    assert tasks[1]["split"]["test_frac"] == 0.3


def test_a_task_refuses_a_split_other_than_its_own(suite_root, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--model", "copy_last", "--data", str(suite_root / "beta"), "--out", str(out),
                 "--set", "data.test_frac=0.1", "--set", "data.train_frac=0.8"]) == 2
    err = capsys.readouterr().err
    assert "fixes data.train_frac = 0.5" in err or "fixes data.test_frac = 0.3" in err
    assert not out.exists()


@pytest.fixture(scope="module")
def baseline_suite(suite_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "copy"
    assert main(["suite", "run", "--model", "copy_last", "--root", str(suite_root), "--out", str(out)] + QUICK) == 0
    return out


def test_suite_run_writes_a_run_per_task_and_the_suite_table(baseline_suite, suite_root):
    summary = json.loads((baseline_suite / "suite.json").read_text())
    assert summary["tasks"] == ["alpha", "beta", "gamma"] and summary["failed"] == []
    for row in summary["rows"]:
        assert (job(baseline_suite / row["task"], "copy_last-s0") / "results.json").is_file()
        assert [r["run_dir"] for r in row["runs"]] == [str(job(baseline_suite / row["task"], "copy_last-s0")
                                                          .relative_to(baseline_suite))]
        assert row["best_baseline"] in row["baselines"] and "holm_p" in row["vs_best"]
        lo, hi = row["vs_best"]["lift_ci_hit@5"]
        assert lo <= row["vs_best"]["hit@5"] <= hi
    rows = summary["rows"]
    assert summary["macro"]["hit@5"] == pytest.approx(sum(r["hit@5"] for r in rows) / 3)
    assert "macro average" in (baseline_suite / "suite.md").read_text()


def test_suite_run_estimates_before_training_and_cross_validates(suite_root, baseline_suite, tmp_path, capsys):
    out = tmp_path / "cv"
    capsys.readouterr()
    assert main(["suite", "run", "--model", "gru", "--tasks", "alpha", "--folds", "3", "--root", str(suite_root),
                 "--out", str(out)] + QUICK) == 0
    printed = capsys.readouterr().out
    assert printed.index("estimated upper bound") < printed.index("training gru")
    row = json.loads((out / "suite.json").read_text())["rows"][0]
    folds = [json.loads((job(out / "alpha", f"gru-fold-{f}-s0") / "results.json").read_text()) for f in range(3)]
    assert row["n_queries"] == sum(r["metrics"]["n_queries"] for r in folds)  # pooled over the folds
    assert len(row["folds"]["hit@5"]) == 3 and row["folds"]["min"] <= row["hit@5"] <= row["folds"]["max"]
    tested = [set(r["split"]["sizes"]) and json.loads((job(out / "alpha", f"gru-fold-{f}-s0") / "split.json").read_text())
              ["chains"]["test"] for f, r in enumerate(folds)]
    assert not set(tested[0]) & set(tested[1]) and not set(tested[1]) & set(tested[2])  # each document tested once
    # compare accepts suite directories, task by task, fold by fold when the other suite has the same folds
    capsys.readouterr()
    assert main(["compare", str(baseline_suite), str(baseline_suite)]) == 0
    assert "== alpha" in capsys.readouterr().out


def test_suite_dry_run_estimates_and_writes_nothing(suite_root, tmp_path, capsys):
    out = tmp_path / "dry"
    capsys.readouterr()
    assert main(["suite", "run", "--model", "gru", "--dry-run", "--root", str(suite_root), "--out", str(out)]
                + QUICK) == 0
    printed = capsys.readouterr().out
    assert printed.count("per epoch") == 3 and "estimated upper bound" in printed and not out.exists()


def test_run_folds_pools_every_document_of_the_default_kind_of_dataset(tiny_store, tmp_path):
    out = tmp_path / "cv"
    assert main(["run", "--model", "mean_context", "--folds", "3", "--data", str(tiny_store.path), "--out", str(out),
                 "--set", "eval.bootstrap=20"]) == 0
    cvj = json.loads((out / "cv.json").read_text())
    row = cvj["rows"][0]
    sizes = [json.loads((job(out, f"mean_context-fold-{f}-s0") / "results.json").read_text())["metrics"]["n_queries"]
             for f in range(3)]
    assert row["n_queries"] == sum(sizes) and len(row["folds"]["hit@5"]) == 3


def test_a_suite_is_gated_against_a_deployed_suite_task_by_task_and_on_the_macro_average(baseline_suite, suite_root,
                                                                                        tmp_path, capsys):
    deployed = tmp_path / "deployed"
    assert main(["suite", "run", "--model", "global_mean", "--root", str(suite_root), "--out", str(deployed)]
                + QUICK) == 0
    capsys.readouterr()
    assert main(["gate", str(baseline_suite), "--against", str(deployed)]) == 0  # copy_last vs a constant prediction
    out = capsys.readouterr().out
    for task in ("alpha", "beta", "gamma"):
        assert f"against {deployed} [{task}]: hit@5 lift +" in out and "Holm p" in out
    assert f"against {deployed} [macro average of 3 tasks]" in out and "gate: PASS (4 of 4 criteria passed)" in out
    assert main(["gate", str(deployed), "--against", str(baseline_suite)]) == 1
    assert "gate: FAIL" in capsys.readouterr().out
    assert main(["gate", str(baseline_suite), "--min", "0.5"]) == 2  # thresholds are held per task run directory
    assert "a directory of several runs is gated with --lift-every-seed (or, for a suite, --against" in capsys.readouterr().err
