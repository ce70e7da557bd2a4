"""Interrupted runs: SIGKILL and Ctrl-C, resume, atomic writes, determinism.

A resumed run must reproduce the uninterrupted one: the same per-epoch
history and the same results metrics (CPU, one thread, same seed).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from lvmbench.cli import main
from lvmbench.io import atomic_write, atomic_write_json
from lvmbench.train.checkpoint import load_checkpoint, save_checkpoint
from lvmbench.train.metrics_log import METRICS_LOG, read_metrics

from conftest import FAST, scripted_validation

RUN_SET = FAST + ["train.max_epochs=5", "train.threads=1", "eval.bootstrap=50", "data.context_len=16",
                  "eval.baselines=copy_last,mean_context"]
EXACT = ("epoch", "step", "val_hit@1", "val_hit@5", "val_hit@10")


def _run_args(store, out):
    args = ["run", "--data", str(store.path), "--out", str(out)]
    for item in RUN_SET:
        args += ["--set", item]
    return args


def _history(run_dir):
    return json.loads((run_dir / "training_history.json").read_text())


def _results(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def _same_history(a, b):
    assert [r["epoch"] for r in a["history"]] == [r["epoch"] for r in b["history"]]
    for ra, rb in zip(a["history"], b["history"]):
        for key in ra:
            if key == "seconds":
                continue
            if key in EXACT:
                assert ra[key] == rb[key], (ra["epoch"], key)
            else:
                assert ra[key] == pytest.approx(rb[key], abs=1e-6, rel=0), (ra["epoch"], key)
    for key in ("stop_metric", "best_metric", "best_epoch", "stopped_epoch", "stop_reason", "steps_per_epoch"):
        assert a[key] == b[key], key


def _same_metrics(a, b):
    for section in ("metrics", "metrics_with_context"):
        for key, value in a[section].items():
            if key.startswith("hit@") or key in ("n_queries", "queries_with_ties"):
                assert value == b[section][key], (section, key)
            elif isinstance(value, float):
                assert value == pytest.approx(b[section][key], abs=1e-6, rel=0), (section, key)
    assert a["model"]["best_epoch"] == b["model"]["best_epoch"]
    assert a["baselines"] == b["baselines"]


def _wait_for_epochs(proc, run_dir, k, timeout=120.0):
    """Poll training_history.json (written atomically, so always whole) until it holds k epochs."""
    deadline = time.monotonic() + timeout
    path = run_dir / "training_history.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"run ended (rc {proc.returncode}) before epoch {k}: {err[-2000:]}")
        if path.is_file() and len(json.loads(path.read_text())["history"]) >= k:
            return
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no epoch {k} within {timeout}s")


def _default_sigint() -> None:
    # A shell that starts a job in the background (CI runners, `nohup ... &`) makes it
    # ignore SIGINT, the child inherits that, and Python then installs no Ctrl-C handler.
    # The child here must behave like a program started from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _spawn(store, out):
    return subprocess.Popen(
        [sys.executable, "-m", "lvmbench", *_run_args(store, out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        preexec_fn=_default_sigint,
    )


pytestmark = pytest.mark.usefixtures("restore_threads")


@pytest.fixture(scope="module")
def reference(tiny_store, tmp_path_factory):
    """One uninterrupted run that the interrupted ones must reproduce."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(_run_args(tiny_store, out)) == 0
    return out


def test_sigkill_mid_run_then_resume_matches_uninterrupted(reference, tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    proc = _spawn(tiny_store, out)
    _wait_for_epochs(proc, out, 2)
    proc.send_signal(signal.SIGKILL)  # lands wherever it lands: mid-epoch, mid-write
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "results.json").exists(), "the run finished before the kill; the test proves nothing"
    killed_at = load_checkpoint(out / "last.pt")["epoch"]
    assert killed_at >= 2
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 0
    assert f"resuming after epoch {killed_at}" in capsys.readouterr().out
    resumed = _history(out)
    assert resumed["resumed"] == [{"after_epoch": killed_at, "step": killed_at * resumed["steps_per_epoch"]}]
    _same_history(_history(reference), resumed)
    _same_metrics(_results(reference), _results(out))
    ref_best, best = load_checkpoint(reference / "best_val_hit5.pt"), load_checkpoint(out / "best_val_hit5.pt")
    assert best["epoch"] == ref_best["epoch"] and best["val_hit5"] == ref_best["val_hit5"]
    assert all(torch.equal(best["state_dict"][k], v) for k, v in ref_best["state_dict"].items())
    assert not list(out.glob(".*.tmp"))
    # the tracker log holds each epoch once, as the uninterrupted run's does (an epoch the kill cut off is gone)
    assert _logged(out) == _logged(reference)


def _logged(run_dir):
    """metrics.jsonl without the wall-clock seconds."""
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_metrics(run_dir / METRICS_LOG)]


def test_ctrl_c_keeps_last_pt_prints_resume_command_and_exits_130(reference, tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    proc = _spawn(tiny_store, out)
    _wait_for_epochs(proc, out, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"lvmbench run --resume {out}" in lines[0] and "last.pt" in lines[0], err
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == len(last["history"]["history"]) >= 1
    assert f"after epoch {last['epoch']}" in lines[0]
    assert not (out / "results.json").exists()
    # resuming gives the uninterrupted run's numbers
    assert main(["run", "--resume", str(out)]) == 0
    _same_history(_history(reference), _history(out))
    _same_metrics(_results(reference), _results(out))


def test_second_ctrl_c_exits_at_once_and_leaves_files_whole(tiny_store, tmp_path):
    out = tmp_path / "run"
    proc = _spawn(tiny_store, out)
    _wait_for_epochs(proc, out, 1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT)
    assert load_checkpoint(out / "last.pt")["epoch"] >= 1
    assert load_checkpoint(out / "best_val_hit5.pt")["epoch"] >= 1
    assert _history(out)["history"]


def test_resume_after_training_goes_straight_to_scoring_and_refuses_other_data(
    reference, tiny_store, tmp_path, capsys
):
    import shutil

    from lvmbench.data.synth import write_synth

    out = tmp_path / "run"
    shutil.copytree(reference, out)
    # a finished run has nothing to resume
    assert main(["run", "--resume", str(out)]) == 2
    assert "already finished" in capsys.readouterr().err
    (out / "results.json").unlink()  # as if killed while scoring
    other = write_synth(tmp_path / "other", n_chains=20, dim=32, seed=1)
    assert main(["run", "--resume", str(out), "--data", str(other.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(other.path) in err and "sha256" in err and "differs" in err
    assert not (out / "results.json").exists()
    # recipe flags are refused: the recipe is the run's own
    assert main(["run", "--resume", str(out), "--set", "train.lr=1"]) == 2
    assert "drop --set" in capsys.readouterr().err
    assert main(["run", "--resume", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "resuming after epoch" in printed and "train_loss" not in printed  # no epoch was trained again
    _same_metrics(_results(reference), _results(out))
    _same_history(_history(reference), _history(out))


def test_same_seed_same_metrics_and_environment_recorded(reference, tiny_store, tmp_path):
    out = tmp_path / "again"
    assert main(_run_args(tiny_store, out)) == 0
    _same_history(_history(reference), _history(out))
    a, b = _results(reference), _results(out)
    assert a["metrics"] == b["metrics"] and a["baselines"] == b["baselines"]
    assert a["seed"] == 0 and a["recipe"]["seed"] == 0
    env = a["env"]
    for key in ("python", "torch", "faiss", "numpy", "lvmbench", "torch_threads", "faiss_threads", "device"):
        assert env.get(key) not in (None, ""), key
    assert env["torch_threads"] == 1 and env["faiss_threads"] == 1


def test_resumed_run_keeps_best_metric_and_patience(tiny_store, fast_recipe, tmp_path, monkeypatch):
    """A resume that reset the best metric would let a worse epoch overwrite the best checkpoint."""
    import lvmbench.train.trainer as loop
    from lvmbench.config import apply_overrides
    from lvmbench.data.prepare import prepare
    from lvmbench.evaluate.queries import make_queries
    from lvmbench.evaluate.evaluation import pool_for
    from lvmbench.models.build import build_model

    recipe = apply_overrides(fast_recipe, ["train.max_epochs=10"])
    prep = prepare(tiny_store, recipe)
    pool = pool_for(prep, recipe, "val")
    train_samples = prep.samples["train"].subset(np.arange(40))  # two micro-batches: fast
    data = loop.TrainData(torch.from_numpy(prep.unit), train_samples, prep.samples["val"],
                          make_queries(prep.samples["val"], pool, 100), torch.from_numpy(pool.vectors))

    monkeypatch.setattr(loop, "validate_epoch", scripted_validation([0.50, 0.30, KeyboardInterrupt]))
    torch.manual_seed(0)
    with pytest.raises(loop.Interrupted, match="after epoch 2.*lvmbench run --resume"):
        loop.train(build_model("memory_gru", prep, recipe), data, recipe, tmp_path, "memory_gru", log=lambda m: None)
    assert load_checkpoint(tmp_path / "best_val_hit5.pt")["epoch"] == 1
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 2 and last["best_metric"] == 0.50 and last["bad_epochs"] == 1

    monkeypatch.setattr(loop, "validate_epoch", scripted_validation([0.40, 0.45, 0.99]))
    hist = loop.train(build_model("memory_gru", prep, recipe), data, recipe, tmp_path, "memory_gru",
                      log=lambda m: None, resume=last)
    # 0.40 and 0.45 are worse than the restored 0.50: patience 3 runs out at epoch 4
    assert [h["epoch"] for h in hist["history"]] == [1, 2, 3, 4]
    assert hist["best_epoch"] == 1 and hist["best_metric"] == 0.50 and "early stop" in hist["stop_reason"]
    assert load_checkpoint(tmp_path / "best_val_hit5.pt")["epoch"] == 1
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 4
    assert _history(tmp_path)["history"][-1]["epoch"] == 4


def test_interrupt_in_first_epoch_resumes_from_epoch_zero(tiny_store, fast_recipe, tmp_path, monkeypatch):
    import lvmbench.train.trainer as loop
    from lvmbench.data.prepare import prepare
    from lvmbench.evaluate.queries import make_queries
    from lvmbench.evaluate.evaluation import pool_for
    from lvmbench.models.build import build_model

    prep = prepare(tiny_store, fast_recipe)
    pool = pool_for(prep, fast_recipe, "val")
    data = loop.TrainData(torch.from_numpy(prep.unit), prep.samples["train"].subset(np.arange(40)),
                          prep.samples["val"], make_queries(prep.samples["val"], pool, 100),
                          torch.from_numpy(pool.vectors))

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "consultant_loss", boom)
    with pytest.raises(loop.Interrupted, match="after epoch 0"):
        loop.train(build_model("memory_gru", prep, fast_recipe), data, fast_recipe, tmp_path, "memory_gru",
                   log=lambda m: None)
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 0 and last["best_metric"] is None and last["step"] == 0


def test_rng_states_survive_a_weights_only_checkpoint(tmp_path):
    """The recipe model uses no randomness at dropout 0, so check the RNG round trip directly."""
    import random

    from lvmbench.runtime import rng_state, seed_everything, set_rng_state

    seed_everything(123)
    random.random(), np.random.normal(), torch.randn(3)  # advance every stream
    save_checkpoint(tmp_path / "c.pt", {"model": "m", "dim": 1, "state_dict": {}, "recipe": {}, "rng": rng_state()})
    expected = (random.random(), np.random.normal(size=3).tolist(), torch.randn(3).tolist())
    seed_everything(999)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    assert (random.random(), np.random.normal(size=3).tolist(), torch.randn(3).tolist()) == expected


def test_existing_run_directory_is_never_overwritten_without_flag(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.json").write_text('{"precious": true}')
    args = ["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out),
            "--set", "eval.bootstrap=20"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--overwrite" in err
    assert json.loads((out / "results.json").read_text()) == {"precious": True}
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert main(args + ["--overwrite"]) == 0
    assert "precious" not in (out / "results.json").read_text()


# ---------------------------------------------------------------- atomic writes

def test_writer_killed_mid_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"old contents")
    script = textwrap.dedent(f"""
        import sys, time
        from lvmbench.io import atomic_write

        def writer(fh):
            fh.write(b"x" * (8 << 20))
            fh.flush()
            print("writing", flush=True)
            time.sleep(60)
            fh.write(b"never")

        atomic_write({str(target)!r}, writer)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    temps = list(tmp_path.glob(".big.bin.*.tmp"))
    assert len(temps) == 1 and temps[0].stat().st_size == 8 << 20  # the write was really under way
    proc.kill()
    proc.wait()
    proc.stdout.close()
    assert target.read_bytes() == b"old contents"


def test_writer_failing_mid_write_leaves_previous_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "history.json"
    atomic_write_json(target, {"epoch": 1})

    def half(fh):
        fh.write(b'{"epoch": 2, "hist')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert json.loads(target.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]

    # the same for a checkpoint whose serialisation dies half way
    ckpt = tmp_path / "last.pt"
    save_checkpoint(ckpt, {"model": "m", "dim": 2, "state_dict": {"w": torch.ones(2)}, "recipe": {}, "epoch": 1})
    real_save = torch.save

    def broken_save(obj, fh, *a, **k):
        real_save(obj, fh, *a, **k)
        fh.truncate(fh.tell() // 2)
        raise KeyboardInterrupt  # Ctrl-C during the write

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt, {"model": "m", "dim": 2, "state_dict": {"w": torch.zeros(2)}, "recipe": {}, "epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(ckpt)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json", "last.pt"]
    assert math.isclose(float(load_checkpoint(ckpt)["state_dict"]["w"].sum()), 2.0)
