"""Run directories written before the best checkpoint was named by the recipe's stopping metric.

Until then every run's best checkpoint was ``best_val_hit5.pt`` - an MRR run's too - and ``last.pt`` and
``training_history.json`` held ``best_hit5``; results.json was schema 1, whose direction rows of kind
"reference" are now of kind "bound".  Such a directory must still be evaluated, gated, timed, exported, compared
and resumed; a resumed one ends with one best checkpoint, named by its metric.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from lvmbench.cli import main
from lvmbench.errors import CheckpointError
from lvmbench.train.checkpoint import LEGACY_BEST, best_name, find_best, load_checkpoint, save_checkpoint

from conftest import FAST, scripted_validation, stop_in_second_epoch

SETS = FAST + ["train.max_epochs=3", "train.threads=1", "eval.bootstrap=20", "eval.latency_calls=3",
               "eval.baselines=copy_last,mean_context"]
MRR_BEST = "best_val_mrr.pt"


def _run_args(store, out):
    args = ["run", "--model", "gru", "--recipe", "contrastive", "--data", str(store.path), "--out", str(out)]
    for item in SETS:
        args += ["--set", item]
    return args


def _json(path):
    return json.loads(path.read_text())


def _with_best_hit5(history):
    """The history as the older lvmbench wrote it: ``best_hit5`` (the best epoch's val Hit@5) after the rows."""
    row = next(r for r in history["history"] if r["epoch"] == history["best_epoch"])
    out = {}
    for key, value in history.items():
        out[key] = value
        if key == "history":
            out["best_hit5"] = row["val_hit@5"]
    return out


def make_old(run_dir, keep_best_metric=True):
    """Turn a contrastive run directory written now into what the older lvmbench wrote."""
    (run_dir / MRR_BEST).rename(run_dir / LEGACY_BEST)
    history = _with_best_hit5(_json(run_dir / "training_history.json"))
    (run_dir / "training_history.json").write_text(json.dumps(history, indent=2))
    last = {k: v for k, v in load_checkpoint(run_dir / "last.pt").items() if k not in ("format", "format_version")}
    last["history"] = _with_best_hit5(last["history"])
    last["best_hit5"] = last["history"]["best_hit5"]
    if not keep_best_metric:
        del last["best_metric"]
    save_checkpoint(run_dir / "last.pt", last)
    if (run_dir / "results.json").is_file():
        res = _json(run_dir / "results.json")
        res["schema_version"] = 1
        res["model"]["checkpoint"] = str(run_dir / LEGACY_BEST)
        for row in res["diagnostics"]["rows"].values():
            row["kind"] = "reference" if row["kind"] == "bound" else row["kind"]
        (run_dir / "results.json").write_text(json.dumps(res, indent=2))


@pytest.fixture(scope="module")
def new_run(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("mrr") / "run"
    assert main(_run_args(tiny_store, out)) == 0
    return out


def test_the_best_checkpoint_is_named_by_the_stop_metric(new_run):
    assert best_name("hit@5") == LEGACY_BEST and best_name("mrr") == MRR_BEST and best_name("hit@10") == "best_val_hit10.pt"
    assert (new_run / MRR_BEST).is_file() and not (new_run / LEGACY_BEST).exists()
    history, res = _json(new_run / "training_history.json"), _json(new_run / "results.json")
    assert history["stop_metric"] == "mrr" and "best_hit5" not in history
    assert "best_hit5" not in load_checkpoint(new_run / "last.pt")
    assert res["model"]["checkpoint"] == str(new_run / MRR_BEST)
    best_row = next(r for r in history["history"] if r["epoch"] == history["best_epoch"])
    assert history["best_metric"] == best_row["val_mrr"]
    assert res["consistency"]["val"]["recorded_val_hit@5"] == best_row["val_hit@5"]


def test_an_old_run_directory_still_evaluates_gates_times_exports_and_compares(new_run, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(new_run, old)
    make_old(old)
    want = _json(new_run / "results.json")
    assert find_best(old) == old / LEGACY_BEST and find_best(old, "mrr") == old / LEGACY_BEST
    assert main(["eval", str(old), "--out", str(tmp_path / "ev")]) == 0
    ev = _json(tmp_path / "ev" / "results.json")
    assert ev["model"]["checkpoint"] == str(old / LEGACY_BEST)
    assert {k: ev["metrics"][k] for k in ("hit@1", "hit@5", "mrr")} == {k: want["metrics"][k] for k in
                                                                       ("hit@1", "hit@5", "mrr")}
    assert main(["gate", str(old), "--min", "0"]) == 0
    assert main(["latency", str(old), "--calls", "3", "--seconds", "0.1"]) == 0
    assert main(["trec", str(old), "--out", str(tmp_path / "trec")]) == 0
    capsys.readouterr()
    assert main(["compare", str(old), str(new_run)]) == 0
    assert main(["run", "--resume", str(old)]) == 2  # finished: nothing to resume
    assert "already finished" in capsys.readouterr().err


def test_an_interrupted_old_run_resumes_into_one_best_checkpoint_named_by_its_metric(new_run, tiny_store, tmp_path,
                                                                                     monkeypatch):
    import lvmbench.train.trainer as loop

    run = tmp_path / "run"
    real = loop.validate_epoch
    stop_in_second_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        main(_run_args(tiny_store, run))
    monkeypatch.setattr(loop, "validate_epoch", real)
    make_old(run)
    assert (run / LEGACY_BEST).is_file() and not (run / MRR_BEST).exists()
    assert main(["run", "--resume", str(run)]) == 0
    assert (run / MRR_BEST).is_file() and not (run / LEGACY_BEST).exists()
    history, want = _json(run / "training_history.json"), _json(new_run / "training_history.json")
    assert "best_hit5" not in history and history["best_epoch"] == want["best_epoch"]
    assert history["best_metric"] == pytest.approx(want["best_metric"], abs=1e-6)
    res = _json(run / "results.json")
    assert res["status"] == "complete" and res["model"]["checkpoint"] == str(run / MRR_BEST)
    assert res["metrics"]["hit@5"] == _json(new_run / "results.json")["metrics"]["hit@5"]


def test_a_last_pt_holding_only_best_hit5_still_resumes(tiny_store, fast_recipe, tmp_path, monkeypatch):
    """The oldest last.pt: no best_metric, its best_hit5 the early-stopping state of a Hit@5 recipe."""
    import lvmbench.train.trainer as loop
    from lvmbench.config import apply_overrides
    from lvmbench.data.prepare import prepare
    from lvmbench.evaluate.evaluation import pool_for
    from lvmbench.evaluate.queries import make_queries
    from lvmbench.models.build import build_model

    recipe = apply_overrides(fast_recipe, ["train.max_epochs=10"])
    prep = prepare(tiny_store, recipe)
    pool = pool_for(prep, recipe, "val")
    data = loop.TrainData(torch.from_numpy(prep.unit), prep.samples["train"].subset(np.arange(40)),
                          prep.samples["val"], make_queries(prep.samples["val"], pool, 100),
                          torch.from_numpy(pool.vectors))

    monkeypatch.setattr(loop, "validate_epoch", scripted_validation([0.50, 0.30, KeyboardInterrupt]))
    with pytest.raises(loop.Interrupted):
        loop.train(build_model("memory_gru", prep, recipe), data, recipe, tmp_path, "memory_gru", log=lambda m: None)
    last = {k: v for k, v in load_checkpoint(tmp_path / "last.pt").items() if k not in ("format", "format_version")}
    last["best_hit5"] = last.pop("best_metric")
    for key in ("best_metric", "stop_metric"):
        del last["history"][key]
    last["history"] = _with_best_hit5(last["history"])
    monkeypatch.setattr(loop, "validate_epoch", scripted_validation([0.40, 0.45, 0.99]))
    hist = loop.train(build_model("memory_gru", prep, recipe), data, recipe, tmp_path, "memory_gru",
                      log=lambda m: None, resume=last)
    # 0.40 and 0.45 are worse than the restored 0.50: patience 3 runs out at epoch 4
    assert [h["epoch"] for h in hist["history"]] == [1, 2, 3, 4] and "early stop" in hist["stop_reason"]
    assert hist["best_epoch"] == 1 and hist["best_metric"] == 0.50 and hist["stop_metric"] == "hit@5"
    assert "best_hit5" not in hist and "best_hit5" not in load_checkpoint(tmp_path / "last.pt")
    assert load_checkpoint(tmp_path / LEGACY_BEST)["epoch"] == 1
    del last["best_hit5"]
    with pytest.raises(CheckpointError, match="lacks best_metric"):
        loop.train(build_model("memory_gru", prep, recipe), data, recipe, tmp_path, "memory_gru",
                   log=lambda m: None, resume=last)


def test_find_best_prefers_the_metrics_name_and_refuses_to_guess(tmp_path):
    assert find_best(tmp_path) is None and find_best(tmp_path, "mrr") is None
    (tmp_path / LEGACY_BEST).write_bytes(b"")
    assert find_best(tmp_path) == tmp_path / LEGACY_BEST == find_best(tmp_path, "mrr")
    (tmp_path / MRR_BEST).write_bytes(b"")
    assert find_best(tmp_path) == tmp_path / MRR_BEST == find_best(tmp_path, "mrr")
    assert find_best(tmp_path, "hit@5") == tmp_path / LEGACY_BEST
    (tmp_path / "best_val_hit1.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="several best checkpoints"):
        find_best(tmp_path)
