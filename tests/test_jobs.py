"""Multi-run commands as jobs: the same numbers under every executor, cached by job, extended, killed and resumed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch

from lvmbench.cli import main
from lvmbench.data.synth import write_synth

# train.threads=1: torch's float sums depend on the thread count, so every executor gets the same one
QUICK = ["--set", "eval.bootstrap=20", "--set", "train.max_epochs=2", "--set", "model.hidden=16",
         "--set", "model.layers=1", "--set", "model.head_hidden=16", "--set", "train.accum_steps=1",
         "--set", "train.threads=1"]
EXECUTORS = {"serial": [], "local-2": ["--jobs", "2"], "ray": ["--executor", "ray"]}
VOLATILE = {"created_utc", "estimates"}  # when it ran and how long a few timed steps took


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory):
    """Two small synthetic tasks that fix their split in their manifest, as the real suite's do."""
    root = tmp_path_factory.mktemp("suite")
    for name, seed in (("alpha", 1), ("beta", 2)):
        store = write_synth(root / name, n_chains=30, dim=16, seed=seed)
        mpath = store.path / "manifest.json"
        manifest = json.loads(mpath.read_text())
        manifest["recipe"] = {"data": {"train_frac": 0.55, "val_frac": 0.2, "test_frac": 0.25, "min_chain_len": 7}}
        manifest["suite"] = {"task": name, "domain": f"synthetic {name}"}
        manifest["license"], manifest["source"] = "CC0-1.0", {"package": "lvmbench-synth", "version": "2"}
        mpath.write_text(json.dumps(manifest, indent=2))
    return root


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module (each command joins it instead of starting its own)."""
    ray = pytest.importorskip("ray", reason='the ray extra is not installed: pip install -e ".[ray]"')
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False)
    yield
    ray.shutdown()


def _aggregate(path: Path) -> dict:
    table = json.loads(path.read_text())
    return {k: v for k, v in table.items() if k not in VOLATILE}


COMMANDS = {
    "suite run --seeds": (["suite", "run", "--model", "gru", "--seeds", "0,1"], "suite.json"),
    "run --folds": (["run", "--model", "gru", "--folds", "3"], "cv.json"),
    "run --seeds": (["run", "--model", "gru", "--seeds", "0,1"], "seeds.json"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_executor_writes_the_same_aggregate(command, suite_root, tiny_store, tmp_path, ray_instance, capsys):
    argv, name = COMMANDS[command]
    where = ["--root", str(suite_root)] if argv[0] == "suite" else ["--data", str(tiny_store.path)]
    got = {}
    for label, flags in EXECUTORS.items():
        out = tmp_path / label / "out"  # cv.json names the task after its directory
        assert main([*argv, *where, "--out", str(out), *QUICK, *flags]) == 0, label
        got[label] = _aggregate(out / name)
    assert got["local-2"] == got["serial"] and got["ray"] == got["serial"]
    printed = capsys.readouterr().out
    assert "2 worker processes" in printed and "Ray (a local instance)" in printed


def test_the_baseline_suite_is_the_same_under_every_executor(tmp_path, ray_instance):
    """The standard suite's three real tasks, scored by copy_last (no training): one suite.json, three executors."""
    got = {}
    for label, flags in EXECUTORS.items():
        out = tmp_path / label / "out"  # cv.json names the task after its directory
        assert main(["suite", "run", "--model", "copy_last", "--out", str(out), "--set", "eval.bootstrap=20",
                     *flags]) == 0, label
        got[label] = _aggregate(out / "suite.json")
    assert got["local-2"] == got["serial"] and got["ray"] == got["serial"]
    assert len(got["serial"]["rows"]) == 3


def test_a_command_run_again_reuses_every_job_and_rerun_runs_them(tiny_store, tmp_path, capsys):
    out = tmp_path / "seeds"
    argv = ["run", "--model", "gru", "--seeds", "0,1", "--data", str(tiny_store.path), "--out", str(out), *QUICK]
    assert main(argv) == 0
    first = _aggregate(out / "seeds.json")
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    capsys.readouterr()
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "jobs: 2 (2 finished before and reused, 0 to run" in printed and "2 reused, 0 run" in printed
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == stamps  # nothing rewritten
    assert _aggregate(out / "seeds.json") == first
    assert main([*argv, "--rerun"]) == 0
    assert "0 reused, 2 run" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns != stamps[p] for p in stamps)


def test_an_extended_command_runs_only_the_new_jobs(tiny_store, tmp_path, capsys):
    out = tmp_path / "seeds"
    base = ["run", "--data", str(tiny_store.path), "--out", str(out), *QUICK]
    assert main([*base, "--model", "gru", "--seeds", "0,1"]) == 0
    capsys.readouterr()
    assert main([*base, "--model", "gru", "--seeds", "0,1,2"]) == 0
    printed = capsys.readouterr().out
    assert "jobs: 3 (2 finished before and reused, 1 to run" in printed and "run gru seed 2" in printed
    rows = json.loads((out / "seeds.json").read_text())["rows"]
    assert rows[0]["seeds"] == [0, 1, 2] and len(rows[0]["seed_spread"]["hit@5"]) == 3
    # another recipe is another job: a changed --set never reuses a directory trained under the old one
    assert main([*base, "--model", "gru", "--seeds", "0", "--set", "train.lr=1e-3"]) == 0
    assert "jobs: 1 (0 finished before and reused, 1 to run" in capsys.readouterr().out
    assert len(list(out.glob("gru-s0-*"))) == 2


KILLER = '''
import os
import signal
from pathlib import Path

from lvmbench.config import ModelConfig
from lvmbench.models.gru import ResidualGRU

MARK = Path({mark!r})


class Killer(ResidualGRU):
    """A GRU whose process dies (SIGKILL, once) at its first training step after a validation pass."""

    def __init__(self, dim, **options):
        super().__init__(dim, ModelConfig(hidden=16, layers=1, head_hidden=16))

    def forward(self, context, lengths):
        validated = MARK.parent / f"validated-{{os.getpid()}}"
        if not self.training:
            validated.touch()
        elif validated.exists():
            try:
                MARK.unlink()  # only one process wins the mark
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(context, lengths)
'''


def test_a_job_killed_mid_training_resumes_from_its_last_checkpoint(tiny_store, tmp_path, monkeypatch, capsys):
    """A worker process dies mid-training (SIGKILL, as the OOM killer would): the same command continues it."""
    mods = tmp_path / "mods"
    mods.mkdir()
    mark = tmp_path / "kill-once"
    (mods / "killer_mod.py").write_text(textwrap.dedent(KILLER.format(mark=str(mark))))
    monkeypatch.syspath_prepend(str(mods))

    def command(out: Path, *flags: str) -> list[str]:
        return ["run", "--model", "killer_mod:Killer", "--seeds", "0,1", "--data", str(tiny_store.path),
                "--out", str(out), *QUICK, "--set", "train.max_epochs=3", *flags]

    out = tmp_path / "killed"
    mark.touch()
    assert main(command(out, "--jobs", "2")) != 0
    assert "worker lost" in capsys.readouterr().out and not mark.exists()
    unfinished = [d for d in out.glob("killer_mod_Killer-s*") if not (d / "results.json").is_file()]
    assert any((d / "last.pt").is_file() for d in unfinished)
    assert main(command(out, "--jobs", "2")) == 0  # the same command again: what was killed resumes
    logs = "".join((d / "job.log").read_text() for d in unfinished if (d / "last.pt").is_file())
    assert "last.pt (epoch " in logs and "resuming after epoch" in logs
    assert main(command(tmp_path / "clean")) == 0  # never killed, one job after another
    assert _aggregate(out / "seeds.json") == _aggregate(tmp_path / "clean" / "seeds.json")


@pytest.mark.parametrize("flags, message", [
    (["--jobs", "0"], "--jobs 0: at least 1"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "--ray-address 127.0.0.1:1: cannot reach a Ray cluster"),
    (["--ray-address", "127.0.0.1:6379"], "--ray-address goes with --executor ray"),
    (["--seeds", "0,0"], "--seeds lists 0 more than once"),
    (["--seeds", "a"], "--seeds 'a': comma-separated non-negative integers"),
])
def test_bad_executor_input_is_one_line_and_exit_2(flags, message, tiny_store, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--model", "copy_last,ridge", "--data", str(tiny_store.path), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_ray_without_the_extra_says_how_to_install_it(tiny_store, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    assert main(["run", "--model", "copy_last,ridge", "--data", str(tiny_store.path), "--out", str(tmp_path / "o"),
                 "--executor", "ray"]) == 2
    assert 'needs the ray extra: pip install -e ".[ray]"' in capsys.readouterr().err


def test_a_single_run_refuses_executor_flags_and_a_registered_model_refuses_workers(tiny_store, tmp_path, capsys):
    from lvmbench.models import registry

    class InProcessOnly(torch.nn.Module):
        predicts_delta = True

        def __init__(self, dim: int):
            super().__init__()
            self.out = torch.nn.Linear(dim, dim)

        def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return self.out(context[torch.arange(len(context)), lengths - 1])

    assert main(["run", "--model", "gru", "--data", str(tiny_store.path), "--jobs", "2"]) == 2
    assert "a single run is one job" in capsys.readouterr().err
    registry.register_model("in_process_only")(InProcessOnly)
    try:
        assert main(["run", "--model", "in_process_only,copy_last", "--data", str(tiny_store.path),
                     "--out", str(tmp_path / "o"), "--jobs", "2"]) == 2
        assert "registered in this process" in capsys.readouterr().err
    finally:
        registry.REGISTRY.pop("in_process_only", None)
