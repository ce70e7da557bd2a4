"""No free pass: outputs that tie every candidate, runs that failed, and directories two commands share.

Each test is a reproduction that scored, passed or crashed before: a model whose
output is zero, huge or cancels the last context vector; predictions overflowed
in float32; a model that returns NaN in eval mode; a gate on a failed run.
"""

from __future__ import annotations

import json
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lvmbench.cli import main

from conftest import FAST

QUICK = [*(a for kv in FAST for a in ("--set", kv)), "--set", "train.max_epochs=2"]

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    class Zero(nn.Module):
        """Scored 100 % before: every candidate tied with the target, and ties never counted."""
        lvmbench_kind = "baseline"

        def __init__(self, dim):
            super().__init__()

        def forward(self, context, lengths):
            return torch.zeros(context.shape[0], context.shape[2])

    class Huge(nn.Module):
        """copy_last x 1e20: its square overflows float32, so predict() normalised it to zeros."""
        lvmbench_kind = "baseline"

        def __init__(self, dim):
            super().__init__()

        def forward(self, context, lengths):
            return context[torch.arange(context.shape[0]), lengths - 1] * 1e20

    class Cancel(nn.Module):
        """A delta model whose step is -x_last: x_last + step = 0."""
        lvmbench_kind = "baseline"
        predicts_delta = True

        def __init__(self, dim):
            super().__init__()

        def forward(self, context, lengths):
            return -context[torch.arange(context.shape[0]), lengths - 1]

    class NanInEval(nn.Module):
        """Finite while training and at the build check, NaN in eval mode on real batches."""

        def __init__(self, dim):
            super().__init__()
            self.w = nn.Linear(dim, dim)

        def forward(self, context, lengths):
            out = self.w(context[torch.arange(context.shape[0]), lengths - 1])
            if not self.training and context.shape[0] > 2:
                return out * float("nan")
            return out

    class ShapeShift(nn.Module):
        """[B, D] at the build check (eval mode, batch 2), [B, D // 2] once training starts."""

        def __init__(self, dim):
            super().__init__()
            self.w = nn.Linear(dim, dim)

        def forward(self, context, lengths):
            out = self.w(context[:, 0])
            return out[:, : out.shape[1] // 2] if self.training else out
''')


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "fp_models.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fp_models", raising=False)
    return "fp_models"


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("name, problem", [
    ("Zero", "the prediction is all zeros"),
    ("Huge", "overflows float32 when squared"),
    ("Cancel", "the model's step cancels the last context vector"),
])
def test_an_output_that_ties_every_candidate_is_an_integrity_failure(models, tiny_store, tmp_path, capsys,
                                                                     name, problem):
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", "--model", f"{models}:{name}", "--data", str(tiny_store.path), "--out", str(out)]) == 3
    err = _err(capsys)
    assert f"{models}:{name}: test query 0 (target row" in err and problem in err and "cannot be scored" in err
    assert not (out / "results.json").exists()
    assert main(["gate", str(out)]) in (2, 3)  # nothing to gate: no results, and the directory is marked unfinished


def test_predictions_overflowed_in_float32_are_refused_by_score(tiny_store, tmp_path, capsys):
    task = tmp_path / "task.npz"
    assert main(["task", "--data", str(tiny_store.path), "--out", str(task)]) == 0
    t = np.load(task)
    unit = np.load(tiny_store.path / "vectors.npy").astype(np.float32)
    copy_last = unit[t["target_ids"] - 1]
    for scale, dtype, problem in ((1e30, np.float32, "row 0: the prediction overflows float32 when squared"),
                                  (1e300, np.float64, "row 0 overflows float32 (largest |x| = "),
                                  (1e-30, np.float32, "underflows float32 when squared")):
        pred = tmp_path / "pred.npy"
        np.save(pred, (copy_last.astype(dtype) * scale).astype(dtype))
        capsys.readouterr()
        assert main(["score", str(pred), "--task", str(task), "--out", str(tmp_path / "s")]) == 2
        err = _err(capsys)  # one line: no numpy RuntimeWarning before it
        assert problem in err and str(pred) in err, err
        assert not (tmp_path / "s").exists()


def test_a_model_nan_in_eval_mode_never_becomes_the_best_epoch_and_cannot_be_gated(models, tiny_store, tmp_path,
                                                                                    capsys):
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", "--model", f"{models}:NanInEval", "--data", str(tiny_store.path), "--out", str(out),
                 *QUICK]) == 3
    captured = capsys.readouterr()
    assert "not eligible as best" in captured.out and "*best*" not in captured.out
    assert "val query 0: the prediction has NaN or Inf" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "training produced no checkpoint: no epoch had a usable val Hit@5" in err[0]
    assert not (out / "results.json").exists() and (out / ".incomplete").exists()
    for command in (["gate", str(out)], ["compare", str(out)], ["eval", str(out), "--model", f"{models}:NanInEval"]):
        assert main(command) == 3
        assert "did not finish" in _err(capsys)


def test_a_shape_that_changes_after_the_build_check_names_the_model_and_the_step(models, tiny_store, tmp_path,
                                                                                  capsys):
    capsys.readouterr()
    assert main(["run", "--model", f"{models}:ShapeShift", "--data", str(tiny_store.path), "--out",
                 str(tmp_path / "run"), *QUICK]) == 3
    err = _err(capsys)
    assert f"model '{models}:ShapeShift': training step 1 (epoch 1)" in err and "must return [B, D]" in err


def _inconsistent(run: Path) -> None:
    """The run as a consistency failure leaves it: results.json written with that status."""
    res = json.loads((run / "results.json").read_text())
    res["consistency"].update(ok=False, n_mismatch=3)
    res["status"], res["status_detail"] = "inconsistent", "training-time Hit@K and FAISS disagree on 3 queries"
    (run / "results.json").write_text(json.dumps(res))


def test_the_gate_and_compare_only_believe_a_finished_consistent_run(tiny_store, tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for out in (good, bad):
        assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)]) == 0
    _inconsistent(bad)
    capsys.readouterr()
    assert main(["gate", str(bad), "--min", "0"]) == 3
    assert "the run is inconsistent" in _err(capsys)
    assert main(["compare", str(good), str(bad)]) == 0
    out = capsys.readouterr().out
    assert f"left out: {bad}: the run is inconsistent" in out
    # a predictions.npz whose ranks disagree is refused even when results.json claims a complete run
    z = dict(np.load(good / "predictions.npz"))
    z["retrieved"] = np.where(z["retrieved"] == 1, 7, z["retrieved"])
    np.savez_compressed(good / "predictions.npz", **z)
    assert main(["gate", str(good), "--min", "0"]) == 3
    assert "disagree on" in _err(capsys)


def test_a_corrupt_member_of_predictions_npz_is_an_integrity_failure_not_a_failed_gate(tiny_store, tmp_path,
                                                                                        capsys):
    run = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(run)]) == 0
    npz = run / "predictions.npz"
    with zipfile.ZipFile(npz) as zf:
        info = zf.getinfo("rank.npy")
    blob = bytearray(npz.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 5, start + min(info.compress_size, 60)):
        blob[i] ^= 0xFF  # garbage inside the deflated member
    npz.write_bytes(bytes(blob))
    capsys.readouterr()
    assert main(["gate", str(run), "--min", "0"]) == 3
    err = _err(capsys)
    assert str(npz) in err and "not a readable predictions file" in err


@pytest.mark.parametrize("meta_edit, problem", [
    (lambda m: m["dataset"].pop("sha256"), "task meta lacks 'dataset.sha256'"),
    (lambda m: m.update(n_queries="many"), "task meta 'n_queries' is str"),
    (lambda m: m.update(recipe=[1, 2]), "task meta 'recipe' is list"),
    (lambda m: m.update(split="train"), "expected 'test' or 'val'"),
])
def test_malformed_task_meta_is_one_line_and_exit_2(tiny_store, tmp_path, capsys, meta_edit, problem):
    task = tmp_path / "task.npz"
    assert main(["task", "--data", str(tiny_store.path), "--out", str(task)]) == 0
    arrays = dict(np.load(task))
    meta = json.loads(arrays["meta"].item())
    meta_edit(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(task, **arrays)
    pred = tmp_path / "pred.npy"
    np.save(pred, np.ones((len(arrays["target_ids"]), 32), np.float32))
    capsys.readouterr()
    assert main(["score", str(pred), "--task", str(task), "--out", str(tmp_path / "s")]) == 2
    err = _err(capsys)
    assert problem in err and str(task) in err


def test_context_ids_of_a_task_are_checked_against_the_dataset(tiny_store, tmp_path, capsys):
    task = tmp_path / "task.npz"
    assert main(["task", "--data", str(tiny_store.path), "--out", str(task)]) == 0
    arrays = dict(np.load(task))
    arrays["context_ids"][0, 0] += 1  # a context that is not the target's own
    np.savez(task, **arrays)
    pred = tmp_path / "pred.npy"
    np.save(pred, np.ones((len(arrays["target_ids"]), 32), np.float32))
    capsys.readouterr()
    assert main(["score", str(pred), "--task", str(task), "--out", str(tmp_path / "s")]) == 2
    assert "'context_ids' differs" in _err(capsys)


def test_eval_uses_the_dataset_the_run_recorded_never_the_default(tiny_store, tmp_path, capsys):
    from lvmbench.data.synth import write_synth

    data = write_synth(tmp_path / "other", n_chains=40, dim=32, seed=5).path
    run = tmp_path / "run"
    assert main(["run", "--model", "amn", "--data", str(data), "--out", str(run), *QUICK]) == 0
    recorded = json.loads((run / "results.json").read_text())["metrics"]["hit@5"]
    assert main(["eval", str(run), "--out", str(tmp_path / "ev")]) == 0  # no --data: the recorded one
    assert json.loads((tmp_path / "ev" / "results.json").read_text())["metrics"]["hit@5"] == recorded
    data.rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["eval", str(run), "--out", str(tmp_path / "ev2")]) == 2
    err = _err(capsys)
    assert "was trained on dataset sha256" in err and str(data) in err and "pass --data" in err
    assert not (tmp_path / "ev2").exists()
    assert main(["eval", str(run), "--data", str(tmp_path / "moved"), "--out", str(tmp_path / "ev3")]) == 0


def test_a_bank_row_too_large_for_float32_squares_is_still_a_direction(tmp_path):
    import warnings

    from lvmbench.evaluate.index import load_bank

    v = np.random.default_rng(0).normal(size=(50, 32)).astype(np.float32)
    v[7] *= np.float32(1e30)  # its square overflows float32; it used to become an all-zero candidate
    np.save(tmp_path / "bank.npy", v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no numpy RuntimeWarning on the way
        bank = load_bank(tmp_path / "bank.npy", 32, log=lambda m: None)
    want = v[7].astype(np.float64) / np.linalg.norm(v[7].astype(np.float64))
    assert np.allclose(bank.vectors[7], want, atol=1e-6)
    assert np.allclose(np.linalg.norm(bank.vectors, axis=1), 1.0, atol=1e-5)


def test_gate_help_prints_a_plain_percent_sign(capsys):
    with pytest.raises(SystemExit):
        main(["gate", "--help"])
    out = capsys.readouterr().out
    assert "55 % is --min 0.55" in " ".join(out.split()) and "%%" not in out


def test_the_training_log_prints_val_hit_at_k_in_percent_like_every_table(tiny_store, tmp_path, capsys):
    assert main(["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(tmp_path / "r"), *QUICK]) == 0
    epoch = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch   1"))
    import re

    assert re.search(r"val_hit@5 \d+\.\d%", epoch) and re.search(r"val_mrr 0\.\d{3}", epoch), epoch
