"""Code is named only on the command line or by an installed entry point: one test per route a file could take.

Every route uses a module that records being imported (it writes a marker file
as it is imported); each test asserts the one-line refusal naming the file
and the flag that confirms it, and that the marker never appears.  The same
file is then accepted once the command line names the path.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from lvmbench.cli import main

from conftest import FAST

QUICK = [*(a for kv in FAST for a in ("--set", kv)), "--set", "train.max_epochs=1"]
SPEC = "spy_baseline:Spy"


@pytest.fixture
def spy(tmp_path, monkeypatch):
    """A baseline module that leaves ``imported`` behind when (and only when) it is imported."""
    marker = tmp_path / "imported"
    (tmp_path / "spy_baseline.py").write_text(textwrap.dedent(f'''
        import pathlib
        pathlib.Path({str(marker)!r}).touch()
        import torch
        from torch import nn

        class Spy(nn.Module):
            lvmbench_kind = "baseline"

            def __init__(self, dim):
                super().__init__()

            def forward(self, context, lengths):
                return context[torch.arange(context.shape[0]), lengths - 1]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "spy_baseline", raising=False)
    return marker


def _refused(capsys, where, flag=f"--allow-import {SPEC}") -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert str(where) in err[0] and "never imports a module path read from a file" in err[0], err[0]
    assert f"pass {flag} to confirm it" in err[0], err[0]


def _with_spy_baseline(table: dict) -> dict:
    table["eval"]["baselines"] = ["copy_last", SPEC]
    return table


def test_a_toml_recipe_naming_a_baseline_import_path(spy, tiny_store, tmp_path, capsys):
    toml = tmp_path / "r.toml"
    toml.write_text(f'[eval]\nbaselines = ["copy_last", "{SPEC}"]\n')
    argv = ["run", "--model", "copy_last", "--data", str(tiny_store.path), "--recipe", str(toml)]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    _refused(capsys, toml)
    assert not spy.exists() and not (tmp_path / "a").exists()
    assert main([*argv, "--out", str(tmp_path / "b"), "--allow-import", SPEC]) == 0 and spy.exists()


def test_a_task_file_naming_a_baseline_import_path(spy, tiny_store, tmp_path, capsys):
    """The reproduction: eval.baselines = ['builtins:print'] in a task file made score call print(384)."""
    task = tmp_path / "task.npz"
    assert main(["task", "--data", str(tiny_store.path), "--out", str(task)]) == 0
    arrays = dict(np.load(task))
    meta = json.loads(arrays["meta"].item())
    pred = tmp_path / "pred.npy"
    np.save(pred, np.random.default_rng(0).normal(size=(len(arrays["target_ids"]), 32)).astype(np.float32))
    for spec in ("builtins:print", SPEC):
        meta["recipe"]["eval"]["baselines"] = ["copy_last", spec]
        arrays["meta"] = np.array(json.dumps(meta))
        np.savez(task, **arrays)
        capsys.readouterr()
        assert main(["score", str(pred), "--task", str(task), "--out", str(tmp_path / "s")]) == 2
        _refused(capsys, task, f"--allow-import {spec}")
        assert not spy.exists() and not (tmp_path / "s").exists()
    assert main(["score", str(pred), "--task", str(task), "--out", str(tmp_path / "s"), "--allow-import", SPEC]) == 0
    assert spy.exists()


def test_a_run_directory_recipe_json_naming_a_baseline_import_path(spy, tiny_store, tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # interrupted before its first checkpoint: resumable
        _interrupt_build(run, tiny_store)
    rpath = run / "recipe.json"
    rpath.write_text(json.dumps(_with_spy_baseline(json.loads(rpath.read_text()))))
    capsys.readouterr()
    assert main(["run", "--resume", str(run)]) == 2
    _refused(capsys, rpath)
    assert not spy.exists()
    assert main(["run", "--resume", str(run), "--allow-import", SPEC]) == 0 and spy.exists()


def _interrupt_build(run, tiny_store):
    import lvmbench.runs.single as single

    real = single.build_model

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    single.build_model = stop
    try:
        main(["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(run), *QUICK])
    finally:
        single.build_model = real


def test_a_checkpoint_recipe_naming_a_baseline_import_path(spy, tiny_store, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(run), *QUICK]) == 0
    ckpt_path = run / "best_val_hit5.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["recipe"] = _with_spy_baseline(ckpt["recipe"])
    torch.save(ckpt, ckpt_path)
    capsys.readouterr()
    assert main(["eval", str(run), "--out", str(tmp_path / "ev")]) == 2
    _refused(capsys, ckpt_path)
    assert not spy.exists() and not (tmp_path / "ev").exists()
    assert main(["eval", str(run), "--out", str(tmp_path / "ev"), "--allow-import", SPEC]) == 0 and spy.exists()


def test_a_series_plan_naming_a_baseline_import_path(spy, tiny_store, tmp_path, capsys, monkeypatch):
    import lvmbench.runs.jobs as jobs

    parent = tmp_path / "multi"
    calls = []
    real = jobs.execute

    def stop_second(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "execute", stop_second)
    with pytest.raises(KeyboardInterrupt):
        main(["run", "--model", "copy_last,mean_context", "--data", str(tiny_store.path), "--out", str(parent)])
    monkeypatch.setattr(jobs, "execute", real)
    plan = parent / "series.json"
    table = json.loads(plan.read_text())
    for point in table["points"]:
        _with_spy_baseline(point["recipe"])
    plan.write_text(json.dumps(table))
    capsys.readouterr()
    assert main(["run", "--resume", str(parent)]) == 2
    _refused(capsys, plan)
    assert not spy.exists()


def test_the_import_itself_refuses_a_path_nobody_named(spy):
    """The backstop: whatever route reaches the resolver, an untrusted path is not imported."""
    from lvmbench.errors import UsageError
    from lvmbench.models import registry
    from lvmbench.trust import trusted_imports

    with pytest.raises(UsageError, match="imports a module path only when this command names it"):
        registry.get_entry(SPEC)
    assert not spy.exists()
    with trusted_imports([SPEC]):
        assert registry.get_entry(SPEC).kind == "baseline"
    assert spy.exists()


def test_an_entry_point_that_exits_on_import_is_one_line_not_a_silent_exit_0(tmp_path, monkeypatch, capsys,
                                                                               tiny_store):
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = importlib.metadata.EntryPoint(name="quitter", value="exits_on_import:Model", group="lvmbench.models")
    from lvmbench.models import outside

    monkeypatch.setattr(outside, "entry_points", lambda: [ep])
    capsys.readouterr()
    assert main(["run", "--model", "quitter", "--data", str(tiny_store.path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "entry point exits_on_import:Model failed to load (SystemExit" in err[0], err
