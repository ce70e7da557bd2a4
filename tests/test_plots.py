"""Pictures: curves.png per run, compare --plot; without matplotlib one install line and no failure."""

import builtins
import json

import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.report.plots import INSTALL_HINT, plot_curves, plot_leaderboard

from conftest import FAST

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

HISTORY = {
    "model": "gru",
    "history": [
        {"epoch": e, "train_loss": 1.0 / e, "val_loss": 0.8 / e + 0.05 * e, "val_hit@5": h}
        for e, h in zip(range(1, 6), [0.2, 0.35, 0.41, 0.39, 0.40])
    ],
    "best_hit5": 0.41,
    "best_epoch": 3,
    "stop_reason": "early stop",
}


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Make every ``import matplotlib...`` fail, as on a machine without the extra."""
    real = builtins.__import__

    def fake(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


def _fake_run(tmp_path, name, model, ranks, n=20):
    d = tmp_path / name
    d.mkdir()
    (d / "results.json").write_text(json.dumps({
        "schema_version": 1, "status": "complete", "model": {"name": model, "kind": "model"},
        "dataset": {"sha256": "d" * 64}, "split": {"sha256": "s" * 64},
        "pool": {"sha256": "p" * 64, "size": 400, "split": "test", "exclude_context": True},
        "metrics": {"chance": {"hit@1": 0.0025, "hit@5": 0.0125, "hit@10": 0.025}},
    }))
    np.savez(d / "predictions.npz", target_ids=np.arange(n), pool_ids=np.arange(400), rank=ranks,
             rank__copy_last=np.array([1, 50] * (n // 2)), rank__random=np.full(n, 200))
    return d


def test_curves_png_is_a_real_image(tmp_path):
    image = pytest.importorskip("matplotlib.image")
    path = plot_curves(HISTORY, tmp_path / "curves.png", log=lambda m: None)
    assert path == tmp_path / "curves.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    h, w = image.imread(path).shape[:2]
    assert w > 400 and h > 200


def test_leaderboard_png_and_compare_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a = _fake_run(tmp_path, "a", "alpha", np.full(20, 2))
    b = _fake_run(tmp_path, "b", "beta", np.array([1] * 10 + [30] * 10))
    png = tmp_path / "leaderboard.png"
    assert main(["compare", str(a), str(b), "--plot", str(png), "--format", "json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays pure JSON; the note went to stderr
    assert f"wrote {png}" in captured.err
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_without_matplotlib_pictures_are_skipped_with_one_install_line(tmp_path, capsys, no_matplotlib):
    lines = []
    assert plot_curves(HISTORY, tmp_path / "c.png", log=lines.append) is None
    assert plot_leaderboard({"rows": [{}]}, tmp_path / "l.png", log=lines.append) is None
    assert len(lines) == 2 and all(INSTALL_HINT in ln and "not installed" in ln for ln in lines)
    assert not (tmp_path / "c.png").exists() and not (tmp_path / "l.png").exists()
    # compare still prints its table and exits 0
    a = _fake_run(tmp_path, "a", "alpha", np.full(20, 2))
    png = tmp_path / "leaderboard.png"
    assert main(["compare", str(a), "--plot", str(png)]) == 0
    captured = capsys.readouterr()
    assert "alpha" in captured.out and not png.exists()
    assert [ln for ln in captured.err.splitlines() if INSTALL_HINT in ln] != []


def test_run_without_matplotlib_still_succeeds(tiny_store, tmp_path, capsys, no_matplotlib):
    out = tmp_path / "run"
    args = ["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(out)]
    for item in FAST + ["train.max_epochs=1"]:
        args += ["--set", item]
    assert main(args) == 0
    printed = capsys.readouterr().out
    hint = [ln for ln in printed.splitlines() if INSTALL_HINT in ln]
    assert len(hint) == 1 and "curves.png" in hint[0]
    assert (out / "results.json").is_file() and not (out / "curves.png").exists()


def test_run_with_matplotlib_writes_curves(tiny_store, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    args = ["run", "--model", "amn", "--data", str(tiny_store.path), "--out", str(out)]
    for item in FAST + ["train.max_epochs=2"]:
        args += ["--set", item]
    assert main(args) == 0
    assert (out / "curves.png").read_bytes()[:8] == PNG_MAGIC
