"""Nothing untrusted is executed: checkpoints, arrays, recipes and manifest paths.

Each malicious file carries a payload that, if unpickled or evaluated, would
create a marker file; the tests assert the refusal and that the marker never
appears.  A control shows the payload is live under an unsafe loader.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from lvmbench.cli import main
from lvmbench.config import Recipe, apply_overrides
from lvmbench.data.store import load_store, write_store
from lvmbench.errors import CheckpointError, DataError
from lvmbench.train.checkpoint import load_checkpoint

from conftest import FAST
from test_bad_input import chains, raw_store, small_checkpoint


class Payload:
    """Unpickling this calls open(marker, 'w'): code execution, made visible."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _malicious_checkpoint(path, marker, dim=32):
    """A real checkpoint with one extra entry whose unpickling would run code."""
    small_checkpoint(path, dim)
    ckpt = torch.load(path, weights_only=True)
    ckpt["notes"] = Payload(marker)
    torch.save(ckpt, path)
    return path


def test_checkpoint_that_would_run_code_is_refused(tiny_store, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    assert main(["eval", str(ckpt), "--data", str(tiny_store.path), "--out", str(tmp_path / "out")]) == 2
    err = _one_line(capsys)
    assert str(ckpt) in err and "refused to load" in err and "could run code" in err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(ckpt)
    assert not marker.exists()
    # control: the payload is live, so the refusal above is what kept it from running
    torch.load(ckpt, weights_only=False)
    assert marker.exists()


def test_resume_refuses_a_last_pt_that_would_run_code(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recipe = apply_overrides(Recipe(), list(FAST))
    (run_dir / "recipe.json").write_text(json.dumps(recipe.to_dict()))
    marker = tmp_path / "pwned"
    _malicious_checkpoint(run_dir / "last.pt", marker)
    assert main(["run", "--resume", str(run_dir)]) == 2
    assert "refused to load" in _one_line(capsys)
    assert not marker.exists()


def test_legacy_pickle_checkpoint_is_refused(tiny_store, tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "legacy.pt"
    ckpt.write_bytes(pickle.dumps({"format": "lvmbench-checkpoint", "x": Payload(marker)}))
    assert main(["eval", str(ckpt), "--data", str(tiny_store.path), "--out", str(tmp_path / "out")]) == 2
    assert str(ckpt) in _one_line(capsys)
    assert not marker.exists()


@pytest.mark.parametrize("which", ["vectors", "offsets"])
def test_pickled_object_array_in_a_chain_store_is_refused(which, tmp_path, capsys):
    marker = tmp_path / "pwned"
    v, o = chains(10, 8)
    evil = np.array([Payload(marker)], dtype=object)
    arrays = {"vectors": v, "offsets": o, which: evil}
    ds = raw_store(tmp_path / "ds", arrays["vectors"], arrays["offsets"], allow_pickle=True)
    assert main(["run", "--data", str(ds), "--out", str(tmp_path / "out")]) == 2
    err = _one_line(capsys)
    assert str(ds / f"{which}.npy") in err and "Python objects" in err
    assert not marker.exists() and not (tmp_path / "out").exists()
    # control: numpy's unsafe path would have run it
    np.load(ds / f"{which}.npy", allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("entry", ["../outside.npy", "sub/../../outside.npy", "ABSOLUTE", "link.npy"])
def test_manifest_paths_cannot_escape_the_dataset_directory(entry, tmp_path, capsys):
    v, o = chains(10, 8)
    ds = write_store(tmp_path / "ds", v, o, {}).path
    np.save(tmp_path / "outside.npy", v)
    if entry == "ABSOLUTE":
        entry = str(tmp_path / "outside.npy")
    if entry == "link.npy":
        (ds / "link.npy").symlink_to(tmp_path / "outside.npy")
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest["files"]["vectors"] = entry
    (ds / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="points outside the dataset directory"):
        load_store(ds)
    assert main(["run", "--data", str(ds), "--out", str(tmp_path / "out")]) == 2
    err = _one_line(capsys)
    assert str(ds / "manifest.json") in err and "outside the dataset directory" in err


def test_recipe_files_are_toml_data_never_executed(tiny_store, tmp_path, capsys):
    marker = tmp_path / "pwned"
    code = tmp_path / "code.toml"
    code.write_text(f"__import__('pathlib').Path({str(marker)!r}).touch()\n")
    assert main(["run", "--data", str(tiny_store.path), "--recipe", str(code), "--out", str(tmp_path / "o")]) == 2
    assert str(code) in _one_line(capsys) and not marker.exists()
    # valid TOML whose string value is code: it stays a string (here: an unknown model name)
    text = tmp_path / "text.toml"
    text.write_text(f'[model]\nname = "__import__(\'pathlib\').Path({str(marker)!r}).touch()"\n')
    assert main(["run", "--data", str(tiny_store.path), "--recipe", str(text), "--out", str(tmp_path / "o")]) == 2
    assert "unknown model" in _one_line(capsys) and not marker.exists()
    assert not (tmp_path / "o").exists()
