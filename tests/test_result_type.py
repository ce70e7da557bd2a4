"""The typed, versioned result (``lvmbench.result.Result``): exact round trips, version checks, migrations, and
tables whose metric columns come from the metric table."""

from __future__ import annotations

import json

import pytest

from lvmbench.cli import main
from lvmbench.errors import UsageError
from lvmbench.evaluate import metrics
from lvmbench.report import columns
from lvmbench.report.table import render_table
from lvmbench.result import MIGRATIONS, SCHEMA_VERSION, History, Result, Scores, schema

from conftest import FAST

QUICK = [a for item in FAST for a in ("--set", item)]


@pytest.fixture(scope="module")
def run_dir(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("typed") / "run"
    assert main(["run", "--model", "gru", "--data", str(tiny_store.path), "--out", str(out)] + QUICK) == 0
    return out


def test_a_written_results_json_round_trips_exactly(run_dir):
    text = (run_dir / "results.json").read_text()
    raw = json.loads(text)
    result = Result.from_json(run_dir)
    assert result.to_json() == raw
    assert json.dumps(result.to_json()) == json.dumps(raw)  # key order too
    assert Result.from_json(raw).to_json() == raw
    assert result.extra == {} and result.metrics.extra == {}  # every key the writer writes is a typed field


def test_typed_access_reads_what_the_file_says(run_dir):
    raw = json.loads((run_dir / "results.json").read_text())
    r = Result.from_json(run_dir)
    assert r.metrics.value("hit@5") == raw["metrics"]["hit@5"]
    assert r.metrics.interval("hit@5") == tuple(raw["metrics"]["ci"]["hit@5"])
    assert r.metrics.chance_at(5) == raw["metrics"]["chance"]["hit@5"]
    for key in metrics.keys(r.ks, vectors=True):  # the metrics are keyed by the metric table
        assert r.metrics.value(key) == raw["metrics"][key], key
    best = raw["lift"]["over"]
    assert r.lift.over == best and r.scores_of(best).value("hit@5") == raw["baselines"][best]["hit@5"]
    assert r.lift.value("hit@5") == raw["lift"]["hit@5"]
    assert r.lift.interval("hit@5") == tuple(raw["lift"]["lift_ci_hit@5"])
    assert r.lift.mcnemar_p("hit@5") == raw["lift"]["mcnemar_p_hit@5"]
    assert r.lift_against("copy_last").wtl == tuple(raw["lift_over"]["copy_last"][k] for k in ("wins", "ties", "losses"))
    assert r.dataset.sha256 == raw["dataset"]["sha256"] and r.pool.sha256 == raw["pool"]["sha256"]
    assert r.consistency.val.ok is raw["consistency"]["val"]["ok"]
    assert r.env.git.to_json() == raw["env"]["git"]
    assert r.recipe.parsed("here").eval.ks == raw["recipe"]["eval"]["ks"] == r.ks
    assert r.gate.passed is raw["gate"]["passed"]
    history = History.load(run_dir)
    hist_raw = json.loads((run_dir / "training_history.json").read_text())
    assert history.to_json() == hist_raw and history.best_epoch == hist_raw["best_epoch"]
    assert history.epochs[0].val["hit@5"] == hist_raw["history"][0]["val_hit@5"]


def test_unknown_and_missing_keys_survive_and_nothing_is_coerced():
    raw = {"schema_version": SCHEMA_VERSION, "future_section": {"x": [1, 2]},
           "metrics": {"hit@5": "edited", "hit@3": 0.5, "ndcg@7": 0.1, "new_count": 3, "ci": {"hit@5": [0.1, 0.2]}}}
    r = Result.from_json(raw)
    assert r.to_json() == raw and list(r.to_json()) == list(raw)
    assert r.extra == {"future_section": {"x": [1, 2]}} and r.metrics.extra == {"new_count": 3}
    assert r.metrics.recorded("hit@5") == "edited" and r.metrics.value("hit@5") is None
    assert r.metrics.metric_keys() == ["hit@3", "hit@5", "ndcg@7"]
    assert r.pool is None and r.model_name is None and r.ks == [1, 5, 10] and r.exclude_context
    r.status, r.status_detail = "complete", None  # set after reading: written, even as null
    assert r.to_json()["status_detail"] is None and list(r.to_json())[-2:] == ["status", "status_detail"]


def test_version_and_shape_are_checked_with_one_line_naming_the_file(tmp_path):
    newer = tmp_path / "newer" / "results.json"
    newer.parent.mkdir()
    newer.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(UsageError, match=rf"{newer}: schema_version {SCHEMA_VERSION + 1} is newer than this lvmbench"):
        Result.from_json(newer.parent)
    for body, why in [({"metrics": {}}, "no schema_version"), ({"schema_version": True}, "no schema_version"),
                      ([1, 2], "not an lvmbench results object"),
                      ({"schema_version": 1, "metrics": [1]}, "'metrics' is a list, not an object"),
                      ({"schema_version": 1, "baselines": {"copy_last": 3}}, "'baselines.copy_last' is a number")]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(body))
        with pytest.raises(UsageError) as err:
            Result.from_json(path)
        assert str(err.value).startswith(f"{path}: ") and why in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UsageError, match="results file not found"):
        Result.from_json(tmp_path / "absent")


def test_an_older_version_is_migrated_step_by_step(monkeypatch):
    """The migration path: a version-2 lvmbench reads a version-1 file through MIGRATIONS[1]."""
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(MIGRATIONS, SCHEMA_VERSION, lambda d: {**d, "status": d.get("status", "complete")})
    r = Result.from_json({"schema_version": SCHEMA_VERSION, "metrics": {"hit@5": 0.5}})
    assert r.schema_version == SCHEMA_VERSION + 1 and r.status == "complete"
    with pytest.raises(UsageError, match="schema_version 0 is older than any"):
        Result.from_json({"schema_version": 0})


def test_every_gateable_metric_is_shown_and_the_tables_take_their_columns_from_the_table(run_dir):
    assert all(m.show for m in metrics.METRICS.values() if m.gate is not None)
    result = Result.from_json(run_dir)
    table = render_table(result)
    for key in columns.shown(result.ks):
        assert columns.heading(key) in table, key
    assert "nDCG@5" in table and "CA" in table and "PAR" in table
    fewer = result.to_json()
    fewer["recipe"]["eval"]["ks"] = [5]
    header = render_table(fewer).splitlines()[3]
    assert "Hit@5 %" in header and "nDCG@5" in header and "Hit@10" not in header and "nDCG@1 " not in header


def test_compare_shows_ndcg_for_the_recipes_ks(run_dir, capsys):
    assert main(["compare", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert all(f"nDCG@{k}" in out for k in Result.from_json(run_dir).ks)
    assert main(["compare", str(run_dir), "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert {"ndcg@1", "ndcg@5", "ndcg@10"} <= set(row)


def test_scores_of_a_baseline_run_are_its_own_row(tiny_store, tmp_path):
    out = tmp_path / "cl"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out)] + QUICK) == 0
    r = Result.from_json(out)
    assert r.is_baseline_run and isinstance(r.scores_of("copy_last"), Scores)
    assert r.scores_of("copy_last") is r.metrics
