"""Five small defects, each pinned: the curves' stop-metric panel, ``models`` counts and shadow notes, the
unknown-model message, one row for a baseline run's model, and an outside model's recorded config."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lvmbench.cli import main
from lvmbench.report import plots

from conftest import FAST

MRR = [0.20, 0.26, 0.31, 0.30, 0.29]
HIT5 = [0.30, 0.42, 0.40, 0.41, 0.39]  # Hit@5 peaks at epoch 2, MRR (what stopping followed) at epoch 3
CONTRASTIVE_HISTORY = {
    "model": "reference", "recipe": "contrastive", "stop_metric": "mrr",
    "history": [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 0.9 / e, "val_mrr": m, "val_hit@5": h}
                for e, m, h in zip(range(1, 6), MRR, HIT5)],
    "best_epoch": 3, "best_metric": 0.31, "best_hit5": 0.40, "stop_reason": "early stop",
}


@pytest.fixture
def figures(monkeypatch) -> list[Any]:
    """Every figure plot_curves draws, captured as it is saved (the PNG is still written)."""
    pytest.importorskip("matplotlib")
    drawn: list[Any] = []
    real = plots._save

    def keep(fig: Any, path: Path) -> Path:
        drawn.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return drawn


def _lines(fig: Any) -> dict[str, Any]:
    return {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}


def _star(ax: Any) -> Any:
    (star,) = [line for line in ax.get_lines() if line.get_marker() == "*"]
    return star


def test_curves_plot_the_stop_metric_and_star_its_best_epoch(figures, tmp_path):
    assert plots.plot_curves(CONTRASTIVE_HISTORY, tmp_path / "curves.png", log=lambda m: None)
    (fig,) = figures
    panel = fig.axes[1]
    assert panel.get_title() == "val MRR (early-stopping metric)" and panel.get_ylabel() == "val MRR"
    lines = _lines(fig)
    assert list(lines["val MRR"].get_ydata()) == pytest.approx(MRR)
    assert list(lines["val Hit@5"].get_ydata()) == pytest.approx([100 * h for h in HIT5])  # still shown
    star = _star(panel)
    assert list(star.get_xdata()) == [3] and star.get_ydata()[0] == pytest.approx(max(MRR))
    assert "val MRR 0.310" in fig.get_suptitle()
    # a recipe that stops on Hit@5 keeps its Hit@5 panel, starred at its own best epoch
    history = {**CONTRASTIVE_HISTORY, "stop_metric": "hit@5", "best_epoch": 2, "best_metric": 0.42}
    assert plots.plot_curves(history, tmp_path / "curves.png", log=lambda m: None)
    panel = figures[1].axes[1]
    assert panel.get_title() == "val Hit@5 (early-stopping metric)" and panel.get_ylabel() == "val Hit@5 (%)"
    assert "val MRR" not in _lines(figures[1])
    assert _star(panel).get_ydata()[0] == pytest.approx(100 * max(HIT5))


def test_a_contrastive_run_draws_its_mrr_panel(figures, tiny_store, tmp_path):
    out = tmp_path / "run"
    args = ["run", "--model", "amn", "--recipe", "contrastive", "--data", str(tiny_store.path), "--out", str(out)]
    for item in FAST + ["train.max_epochs=2", "eval.bootstrap=20"]:
        args += ["--set", item]
    assert main(args) == 0
    history = json.loads((out / "training_history.json").read_text())
    assert history["stop_metric"] == "mrr"
    panel = figures[-1].axes[1]
    assert "MRR" in panel.get_title()
    plotted = _lines(figures[-1])["val MRR"].get_ydata()
    star = _star(panel)
    assert star.get_xdata()[0] == history["best_epoch"] and star.get_ydata()[0] == pytest.approx(max(plotted))


def _row(out: str, name: str, kind: str) -> list[str]:
    """The rows of ``lvmbench models`` with this name in the first column and this kind in the second."""
    want = [name, *kind.split()]
    return [line for line in out.splitlines() if line.split()[: len(want)] == want]


def test_models_counts_lvmbenchs_own_entry_point(capsys):
    assert main(["models", "--dim", "32"]) == 0
    (row,) = _row(capsys.readouterr().out, "reference", "entry point")
    d, hidden = 32, 512  # LayerNorm(3d) + Linear(3d -> hidden) + Linear(hidden -> d)
    assert f"{2 * 3 * d + 3 * d * hidden + hidden + hidden * d + d:,}" in row.split()


def test_models_marks_an_entry_point_a_built_in_shadows(monkeypatch, capsys):
    from lvmbench.models import outside

    eps = [importlib.metadata.EntryPoint(name, value, outside.GROUP) for name, value in [
        ("memory_gru", "thirdparty_lvm.models:MemoryGRU"),
        ("other_lvm", "thirdparty_lvm.models:Other"),
        ("broken_own", "lvmbench.models.reference:NoSuchModel"),
    ]]
    monkeypatch.setattr(outside, "entry_points", lambda: eps)
    assert main(["models", "--dim", "32"]) == 0
    out = capsys.readouterr().out
    (shadowed,) = _row(out, "memory_gru", "entry point")
    assert ("(shadowed by the built-in memory_gru; use its import path thirdparty_lvm.models:MemoryGRU)"
            in shadowed)
    (builtin,) = _row(out, "memory_gru", "model")
    assert "—" not in builtin  # the built-in keeps its count
    for name in ("other_lvm", "broken_own"):  # not imported / not buildable: listed without a count
        (row,) = _row(out, name, "entry point")
        assert "—" in row and "shadowed" not in row
    assert "thirdparty_lvm" not in sys.modules


def test_the_unknown_model_error_lists_installed_entry_points(tiny_store, tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["run", "--model", "nope", "--data", str(tiny_store.path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown model 'nope'" in err[0] and "reference" in err[0], err
    assert not out.exists()


def _tables(text: str) -> list[list[str]]:
    """The rows of every table in a printed report (the lines between a '----' rule and the next blank line)."""
    tables, rows = [], None
    for line in text.splitlines():
        if line.startswith("----"):
            rows = []
            tables.append(rows)
        elif rows is not None and line.strip():
            rows.append(line)
        else:
            rows = None
    return tables


def test_a_baseline_run_lists_its_model_once(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out),
                 "--set", "eval.bootstrap=20"]) == 0
    printed = capsys.readouterr().out
    for text in (printed, (out / "report.md").read_text()):
        results_table, direction = _tables(text)
        for rows in (results_table, direction):
            own = [r for r in rows if r.startswith("copy_last")]
            assert len(own) == 1 and own[0].startswith("copy_last (baseline; the run's model)"), own
        assert results_table[0].startswith("copy_last (baseline; the run's model)")  # the run's model leads
        assert len(results_table) == len(json.loads((out / "results.json").read_text())["baselines"])


OUTSIDE = textwrap.dedent('''
    import torch
    from torch import nn

    class ScaledLast(nn.Module):
        """The last context vector, scaled (an outside baseline: nothing to train)."""

        lvmbench_kind = "baseline"

        def __init__(self, dim, scale=1.0):
            super().__init__()
            self.scale = scale

        def forward(self, context, lengths):
            last = (lengths.to(context.device) - 1).clamp(min=0)
            return self.scale * context[torch.arange(context.shape[0], device=context.device), last]
''')


def test_an_outside_models_config_records_only_its_name_and_options(tiny_store, tmp_path, monkeypatch):
    (tmp_path / "small_fix_models.py").write_text(OUTSIDE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "small_fix_models", raising=False)
    runs = {"outside": ["small_fix_models:ScaledLast", "--set", "model.options.scale=2.0"], "builtin": ["random"]}
    for out, (model, *extra) in runs.items():
        assert main(["run", "--model", model, "--data", str(tiny_store.path), "--out", str(tmp_path / out),
                     "--set", "eval.bootstrap=20", *extra]) == 0
    outside = json.loads((tmp_path / "outside" / "results.json").read_text())["model"]
    assert outside["config"] == {"name": "small_fix_models:ScaledLast", "options": {"scale": 2.0}}
    builtin = json.loads((tmp_path / "builtin" / "results.json").read_text())["model"]
    assert {"layers", "memory_slots", "head_hidden", "options"} <= set(builtin["config"])
