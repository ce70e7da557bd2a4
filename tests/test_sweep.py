"""Several runs in one command: ``sweep`` (context length on a fixed pool) and ``run --model a,b``."""

import json

import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.errors import IntegrityError, UsageError
from lvmbench.models import registry
from lvmbench.runs.series import parse_models
from lvmbench.runs.sweep import parse_contexts

from conftest import FAST, job

QUICK = [a for item in FAST + ["train.max_epochs=2"] for a in ("--set", item)]


def _npz(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_sweep_scores_every_context_on_the_same_queries_and_pool(tiny_store, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", "gru", "--context", "5,2", "--data", str(tiny_store.path), "--out", str(out)]
                + QUICK) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["contexts"] == [2, 5] and summary["exclude_len"] == 5
    assert all(v is True for v in summary["checks"].values()), summary["checks"]
    a, b = (json.loads((job(out, f"gru-ctx-{c}") / "results.json").read_text()) for c in (2, 5))
    za, zb = _npz(job(out, "gru-ctx-2") / "predictions.npz"), _npz(job(out, "gru-ctx-5") / "predictions.npz")
    # each point really trained and scored with its own context length ...
    assert (a["recipe"]["data"]["context_len"], b["recipe"]["data"]["context_len"]) == (2, 5)
    assert not np.array_equal(za["rank__mean_context"], zb["rank__mean_context"])
    # ... against the identical queries, pool and candidate set, as recorded in sweep.json
    assert np.array_equal(za["target_ids"], zb["target_ids"]) and np.array_equal(za["pool_ids"], zb["pool_ids"])
    assert a["pool"]["sha256"] == b["pool"]["sha256"] == summary["pool"]["sha256"]
    assert a["pool"]["exclude_len"] == b["pool"]["exclude_len"] == 5
    assert np.array_equal(za["context_ids"], zb["context_ids"])
    assert np.array_equal(za["rank__copy_last"], zb["rank__copy_last"])
    assert summary["queries"]["n"] == len(za["target_ids"])
    for point, res in zip(summary["points"], (a, b)):
        assert point["status"] == "ok"
        assert point["metrics"]["hit@5"] == res["metrics"]["hit@5"]
        assert point["metrics"]["ci"]["hit@5"] == res["metrics"]["ci"]["hit@5"]
    assert summary["reference"]["name"] == "copy_last"
    assert "copy_last (baseline, any context)" in printed and "same_queries OK" in printed
    assert (out / "sweep.md").read_text().count("Hit@5 % [95% CI]") == 1


def test_sweep_refuses_bad_contexts_and_a_clashing_override(tiny_store, tmp_path, capsys):
    assert parse_contexts("100,5,20") == [5, 20, 100]
    for bad in ("5,x", "5,5", "0,3", ""):
        with pytest.raises(UsageError):
            parse_contexts(bad)
    args = ["sweep", "--model", "gru", "--context", "2,5", "--data", str(tiny_store.path), "--out", str(tmp_path / "s")]
    assert main(args + ["--set", "data.context_len=3"]) == 2
    assert "--context" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_sweep_fails_loudly_when_points_are_not_on_the_same_queries(tiny_store, tmp_path, monkeypatch):
    import lvmbench.runs.sweep as sw

    real = sw._load_point

    def shifted(run_dir):  # plant a different query set at the second point
        arrays = real(run_dir)
        if run_dir.name.startswith("copy_last-ctx-3-"):
            arrays["target_ids"] = arrays["target_ids"][::-1].copy()
        return arrays

    monkeypatch.setattr(sw, "_load_point", shifted)
    from lvmbench.config import apply_overrides, Recipe

    recipe = apply_overrides(Recipe(), list(FAST) + ["model.name=copy_last"])  # a baseline: nothing to train
    with pytest.raises(IntegrityError, match="same_queries"):
        sw.sweep(recipe, [1, 3], str(tiny_store.path), tmp_path / "s", log=lambda m: None)
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["checks"]["same_queries"] is False


def test_parse_models_all_and_refusals():
    assert parse_models("all") == registry.trained_models()
    assert "copy_last" not in parse_models("all") and "memory_gru" in parse_models("all")
    assert parse_models("gru, amn") == ["gru", "amn"]
    with pytest.raises(UsageError, match="more than once"):
        parse_models("gru,gru")
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        parse_models("gru,nope")


def test_multi_model_run_continues_past_a_failure_and_ends_with_the_leaderboard(
    tiny_store, tmp_path, capsys, monkeypatch
):
    import lvmbench.runs.single as pl

    real = pl.train_and_score

    def flaky(recipe, *args, **kwargs):
        if recipe.model.name == "amn":
            raise IntegrityError("planted failure for amn")
        return real(recipe, *args, **kwargs)

    monkeypatch.setattr(pl, "train_and_score", flaky)
    monkeypatch.chdir(tmp_path)  # default output: runs/<timestamp>-multi/<model>/
    rc = main(["run", "--model", "gru,amn,lstm", "--data", str(tiny_store.path)] + QUICK)
    assert rc == 3  # the failure's exit code, after the others finished
    captured = capsys.readouterr()
    (parent,) = (tmp_path / "runs").glob("*-multi")
    for name in ("gru", "lstm"):
        assert (job(parent, f"{name}-s0") / "results.json").is_file(), name
    assert not (job(parent, "amn-s0") / "results.json").exists()
    assert "FAILED amn: planted failure for amn" in captured.out
    summary = json.loads((parent / "multi.json").read_text())
    assert summary["failed"] == ["amn"]
    assert [r["status"] for r in summary["runs"]] == ["ok", "failed", "ok"]
    board = summary["leaderboard"]
    models = {r["predictor"] for r in board["rows"] if r["kind"] == "model"}
    assert models == {"gru", "lstm"}
    assert "copy_last (baseline)" in captured.out and "McNemar" in captured.out
    assert "lstm" in (parent / "leaderboard.md").read_text()
    # both finished runs were scored on the same queries and pool (compare would refuse otherwise)
    gru_res, lstm_res = (json.loads((job(parent, f"{n}-s0") / "results.json").read_text()) for n in ("gru", "lstm"))
    assert gru_res["pool"]["sha256"] == lstm_res["pool"]["sha256"]
    assert gru_res["split"]["sha256"] == lstm_res["split"]["sha256"]
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # the plot extra is optional
        return
    assert (parent / "leaderboard.png").is_file() and (job(parent, "gru-s0") / "curves.png").is_file()


def test_multi_model_run_refuses_resume_and_existing_output(tiny_store, tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    (out / "old.txt").write_text("x")
    assert main(["run", "--model", "gru,amn", "--data", str(tiny_store.path), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--model", "gru,amn"]) == 2
