"""Direction diagnostics: margin, the oracle/copy_last bounds and the cos(pred, x_{t+k}) sweep."""

import numpy as np
import pytest
import torch

from lvmbench.config import apply_overrides, Recipe
from lvmbench.data.prepare import prepare
from lvmbench.evaluate.diagnostics import OFFSETS, bounds, direction
from lvmbench.report.table import render_table

from conftest import FAST


def _chains():
    """Two chains (rows 0-4 and 5-7) of random unit vectors; one query per position >= 1."""
    rng = np.random.default_rng(0)
    unit = rng.standard_normal((8, 6)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    target = np.array([1, 2, 3, 4, 6, 7])
    start = np.array([0, 0, 0, 0, 5, 5])
    end = np.array([5, 5, 5, 5, 8, 8])
    return unit, target, start, end


def test_offsets_stay_inside_the_chain_and_match_a_loop():
    unit, target, start, end = _chains()
    pred = unit[[0, 4, 2, 1, 7, 5]]  # arbitrary unit predictions
    d = direction(pred, unit, target, start, end)
    by_k = {o["k"]: o for o in d["offset_cos"]}
    assert [o["k"] for o in d["offset_cos"]] == list(OFFSETS)
    for k in OFFSETS:
        vals = [float(pred[i] @ unit[t + k]) for i, t in enumerate(target) if start[i] <= t + k < end[i]]
        assert by_k[k]["n"] == len(vals)
        if vals:
            assert by_k[k]["mean"] == pytest.approx(np.mean(vals), abs=1e-6)
        else:
            assert by_k[k]["mean"] is None
    # e.g. k=+3 only from targets 1 (row 4) in chain 0 and none in chain 1 (row 7 + 3 is past its end)
    assert by_k[3]["n"] == 1 and by_k[-1]["n"] == len(target) and by_k[-3]["n"] == 2
    assert by_k[0]["mean"] == pytest.approx(d["cos_next"]) and by_k[-1]["mean"] == pytest.approx(d["cos_last"])
    assert d["margin"] == pytest.approx(d["cos_next"] - d["cos_last"])


def test_oracle_and_copy_last_bracket_the_margin():
    unit, target, start, end = _chains()
    ref = bounds(unit, target, start, end)
    adjacent = float(np.mean(np.einsum("ij,ij->i", unit[target], unit[target - 1])))
    oracle, copy = ref["oracle"], ref["copy_last"]
    assert oracle["cos_next"] == pytest.approx(1.0) and oracle["margin"] == pytest.approx(1 - adjacent)
    assert copy["cos_last"] == pytest.approx(1.0) and copy["margin"] == pytest.approx(adjacent - 1)
    assert {o["k"]: o["mean"] for o in oracle["offset_cos"]}[0] == pytest.approx(1.0)
    assert {o["k"]: o["mean"] for o in copy["offset_cos"]}[-1] == pytest.approx(1.0)
    assert set(bounds(unit, target, start, end, copy_last=False)) == {"oracle"}


def _score(store, overrides):
    from lvmbench.evaluate.evaluation import evaluate_model
    from lvmbench.models.build import build_model
    from lvmbench.runs.artefacts import assemble, model_section

    recipe = apply_overrides(Recipe(), list(FAST) + ["model.name=gru", "data.context_len=5"] + overrides)
    prep = prepare(store, recipe)
    torch.manual_seed(0)
    model = build_model("gru", prep, recipe)  # untrained: the diagnostics do not care how good it is
    results, _ = evaluate_model("gru", model, prep, recipe, torch.device("cpu"), "test", log=lambda m: None)
    result = assemble(results, model_section("gru", model, recipe, None, None), prep, recipe, torch.device("cpu"))
    return result.to_json()


def test_results_record_direction_rows_whose_k0_is_mean_cos(tiny_store):
    res = _score(tiny_store, [])
    diag = res["diagnostics"]
    rows = diag["rows"]
    assert diag["offsets"] == list(OFFSETS)
    assert set(rows) == {"gru", "oracle", *res["baselines"]}
    assert rows["gru"]["kind"] == "model" and rows["oracle"]["kind"] == "bound"
    assert rows["copy_last"]["kind"] == "baseline"  # scored as a baseline: no second copy_last row
    for name, m in [("gru", res["metrics"])] + list(res["baselines"].items()):
        k0 = next(o for o in rows[name]["offset_cos"] if o["k"] == 0)
        assert k0["mean"] == pytest.approx(m["mean_cos"], abs=1e-6), name
        assert k0["n"] == m["n_queries"]
        assert rows[name]["margin"] == pytest.approx(m["margin"], abs=1e-6), name
    # the printed report carries the direction table with the bounds
    table = render_table(res)
    assert "direction: margin" in table and "oracle (upper bound)" in table and "cos(t+3)" in table


def test_copy_last_bound_row_appears_when_it_is_not_a_baseline(tiny_store):
    res = _score(tiny_store, ["eval.baselines=mean_context"])
    rows = res["diagnostics"]["rows"]
    assert set(rows) == {"gru", "mean_context", "oracle", "copy_last"}
    assert rows["copy_last"]["kind"] == "bound"
    assert rows["copy_last"]["cos_last"] == pytest.approx(1.0, abs=1e-6)
    assert "copy_last (echo bound)" in render_table(res)


def test_a_schema_1_file_with_reference_rows_still_renders(tiny_store):
    """results.json schema 1 called the bound rows "reference": read, they are bounds (MIGRATIONS[1])."""
    from lvmbench.result import Result

    res = _score(tiny_store, ["eval.baselines=mean_context"])
    old = {**res, "schema_version": 1}
    old["diagnostics"] = {**res["diagnostics"], "rows": {
        name: {**row, "kind": "reference"} if row["kind"] == "bound" else row
        for name, row in res["diagnostics"]["rows"].items()}}
    migrated = Result.from_json(old)
    assert migrated.to_json() == res  # the same object the current lvmbench writes, key order included
    assert {n: r.kind for n, r in migrated.diagnostics.rows.items()}["oracle"] == "bound"
    table = render_table(old)
    assert "oracle (upper bound)" in table and "copy_last (echo bound)" in table and "reference" not in table
