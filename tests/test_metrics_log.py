"""metrics.jsonl and TensorBoard: the per-epoch log a tracker reads agrees with the training history."""

from __future__ import annotations

import json

import pytest

from lvmbench.cli import main
from lvmbench.train.metrics_log import METRICS_LOG, TENSORBOARD_DIR, read_metrics

from conftest import FAST

pytestmark = pytest.mark.usefixtures("restore_threads")


def _train(store, out, *extra):
    args = ["run", "--data", str(store.path), "--out", str(out), *extra]
    for item in FAST + ["train.max_epochs=3", "train.threads=1", "eval.bootstrap=50",
                        "eval.baselines=copy_last", "data.context_len=8"]:
        args += ["--set", item]
    assert main(args) == 0
    return json.loads((out / "training_history.json").read_text())["history"]


def test_every_epoch_logs_a_train_and_a_val_line_equal_to_the_history(tiny_store, tmp_path):
    out = tmp_path / "run"
    history = _train(tiny_store, out)
    records = read_metrics(out / METRICS_LOG)
    assert [(r["event"], r["epoch"]) for r in records] == [(e, row["epoch"]) for row in history
                                                           for e in ("train", "val")]
    for row, train, val in zip(history, records[::2], records[1::2]):
        assert train["train_loss"] == row["train_loss"] and train["lr"] == row["lr"]
        assert train["step"] == val["step"] == row["step"]
        assert {k: v for k, v in val.items() if k.startswith("val_")} == {
            k: v for k, v in row.items() if k.startswith("val_")}
    assert not (out / TENSORBOARD_DIR).exists(), "TensorBoard files only when asked for"


def test_logger_tensorboard_writes_the_same_scalars(tiny_store, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    history = _train(tiny_store, out, "--logger", "tensorboard")
    events = EventAccumulator(str(out / TENSORBOARD_DIR))
    events.Reload()
    hit5 = [(e.step, e.value) for e in events.Scalars("val/val_hit@5")]
    assert hit5 == [(row["epoch"], pytest.approx(row["val_hit@5"], abs=1e-6)) for row in history]
    assert len(events.Scalars("train/train_loss")) == len(history)
    assert json.loads((out / "recipe.json").read_text())["train"]["logger"] == "tensorboard"


def test_unknown_logger_is_one_line_exit_2(tiny_store, tmp_path, capsys):
    assert main(["run", "--data", str(tiny_store.path), "--out", str(tmp_path / "r"),
                 "--set", "train.logger=wandb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.logger" in err[0]
