"""A run directory belongs to one command at a time, --overwrite leaves nothing old, a full disk is one line.

The race tests start two real ``lvmbench`` processes that wait for a common
start time and then run the same command on one directory: exactly one of
them may write it, every trial.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lvmbench import workdir
from lvmbench.cli import main

from conftest import FAST, stop_in_second_epoch

QUICK = [*(a for kv in FAST for a in ("--set", kv)), "--set", "train.max_epochs=2"]
TRIALS = 6

RACER = """
import sys, time
from lvmbench.cli import main
start = float(sys.argv[1])
while time.time() < start:
    pass
sys.exit(main(sys.argv[2:], owns_process=True))
"""


def _race(argv: list[str], cwd: Path, n: int = 2) -> list[subprocess.CompletedProcess]:
    """``n`` processes running ``lvmbench argv`` together (they spin until a common start time)."""
    start = time.time() + 4.5  # after every racer has imported torch
    env = {**os.environ, "LVMBENCH_PROGRESS_SECONDS": "3600"}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(start), *argv], cwd=cwd, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.mark.slow
def test_two_runs_on_one_directory_have_exactly_one_winner_every_time(tiny_store, tmp_path):
    for trial in range(TRIALS):
        out = tmp_path / f"run-{trial}"
        procs = _race(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)], tmp_path)
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], [(p.returncode, p.stderr[-500:]) for p in procs]
        loser = next(p for p in procs if p.returncode == 2)
        err = loser.stderr.strip().splitlines()
        assert len(err) == 1 and ("in use by PID" in err[0] or "is not empty" in err[0]), err
        # the winner's files, all of them, and nothing of the loser's
        res = json.loads((out / "results.json").read_text())
        assert res["status"] == "complete" and not (out / ".incomplete").exists() and not (out / ".lock").exists()
        assert main(["gate", str(out), "--min", "0"]) == 0


@pytest.mark.slow
def test_two_resumes_of_one_directory_have_exactly_one_winner(tiny_store, tmp_path, monkeypatch):
    import lvmbench.train.trainer as loop

    run = tmp_path / "run"
    real = loop.validate_epoch
    stop_in_second_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        main(["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(run), *QUICK])
    monkeypatch.setattr(loop, "validate_epoch", real)
    procs = _race(["run", "--resume", str(run)], tmp_path)
    assert sorted(p.returncode for p in procs) == [0, 2], [(p.returncode, p.stderr[-500:]) for p in procs]
    loser = next(p for p in procs if p.returncode == 2)
    assert "in use by PID" in loser.stderr or "already finished" in loser.stderr
    assert json.loads((run / "results.json").read_text())["status"] == "complete"


def test_a_held_directory_is_refused_at_once_naming_the_holder(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from lvmbench import workdir; from pathlib import Path\n"
        f"p = Path({str(out)!r}); p.mkdir(); workdir.acquire(p); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"in use by PID {holder.pid}" in err[0], err
        assert main(["gate", str(out)]) == 3  # nor can anything read it while it is being written
        assert "still being written by PID" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the lock with the process: the directory is free again (and empty but for the lock)
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)]) == 0


def test_overwrite_leaves_no_file_of_the_old_run(tiny_store, tmp_path, capsys):
    """copy_last over a trained run used to keep its checkpoints, and `eval DIR` then scored the old model."""
    run = tmp_path / "run"
    assert main(["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(run), *QUICK]) == 0
    assert (run / "best_val_hit5.pt").exists()
    (run / "notes.txt").write_text("a file of the old run's owner")
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(run),
                 "--overwrite"]) == 0
    left = sorted(p.name for p in run.iterdir())
    assert "best_val_hit5.pt" not in left and "last.pt" not in left and "notes.txt" not in left
    assert "training_history.json" not in left and "curves.png" not in left
    assert json.loads((run / "results.json").read_text())["model"]["name"] == "copy_last"
    capsys.readouterr()
    assert main(["eval", str(run), "--out", str(tmp_path / "ev")]) == 2  # no old model left to score
    assert "checkpoint not found" in capsys.readouterr().err


def _full_after(limit: int):
    """A temp-file opener whose files take ``limit`` bytes and then raise ENOSPC (a disk filling up)."""
    real = os.fdopen

    def opener(fd, mode="r", *args, **kwargs):
        fh = real(fd, mode, *args, **kwargs)
        written = [0]
        raw_write = fh.write

        def write(data):
            written[0] += len(data)
            if written[0] > limit:
                raise OSError(errno.ENOSPC, "No space left on device")
            return raw_write(data)

        fh.write = write
        return fh

    return opener


@pytest.mark.parametrize("limit, culprit", [(2_000, "last.pt"), (200_000, "predictions.npz")])
def test_a_full_disk_is_one_line_naming_the_file_and_the_run_is_marked_unfinished(tiny_store, tmp_path,
                                                                                  monkeypatch, capsys,
                                                                                  limit, culprit):
    import lvmbench.io as io_

    good = tmp_path / "run"
    assert main(["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(good), *QUICK]) == 0
    real = io_._fdopen
    monkeypatch.setattr(io_, "_fdopen", _full_after(limit) if culprit == "last.pt" else _full_for(culprit, real))
    capsys.readouterr()
    rc = main(["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(good), "--overwrite", *QUICK])
    monkeypatch.setattr(io_, "_fdopen", real)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "no space left on the device" in err[0] and "free there" in err[0] and culprit in err[0], err[0]
    # a failed --overwrite leaves no old results beside new files: the directory is marked unfinished
    assert (good / ".incomplete").exists() and not (good / "results.json").exists()
    for command in (["gate", str(good)], ["compare", str(good)], ["eval", str(good)]):
        assert main(command) == 3
        assert "did not finish" in capsys.readouterr().err


def _full_for(name: str, real):
    """An opener that fills the disk only while the temp file of ``name`` is written."""
    def opener(fd, mode="r", *args, **kwargs):
        target = os.readlink(f"/proc/self/fd/{fd}")
        return (_full_after(0) if Path(target).name.startswith(f".{name}.") else real)(fd, mode, *args, **kwargs)

    return opener


def test_locks_are_given_back_when_a_command_returns_in_process(tiny_store, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)]) == 0
    assert workdir.held() == [] and not (out / ".lock").exists()
    from lvmbench.config import load_recipe
    from lvmbench.runs.single import run

    run(load_recipe(None, ["model.name=copy_last"]), str(tiny_store.path), tmp_path / "api", log=lambda m: None)
    assert workdir.held() == []  # an API call gives its locks back too


@pytest.mark.slow
def test_two_builds_of_one_store_have_one_winner_and_leave_no_cache_behind(tmp_path):
    src = tmp_path / "docs"
    src.mkdir()
    for d in range(12):
        (src / f"doc{d}.txt").write_text("\n\n".join(
            f"Document {d} paragraph {j} explains one more idea about topic {j} in plain words." for j in range(9)))
    for trial in range(3):
        out = tmp_path / f"store{trial}"
        procs = _race(["data", "build", str(src), "--out", str(out), "--encoder", "hash"], tmp_path)
        codes = sorted(p.returncode for p in procs)
        assert codes == [0, 2], [(p.returncode, p.stderr[-400:]) for p in procs]
        loser = next(p for p in procs if p.returncode == 2).stderr
        assert "in use by PID" in loser or "not empty" in loser, loser
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == ["docs", *(f"store{t}" for t in range(trial + 1))], left  # no cache, no lock file left
