"""The gate knows what it gates: benchmark pins, the regression against a deployed run, latency, policies.

The pinned-benchmark cases are the reproductions on the shipped data: a
smaller test split, an easier subset and a luckier split used to pass
``gate --min 0.55 --on ci_low``; each is now refused, naming what differs.
Only baselines run here (seconds each), except one short amn training for
``eval --split val``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.config import Recipe
from lvmbench.data.prepare import prepare, resolve_data
from lvmbench.report import benchmark

from conftest import FAST

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "fixtures" / "python-docs"
STRICT = ["--min", "0.55", "--on", "ci_low", "--require-predictions"]
LATENCY = ["--set", "eval.latency_calls=10", "--set", "eval.latency_seconds=0.2"]


def _run(out: Path, model: str, *extra: str, data: Path = DEFAULT) -> Path:
    assert main(["run", "--model", model, "--data", str(data), "--out", str(out), "--set", "eval.bootstrap=200",
                 *LATENCY, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The runs that passed a gate blind to its benchmark (docs/contract.md, "A gate that did not know what it gated"):
    a smaller test split, an easier subset and a luckier seed, beside the shipped split, on python-docs."""
    root = tmp_path_factory.mktemp("bench")
    return {
        "shipped": _run(root / "shipped", "decayed_mean"),
        "copy_last": _run(root / "copy_last", "copy_last"),
        "small_test": _run(root / "small", "decayed_mean", "--set", "data.test_frac=0.02",
                           "--set", "data.train_frac=0.88"),
        "coherent": _run(root / "coherent", "copy_last", "--set", "data.coherence_min=0.5"),
        "seed2": _run(root / "seed2", "decayed_mean", "--seed", "2"),
    }


def _gate(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["gate", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out.strip(), out.err.strip()


def test_the_shipped_pins_are_what_the_fixtures_give():
    for name, data in (("default", DEFAULT), *((t, ROOT / "fixtures" / "suite" / t) for t in
                                              ("git-manual", "postgresql-manual", "python-manual"))):
        prep = prepare(resolve_data(str(data), log=lambda m: None), Recipe())
        assert benchmark.differences(benchmark.data_pins(prep, Recipe()), benchmark.load(name)) == [], name


@pytest.mark.parametrize("which, fields", [
    ("small_test", ["queries: 81 queries, benchmark 'default' has 293", "pool: 84 candidates, benchmark 'default' "
                                                                        "has 308", "split sha256 differs"]),
    ("coherent", ["pool: 46 candidates, benchmark 'default' has 308", "queries: 43 queries"]),
    ("seed2", ["split sha256 differs", "query set (sha256 of the target rows) differs"]),
])
def test_a_smaller_pool_an_easier_subset_or_a_luckier_split_is_refused_by_a_pinned_gate(runs, capsys, which,
                                                                                        fields):
    rc, out, _ = _gate(capsys, runs[which], *STRICT)
    assert rc == 0 and "not pinned to a benchmark" in out  # the loophole, still open without a pin...
    rc, out, _ = _gate(capsys, runs[which], *STRICT, "--benchmark", "default")
    assert rc == 1, out  # ...closed with one
    line = next(x for x in out.splitlines() if "benchmark 'default' -> FAIL" in x)
    for field in fields:
        assert field in line, line


def test_the_shipped_split_passes_its_pin_and_the_verdict_says_what_it_was_measured_on(runs, capsys):
    rc, out, _ = _gate(capsys, runs["shipped"], *STRICT, "--benchmark", "default")
    assert rc == 1  # decayed_mean's 54.6 % does not reach 55 %, but it is the benchmark
    assert "benchmark 'default' -> PASS" in out and "gate: FAIL (1 of 2 criteria passed)" in out
    rc, out, _ = _gate(capsys, runs["shipped"], "--min", "0.5")
    assert rc == 0
    assert "293 test queries, pool 308 (split), chance Hit@5 1.7%, split sha256 0a728ff95740" in out
    assert "not pinned to a benchmark" in out
    rc, out, _ = _gate(capsys, runs["shipped"], "--min", "0.5", "--benchmark", "git-manual")
    assert rc == 1 and "dataset sha256 differs" in out and "queries: 293 queries, benchmark 'git-manual' has 3874" in out


def test_a_val_split_evaluation_is_refused_by_a_pinned_gate_and_named_when_not_pinned(tmp_path, capsys):
    run = tmp_path / "amn"
    assert main(["run", "--model", "amn", "--data", str(DEFAULT), "--out", str(run), "--set", "train.max_epochs=1",
                 "--set", "eval.bootstrap=50", *LATENCY]) == 0
    val = tmp_path / "val"
    assert main(["eval", str(run), "--split", "val", "--out", str(val)]) == 0
    rc, out, _ = _gate(capsys, val, "--min", "0")
    assert rc == 0 and "312 val queries" in out
    rc, out, _ = _gate(capsys, val, "--min", "0", "--benchmark", "default")
    assert rc == 1 and "scored split: \"val\", benchmark 'default' has \"test\"" in out


def test_against_a_deployed_run_better_passes_worse_fails_other_queries_are_refused(runs, capsys):
    rc, out, _ = _gate(capsys, runs["shipped"], "--against", runs["copy_last"])
    assert rc == 0, out  # decayed_mean 54.6 % vs copy_last 50.2 %, on the same 293 queries
    assert "hit@5 lift +4.4 pts [95% CI" in out and "McNemar p" in out and "W/T/L" in out
    rc, out, _ = _gate(capsys, runs["copy_last"], "--against", runs["shipped"])
    assert rc == 1 and "lift -4.4 pts" in out and "-> FAIL" in out
    rc, out, _ = _gate(capsys, runs["copy_last"], "--against", runs["shipped"], "--margin", "0.2")
    assert rc == 0  # within a 20-point margin
    rc, out, err = _gate(capsys, runs["seed2"], "--against", runs["shipped"])
    assert rc == 2 and out == "" and len(err.splitlines()) == 1
    assert "were not measured on the same queries and pool: split sha256 differs" in err


def test_a_policy_holds_several_criteria_and_prints_every_one(runs, tmp_path, capsys):
    policy = tmp_path / "gate.toml"
    policy.write_text(f'''
benchmark = "default"
require_predictions = true
max_p95_ms = 10000.0

[[thresholds]]
metric = "hit@5"
min = 0.55

[[thresholds]]
metric = "par"
max = 2.0

[against]
run = "{runs["copy_last"]}"
margin = 0.01
''')
    rc, out, _ = _gate(capsys, runs["shipped"], "--policy", policy)
    lines = out.splitlines()
    assert rc == 1 and "gate: FAIL (4 of 5 criteria passed)" in out, out
    assert any("hit@5 = 54.6% vs min 55.0% -> FAIL" in x for x in lines)
    assert any("gate: par = " in x and "vs max 2.000 -> PASS" in x for x in lines)
    assert any("benchmark 'default' -> PASS" in x for x in lines)
    assert any("against " in x and "-> PASS" in x for x in lines)
    assert any("latency: batch-1 p95" in x and "-> PASS" in x for x in lines)
    rc, xml, _ = _gate(capsys, runs["shipped"], "--policy", policy, "--format", "junit")
    suite = ET.fromstring(xml).find("testsuite")
    cases = suite.findall("testcase")
    assert rc == 1 and len(cases) == 5 and suite.get("failures") == "1"
    assert [c.get("name") for c in cases if c.find("failure") is not None] == ["hit@5 >= 55.0% (value)"]
    rc, md, _ = _gate(capsys, runs["shipped"], "--policy", policy, "--format", "markdown")
    assert md.startswith("### lvmbench gate: FAIL") and md.count("\n| ") == 6
    rc, js, _ = _gate(capsys, runs["shipped"], "--policy", policy, "--format", "json")
    verdict = json.loads(js)
    assert verdict["passed"] is False and len(verdict["criteria"]) == 5


def test_latency_is_recorded_by_run_and_a_budget_refuses_a_run_without_it(runs, tmp_path, capsys):
    res = json.loads((runs["shipped"] / "results.json").read_text())
    lat = res["latency"]
    for what in ("model", "search"):
        for batch in ("batch_1", "batch_256"):
            rec = lat[what][batch]
            assert rec["calls"] >= 5 and 0 < rec["p50_ms"] <= rec["p95_ms"] <= rec["p99_ms"]
    assert lat["machine"]["device"] == "cpu" and lat["machine"]["cpu"]
    rc, out, _ = _gate(capsys, runs["shipped"], "--max-p95-ms", 1e-9)
    assert rc == 1 and "latency: batch-1 p95" in out and "-> FAIL" in out
    # predictions made elsewhere have no model latency: a budget cannot be held against them
    task = tmp_path / "task.npz"
    assert main(["task", "--data", str(DEFAULT), "--out", str(task)]) == 0
    unit = np.load(DEFAULT / "vectors.npy").astype(np.float32)
    np.save(tmp_path / "pred.npy", unit[np.load(task)["target_ids"] - 1])
    assert main(["score", str(tmp_path / "pred.npy"), "--task", str(task), "--out", str(tmp_path / "s")]) == 0
    rc, out, err = _gate(capsys, tmp_path / "s", "--max-p95-ms", 100)
    assert rc == 2 and "records no batch-1 model latency" in err
    assert main(["latency", str(runs["shipped"]), "--calls", "5", "--seconds", "0.1"]) == 0
    assert "latency per query (ms), here: cpu" in capsys.readouterr().out


def test_contrastive_accuracy_and_paraphrasing_are_recorded_shown_and_recomputed_by_the_gate(runs, tmp_path,
                                                                                           capsys):
    res = json.loads((runs["copy_last"] / "results.json").read_text())
    m = res["metrics"]
    assert 0.5 < m["ca"] <= 1.0 and m["ci"]["ca"][0] <= m["ca"] <= m["ci"]["ca"][1]
    assert m["par"] > 1.0  # copy_last returns a context vector: closer to its context than the truth is
    assert "CA" in (runs["copy_last"] / "report.md").read_text() and "PAR" in (runs["copy_last"] / "report.md").read_text()
    rc, out, _ = _gate(capsys, runs["copy_last"], "--metric", "par", "--max", "1.1")
    assert rc == 1 and "par = " in out and "-> FAIL" in out and "recomputed from predictions.npz" in out
    rc, out, _ = _gate(capsys, runs["copy_last"], "--metric", "ca", "--min", "0.8", "--on", "ci_low")
    assert rc == 0 and "recomputed from predictions.npz" in out
    copy = tmp_path / "edited"
    copy.mkdir()
    res["metrics"]["par"] = 1.0
    (copy / "results.json").write_text(json.dumps(res))
    (copy / "predictions.npz").write_bytes((runs["copy_last"] / "predictions.npz").read_bytes())
    rc, _, err = _gate(capsys, copy, "--metric", "par", "--max", "1.1")
    assert rc == 3 and "metrics.par = 1.0 but" in err


def test_pin_a_benchmark_from_a_run_and_gate_against_it(runs, tmp_path, capsys):
    bench = tmp_path / "team.json"
    assert main(["benchmark", "pin", str(runs["coherent"]), "--name", "team", "--out", str(bench)]) == 0
    rc, out, _ = _gate(capsys, runs["coherent"], "--min", "0", "--benchmark", bench)
    assert rc == 0 and "benchmark 'team' -> PASS" in out
    rc, out, _ = _gate(capsys, runs["copy_last"], "--min", "0", "--benchmark", bench)
    assert rc == 1 and "pool: 308 candidates, benchmark 'team' has 46" in out
    assert main(["benchmark", "list", "--json"]) == 0
    names = [b["name"] for b in json.loads(capsys.readouterr().out)]
    assert names == ["default", "git-manual", "postgresql-manual", "python-manual"]


def test_a_recipe_names_its_gate_policy_and_run_prints_its_verdict(tmp_path, capsys, tiny_store):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[gate]\nbenchmark = "default"\nmax_p95_ms = 10000.0\n\n[[gate.thresholds]]\nmetric = "par"\n'
                      'max = 5.0\n')
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out), "--recipe",
                 str(recipe), *(a for kv in FAST for a in ("--set", kv))]) == 0
    printed = capsys.readouterr().out
    assert "benchmark 'default' -> FAIL: dataset sha256 differs" in printed  # tiny_store is not python-docs
    rc, text, _ = _gate(capsys, out, "--policy", recipe)
    assert rc == 1 and "benchmark 'default' -> FAIL" in text and "par = " in text


def test_cached_baselines_are_identical_to_computed_ones_and_a_tampered_entry_is_recomputed(tiny_store, tmp_path,
                                                                                           monkeypatch, capsys):
    from lvmbench.evaluate import baseline_cache

    argv = ["run", "--model", "copy_last", "--data", str(tiny_store.path), *LATENCY]
    monkeypatch.setenv("LVMBENCH_BASELINE_CACHE", "off")
    assert main([*argv, "--out", str(tmp_path / "uncached")]) == 0
    monkeypatch.setenv("LVMBENCH_BASELINE_CACHE", "on")
    assert main([*argv, "--out", str(tmp_path / "cold")]) == 0
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "warm")]) == 0
    assert "baselines: 7 reused from the cache" in capsys.readouterr().out
    runs = {name: (json.loads((tmp_path / name / "results.json").read_text()), np.load(tmp_path / name /
                                                                                   "predictions.npz"))
            for name in ("uncached", "cold", "warm")}
    ref_res, ref_npz = runs["uncached"]
    for name in ("cold", "warm"):
        res, npz = runs[name]
        assert res["baselines"] == ref_res["baselines"] and res["lift_over"] == ref_res["lift_over"]
        assert res["diagnostics"] == ref_res["diagnostics"]
        for key in ref_npz.files:
            if key.startswith(("rank__", "par_pred__")):
                assert np.array_equal(npz[key], ref_npz[key]), (name, key)
    # an entry whose bytes no longer match its sha256 (here: one rank flipped) is recomputed, never used
    (entry,) = baseline_cache.directory().glob("*.npz")
    z = dict(np.load(entry))
    z["rank__copy_last"] = z["rank__copy_last"] + 1
    np.savez(entry, **z)
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "after")]) == 0
    assert "reused from the cache" not in capsys.readouterr().out
    after = np.load(tmp_path / "after" / "predictions.npz")
    assert np.array_equal(after["rank__copy_last"], ref_npz["rank__copy_last"])
