"""Bring your own model: an outside package by entry point and by import path, registration in-process,
the runtime-checked contract, and the rule that no module path read from a file is imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lvmbench.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_lvm"
QUICK = ["--set", "train.max_epochs=2", "--set", "eval.bootstrap=20", "--set", "train.accum_steps=1"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The example package, copied outside the repository and installed (pip --target) into its own folder."""
    root = tmp_path_factory.mktemp("outside")
    shutil.copytree(EXAMPLE, root / "my_lvm", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(root / "site"), str(root / "my_lvm")], check=True, capture_output=True)
    return root / "site"


@pytest.fixture
def on_path(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m == "my_lvm" or m.startswith("my_lvm.")]:
        del sys.modules[name]


def _run(tiny_store, out, *extra):
    return main(["run", "--data", str(tiny_store.path), "--out", str(out), *QUICK, *extra])


def _results(run_dir):
    return json.loads((Path(run_dir) / "results.json").read_text())


def test_an_installed_package_trains_by_entry_point_name(on_path, tiny_store, tmp_path, capsys):
    out = tmp_path / "ep"
    assert _run(tiny_store, out, "--model", "tiny_gru") == 0
    for artefact in ("best_val_hit5.pt", "last.pt", "training_history.json", "results.json", "predictions.npz",
                     "report.md", "recipe.json", "split.json"):
        assert (out / artefact).is_file(), artefact
    res = _results(out)
    assert res["model"]["spec"] == {"name": "tiny_gru", "kind": "model", "source": "entry point",
                                    "package": "my-lvm", "version": "0.1.0"}
    assert res["consistency"]["ok"] and res["consistency"]["val"]["ok"] and res["baselines"]
    assert "tiny_gru" in {row["predictor"] for row in _board(capsys, out)}
    # an entry-point name resolves again without confirmation; the metrics reproduce
    assert main(["eval", str(out), "--data", str(tiny_store.path), "--out", str(tmp_path / "ev")]) == 0
    assert _results(tmp_path / "ev")["metrics"]["hit@5"] == res["metrics"]["hit@5"]


def _board(capsys, *runs):
    capsys.readouterr()
    assert main(["compare", *map(str, runs), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)["rows"]


def test_an_import_path_trains_with_its_options_and_eval_needs_it_named_again(on_path, tiny_store, tmp_path, capsys):
    out = tmp_path / "ip"
    assert _run(tiny_store, out, "--model", "my_lvm:TinyGRU", "--set", "model.options.hidden=16") == 0
    res = _results(out)
    assert res["model"]["spec"]["source"] == "import path" and res["model"]["config"]["options"] == {"hidden": 16}
    assert res["params"] == 3 * 16 * (32 + 16 + 2) + 16 * 32 + 32  # GRU(32 -> 16) + Linear(16 -> 32)
    capsys.readouterr()
    ev = tmp_path / "ev"
    assert main(["eval", str(out), "--data", str(tiny_store.path), "--out", str(ev)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pass --model my_lvm:TinyGRU to confirm it" in err and not ev.exists()
    assert main(["eval", str(out), "--data", str(tiny_store.path), "--out", str(ev), "--model", "my_lvm:Other"]) == 2
    assert "differs from the model(s)" in capsys.readouterr().err and not ev.exists()
    assert main(["eval", str(out), "--data", str(tiny_store.path), "--out", str(ev), "--model", "my_lvm:TinyGRU"]) == 0
    assert _results(ev)["metrics"]["hit@5"] == res["metrics"]["hit@5"]


def test_resume_of_an_import_path_run_needs_it_named_again(on_path, tiny_store, tmp_path, monkeypatch, capsys):
    import lvmbench.train.trainer as trainer

    out = tmp_path / "run"
    real, calls = trainer.validate_epoch, []

    def stop_in_epoch_2(*a):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(trainer, "validate_epoch", stop_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny_store, out, "--model", "my_lvm:TinyGRU")
    monkeypatch.setattr(trainer, "validate_epoch", real)
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 2
    assert "pass --model my_lvm:TinyGRU" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--model", "my_lvm:TinyGRU"]) == 0 and (out / "results.json").is_file()


def test_a_model_registered_in_process_runs_like_a_built_in(tiny_store, tmp_path):
    import torch
    from torch import nn

    import lvmbench
    from lvmbench.models import registry

    @lvmbench.register_model("mean_plus_linear", description="context mean plus a learned linear step")
    class MeanPlusLinear(nn.Module):
        def __init__(self, dim: int):
            super().__init__()
            self.step = nn.Linear(dim, dim)

        def forward(self, context: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            mean = context.sum(1) / lengths.to(context.dtype).unsqueeze(-1)
            return mean + self.step(mean)

    try:
        assert _run(tiny_store, tmp_path / "r", "--model", "mean_plus_linear") == 0
        assert _results(tmp_path / "r")["model"]["spec"]["source"] == "registered"
    finally:
        registry.REGISTRY.pop("mean_plus_linear", None)


BROKEN = textwrap.dedent('''
    import torch
    from torch import nn

    class NoForward(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.w = nn.Linear(dim, dim)

    class WrongShape(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.w = nn.Linear(dim, 3)

        def forward(self, context, lengths):
            return self.w(context[:, 0])

    class OneArgument(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.w = nn.Linear(dim, dim)

        def forward(self, context):
            return self.w(context[:, 0])

    class NoParameters(nn.Module):
        def __init__(self, dim):
            super().__init__()

        def forward(self, context, lengths):
            return context[:, 0]

    class Good(nn.Module):
        def __init__(self, dim, width=8):
            super().__init__()
            self.w = nn.Linear(dim, dim)

        def forward(self, context, lengths):
            return self.w(context[:, 0])

    def not_a_module(dim):
        return "a string"

    def raises(dim):
        raise RuntimeError("boom")

    BADDELTA = type("BadDelta", (Good,), {"predicts_delta": "yes"})
''')


@pytest.mark.parametrize("spec, extra, problem", [
    ("broken_models:NoForward", [], "defines no forward(context, lengths)"),
    ("broken_models:WrongShape", [], "must return a [B, D] = [2, 32] tensor"),
    ("broken_models:OneArgument", [], "forward must take (context [B, T, D], lengths [B])"),
    ("broken_models:NoParameters", [], "has no trainable parameters"),
    ("broken_models:not_a_module", [], "not a torch.nn.Module"),
    ("broken_models:raises", [], "RuntimeError: boom"),
    ("broken_models:NoForward", ["--set", "model.options.width=2"], "unexpected keyword argument 'width'"),
    ("broken_models:BADDELTA", [], "predicts_delta must be True or False"),
    ("broken_models:Good", ["--set", "model.options.depth=3"], "unexpected keyword argument 'depth'"),
    ("broken_models:Missing", [], "broken_models has no attribute Missing"),
    ("no_such_package.mod:X", [], "cannot import no_such_package.mod"),
    ("broken_models:", [], "an import path is package.module:NAME"),
    ("gru", ["--set", "model.options.width=3"], "the built-in 'gru' takes none"),
])
def test_a_model_that_breaks_the_contract_is_refused_with_one_line(tiny_store, tmp_path, monkeypatch, capsys,
                                                                  spec, extra, problem):
    (tmp_path / "broken_models.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_models", raising=False)
    out = tmp_path / "out"
    capsys.readouterr()
    assert _run(tiny_store, out, "--model", spec, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and problem in err[0], err
    assert not out.exists()


def test_a_recipe_file_cannot_make_lvmbench_import_a_path(tiny_store, tmp_path, capsys):
    toml = tmp_path / "r.toml"
    toml.write_text('[model]\nname = "os:getcwd"\n')
    assert main(["run", "--data", str(tiny_store.path), "--recipe", str(toml), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "never imports a module path read from a file" in err and str(toml) in err
    assert not (tmp_path / "o").exists()
