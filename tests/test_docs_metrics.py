"""The generated metrics page (docs/concepts/metrics.md) is what the metric table METRICS says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lvmbench.cli import docs_metrics
from lvmbench.evaluate import metrics

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "concepts" / "metrics.md"


def test_committed_metrics_page_is_what_the_table_generates():
    found = docs_metrics.check(PAGE)
    assert found is None, found  # the message ends with the command that regenerates the page
    assert PAGE.read_text(encoding="utf-8") == docs_metrics.render()


def test_every_metric_has_its_row():
    page = docs_metrics.render()
    for metric in metrics.METRICS.values():
        assert docs_metrics.row(metric) in page.splitlines()
        assert metric.description.split(" ")[0] in page


@pytest.fixture
def page(tmp_path) -> Path:
    path = tmp_path / "metrics.md"
    path.write_text(docs_metrics.render(), encoding="utf-8")
    return path


def test_check_names_a_metric_added_without_regenerating(page, monkeypatch):
    """Not vacuous: one more line in METRICS and the committed page is stale, the metric named."""
    assert docs_metrics.check(page) is None
    monkeypatch.setitem(metrics.METRICS, "hit_ties",
                        metrics.Metric("hit_ties", lambda r, c, k: 0.0, at_k=True, label="HitT", description="new"))
    found = docs_metrics.check(page)
    assert found is not None and len(found.splitlines()) == 1
    assert "metric hit_ties is missing" in found and docs_metrics.REGENERATE in found


def test_check_names_a_metric_whose_entry_changed(page, monkeypatch):
    changed = dataclasses.replace(metrics.METRICS["mrr"], gate=None)
    monkeypatch.setitem(metrics.METRICS, "mrr", changed)
    assert "metric mrr is stale" in docs_metrics.check(page)


def test_check_names_a_row_whose_metric_was_removed(page, monkeypatch):
    monkeypatch.delitem(metrics.METRICS, "median_rank")
    assert "`median_rank` names no metric" in docs_metrics.check(page)


def test_check_command_line_exits_1_with_one_line(page, tmp_path, capsys):
    assert docs_metrics.main(["--check", str(page)]) == 0
    stale = tmp_path / "stale.md"
    stale.write_text("".join(line for line in page.read_text(encoding="utf-8").splitlines(keepends=True)
                             if not line.startswith("| `ca` |")), encoding="utf-8")
    capsys.readouterr()
    assert docs_metrics.main(["--check", str(stale)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "metric ca is missing" in err[0] and docs_metrics.REGENERATE in err[0]
    assert docs_metrics.main(["--check", str(tmp_path / "absent.md")]) == 1
