"""Ctrl-C: every interrupted command can be continued with the command it prints.

In-process the interrupt reaches the caller (pytest must stay stoppable);
only the console script turns it into a message and exit code 130.
"""

from __future__ import annotations

import json
import sys

import pytest

from lvmbench.cli import console_main, main

from conftest import FAST, job

QUICK = ["--set", "train.max_epochs=2", "--set", "eval.bootstrap=20"] + [a for s in FAST[:4] for a in ("--set", s)]


def _interrupt_once(monkeypatch, module, name):
    """Make ``module.name`` raise KeyboardInterrupt on its first call only."""
    real = getattr(module, name)
    calls = []

    def once(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, once)


def _metrics(run_dir):
    return json.loads((run_dir / "results.json").read_text())["metrics"]


def test_ctrl_c_before_the_first_checkpoint_is_resumable(tiny_store, tmp_path, monkeypatch):
    import lvmbench.runs.single as single

    ref = tmp_path / "ref"
    assert main(["run", "--model", "gru", "--data", str(tiny_store.path), "--out", str(ref)] + QUICK) == 0
    out = tmp_path / "run"
    _interrupt_once(monkeypatch, single, "build_model")  # after recipe.json, before last.pt
    with pytest.raises(KeyboardInterrupt, match=f"resume with: lvmbench run --resume {out}"):
        main(["run", "--model", "gru", "--data", str(tiny_store.path), "--out", str(out)] + QUICK)
    assert (out / "recipe.json").is_file() and not (out / "last.pt").exists()
    assert main(["run", "--resume", str(out)]) == 0
    assert _metrics(out)["hit@5"] == _metrics(ref)["hit@5"] and _metrics(out)["mrr"] == _metrics(ref)["mrr"]


def test_a_baseline_run_interrupted_while_scoring_scores_again_on_resume(tiny_store, tmp_path, monkeypatch):
    import lvmbench.runs.single as single

    out = tmp_path / "run"
    _interrupt_once(monkeypatch, single, "evaluate_model")
    with pytest.raises(KeyboardInterrupt, match="resume with"):
        main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)] + QUICK)
    assert main(["run", "--resume", str(out)]) == 0 and (out / "results.json").is_file()


def test_an_interrupted_sweep_continues_with_the_printed_command(tiny_store, tmp_path, monkeypatch, capsys):
    import lvmbench.train.trainer as trainer

    ref = tmp_path / "ref"
    args = ["--model", "gru", "--context", "1,3", "--data", str(tiny_store.path)] + QUICK
    assert main(["sweep", *args, "--out", str(ref)]) == 0
    out = tmp_path / "sweep"
    real, calls = trainer.validate_epoch, []

    def stop_in_the_second_point(*a):
        calls.append(1)
        if len(calls) == 4:  # point 2, epoch 2: its last.pt holds epoch 1
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(trainer, "validate_epoch", stop_in_the_second_point)
    with pytest.raises(KeyboardInterrupt, match=f"resume with: lvmbench sweep --resume {out}"):
        main(["sweep", *args, "--out", str(out)])
    assert not (out / "sweep.json").exists() and (job(out, "gru-ctx-3") / "last.pt").is_file()
    monkeypatch.setattr(trainer, "validate_epoch", real)
    capsys.readouterr()
    assert main(["sweep", "--resume", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "finished before the interrupt" in printed and "(epoch 1)" in printed
    got, want = (json.loads((d / "sweep.json").read_text()) for d in (out, ref))
    assert [p["metrics"]["hit@5"] for p in got["points"]] == [p["metrics"]["hit@5"] for p in want["points"]]
    assert all(v is not False for v in got["checks"].values())


def test_an_interrupted_multi_model_run_keeps_finished_models(tiny_store, tmp_path, monkeypatch, capsys):
    import lvmbench.runs.single as single

    out = tmp_path / "multi"
    real = single.start_run

    def stop_at_mean_context(recipe, *a, **k):
        if recipe.model.name == "mean_context":
            raise KeyboardInterrupt
        return real(recipe, *a, **k)

    monkeypatch.setattr(single, "start_run", stop_at_mean_context)
    with pytest.raises(KeyboardInterrupt, match=f"resume with: lvmbench run --resume {out}.*not started: ridge"):
        main(["run", "--model", "copy_last,mean_context,ridge", "--data", str(tiny_store.path), "--out", str(out)]
             + QUICK)
    monkeypatch.setattr(single, "start_run", real)
    finished = (job(out, "copy_last-s0") / "results.json").read_bytes()
    assert main(["run", "--resume", str(out)]) == 0
    assert (job(out, "copy_last-s0") / "results.json").read_bytes() == finished  # kept, not redone
    assert json.loads((out / "multi.json").read_text())["failed"] == []
    assert (out / "leaderboard.md").is_file()


class _ZipWriter:
    """Like torch.save's zip writer: its cleanup fails after an interrupt, hiding it behind a RuntimeError."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 33391616 vs 33391504")


def _save_interrupted_by_ctrl_c(obj, fh, *a, **k):
    with _ZipWriter():
        fh.write(b"PK")
        raise KeyboardInterrupt


def test_ctrl_c_inside_a_library_writer_stays_a_ctrl_c(tmp_path):
    from lvmbench.io import atomic_write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "last.pt", lambda fh: _save_interrupted_by_ctrl_c(None, fh))
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_ctrl_c_during_a_checkpoint_write_stops_a_series_instead_of_failing_one_model(tiny_store, tmp_path,
                                                                                    monkeypatch):
    import lvmbench.train.checkpoint as checkpoint

    real, calls = checkpoint.torch.save, []

    def once(*a, **k):
        calls.append(1)
        return _save_interrupted_by_ctrl_c(*a, **k) if len(calls) == 1 else real(*a, **k)

    monkeypatch.setattr(checkpoint.torch, "save", once)
    out = tmp_path / "multi"
    with pytest.raises(KeyboardInterrupt, match=f"resume with: lvmbench run --resume {out}.*not started: copy_last"):
        main(["run", "--model", "gru,copy_last", "--data", str(tiny_store.path), "--out", str(out)] + QUICK)
    assert not (job(out, "gru-s0") / "error.txt").exists() and not (job(out, "gru-s0") / "last.pt").exists()
    monkeypatch.setattr(checkpoint.torch, "save", real)
    assert main(["run", "--resume", str(out)]) == 0 and (job(out, "copy_last-s0") / "results.json").is_file()


def test_an_interrupted_build_prints_the_command_that_continues_it(tmp_path, monkeypatch, capsys):
    import lvmbench.cli.corpus as cli_corpus

    src = tmp_path / "docs.jsonl"
    words = "the quick brown fox jumps over a lazy dog near the river bank"
    src.write_text("".join(json.dumps({"id": f"d{i}", "title": f"d{i}",
                                       "paragraphs": [f"{words} {i} {j}" for j in range(8)]}) + "\n"
                           for i in range(4)))
    argv = ["data", "build", str(src), "--out", str(tmp_path / "out"), "--encoder", "hash"]
    _interrupt_once(monkeypatch, cli_corpus, "build_corpus")
    with pytest.raises(KeyboardInterrupt, match="continue with the same command: lvmbench data build"):
        main(argv)
    assert main(argv) == 0


def test_in_process_ctrl_c_reaches_the_caller_and_the_console_script_exits_130(tiny_store, monkeypatch, capsys):
    import lvmbench.report.info as info

    _interrupt_once(monkeypatch, info, "data_info")
    with pytest.raises(KeyboardInterrupt):
        main(["data", "info", str(tiny_store.path)])
    _interrupt_once(monkeypatch, info, "data_info")
    monkeypatch.setattr(sys, "argv", ["lvmbench", "data", "info", str(tiny_store.path)])
    assert console_main() == 130
    err = capsys.readouterr().err
    assert f"run the same command again: lvmbench data info {tiny_store.path}" in err


def test_long_work_reports_progress_when_output_is_not_a_terminal(tiny_store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LVMBENCH_PROGRESS_SECONDS", "0")  # a line at every step instead of every minute
    out = tmp_path / "run"
    assert main(["run", "--model", "gru", "--data", str(tiny_store.path), "--out", str(out)] + QUICK) == 0
    printed = capsys.readouterr().out  # captured: not a terminal, so no tqdm bar
    assert "  epoch 1/2: 1/" in printed and "micro-batches" in printed and "elapsed" in printed
    n_steps = 2 + len(json.loads((out / "results.json").read_text())["baselines"])
    assert f"  scoring: 1/{n_steps} steps" in printed and "last consistency check" in printed


def test_quick_work_prints_no_progress_lines(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)] + QUICK) == 0
    assert "elapsed" not in capsys.readouterr().out  # the default interval is a minute
