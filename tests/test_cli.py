"""The command line: gate exit codes, bad input, and a real end-to-end run."""

import json

import numpy as np
import pytest

from lvmbench.cli import main

from conftest import FAST


def _results(tmp_path, hit5=0.6, ci=(0.5, 0.7)):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": 1, "status": "complete",
                                "metrics": {"hit@5": hit5, "mrr": 0.4, "ci": {"hit@5": list(ci)}}}))
    return path


def test_gate_exit_codes(tmp_path, capsys):
    path = _results(tmp_path)
    assert main(["gate", str(path)]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["gate", str(path), "--min", "0.65"]) == 1
    assert main(["gate", str(path), "--on", "ci_low"]) == 1  # 0.50 < 0.55
    assert main(["gate", str(path), "--on", "ci_low", "--min", "0.5"]) == 0
    assert main(["gate", str(path), "--metric", "mrr", "--min", "0.3"]) == 0


def test_gate_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert main(["gate", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.json" in err and "not found" in err and len(err.splitlines()) == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["gate", str(bad)]) == 2
    assert "malformed JSON" in capsys.readouterr().err
    assert main(["gate", str(_results(tmp_path)), "--metric", "hit@3"]) == 2
    assert "metric 'hit@3' not in results" in capsys.readouterr().err
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema_version": 99, "metrics": {"hit@5": 1.0}}))
    assert main(["gate", str(newer)]) == 2
    assert "newer" in capsys.readouterr().err


def test_unknown_setting_and_bad_value_are_refused(tiny_store, tmp_path, capsys):
    assert main(["run", "--data", str(tiny_store.path), "--out", str(tmp_path / "r"), "--set", "train.lrr=1"]) == 2
    assert "unknown setting 'train.lrr'" in capsys.readouterr().err
    assert main(["run", "--data", str(tiny_store.path), "--out", str(tmp_path / "r"), "--set", "train.micro_batch=big"]) == 2
    assert "expected an integer" in capsys.readouterr().err
    assert main(["run", "--data", str(tiny_store.path), "--model", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_models_lists_parameter_counts(capsys):
    assert main(["models", "--dim", "768"]) == 0
    out = capsys.readouterr().out
    assert "memory_gru" in out and "11,160,064" in out and "copy_last" in out


def test_data_synth_writes_a_store(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "s"), "--chains", "12", "--dim", "16"]) == 0
    from lvmbench.data.store import load_store

    assert load_store(tmp_path / "s").n_chains == 12


@pytest.mark.slow
def test_end_to_end_run_beats_copy_last_and_writes_every_artefact(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--model", "memory_gru", "--data", str(tiny_store.path), "--out", str(out)]
    for item in FAST:
        args += ["--set", item]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "memory_gru" in printed and "copy_last (baseline)" in printed and "gate:" in printed
    for name in ("best_val_hit5.pt", "last.pt", "training_history.json", "results.json", "predictions.npz",
                 "report.md", "split.json"):
        assert (out / name).is_file(), name
    res = json.loads((out / "results.json").read_text())
    for key in ("schema_version", "model", "params", "dataset", "split", "pool", "metrics", "baselines",
                "consistency", "gate", "timings", "env"):
        assert key in res, key
    m, copy = res["metrics"], res["baselines"]["copy_last"]
    assert m["hit@5"] > copy["hit@5"] + 0.15, (m["hit@5"], copy["hit@5"])
    assert res["lift"]["over"] in res["baselines"]
    lo, hi = res["metrics"]["ci"]["hit@5"]
    blo, bhi = res["baselines"][res["lift"]["over"]]["ci"]["hit@5"]
    assert res["lift"]["intervals_separate"] == (lo > bhi or hi < blo)
    assert res["consistency"]["ok"] and res["consistency"]["val"]["ok"]
    assert res["pool"]["size"] == res["split"]["sizes"]["test"]["vectors"]
    assert set(res["baselines"]) == {"copy_last", "mean_context", "global_mean", "random", "ridge", "knn_successor",
                                     "decayed_mean"}
    hist = json.loads((out / "training_history.json").read_text())
    best_row = next(r for r in hist["history"] if r["epoch"] == hist["best_epoch"])
    assert best_row["val_hit@5"] == pytest.approx(res["consistency"]["val"]["recorded_val_hit@5"])
    assert hist["stop_metric"] == "hit@5" and hist["best_metric"] == best_row["val_hit@5"] and "best_hit5" not in hist
    # the predictions file lets anyone recompute every rank
    with np.load(out / "predictions.npz", allow_pickle=False) as z:
        from lvmbench.data.gates import unit_vectors
        from lvmbench.data.store import load_store

        unit = unit_vectors(load_store(tiny_store.path).vectors)
        pool_ids, q, tgt, ctx = z["pool_ids"], z["queries"], z["target_ids"], z["context_ids"]
        ranks = []
        for i in range(len(tgt)):
            excluded = set(ctx[i][ctx[i] >= 0].tolist())
            cand = np.array([r for r in pool_ids if r not in excluded])
            s = unit[cand] @ q[i]  # one product, so the target's score has the same rounding
            t_score = s[cand == tgt[i]][0]
            ranks.append(1 + int((s[cand != tgt[i]] > t_score).sum()))
        assert np.array_equal(np.array(ranks), z["rank"])
    # the gate reads what run wrote
    assert main(["gate", str(out / "results.json"), "--min", "0.0"]) == 0
    # an existing run directory is not overwritten
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    # eval re-scores the saved checkpoint to the same numbers
    assert main(["eval", str(out), "--data", str(tiny_store.path), "--out", str(tmp_path / "ev")]) == 0
    again = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert again["metrics"]["hit@5"] == pytest.approx(m["hit@5"])


def test_data_info_reports_distributions_and_baseline_difficulty(tiny_store, capsys):
    assert main(["data", "info", str(tiny_store.path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chains"] == 60 and info["dim"] == 32
    assert info["chain_length"]["min"] >= 8 and info["adjacent_cosine"]["max"] <= 1.0
    d = info["difficulty"]
    assert set(d["baselines"]) == {"copy_last", "mean_context", "random"}
    assert d["pool"]["size"] == info["split"]["test"]["vectors"]
    assert d["chance"]["hit@5"] < d["baselines"]["copy_last"]["hit@5"]
    assert main(["data", "info", str(tiny_store.path)]) == 0
    text = capsys.readouterr().out
    assert "difficulty on the test split" in text and "chance" in text


def _subparsers(parser, prefix="lvmbench"):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subparsers(sub, f"{prefix} {name}")


def test_every_subcommand_has_a_description_and_the_exit_codes():
    from lvmbench.cli import build_parser

    lacking = [name for name, sub in _subparsers(build_parser())
               if not sub.description or not sub.epilog or "exit codes" not in sub.epilog]
    assert lacking == []


def test_models_defaults_to_the_default_datasets_dimension(capsys):
    assert main(["models"]) == 0
    assert "params @ D=384" in capsys.readouterr().out


def test_run_exits_0_on_a_failed_gate_and_says_why_in_help(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--model", "random", "--data", str(tiny_store.path), "--out", str(out),
                 "--set", "eval.bootstrap=20"]) == 0
    assert "gate: hit@5" in (printed := capsys.readouterr().out) and "-> FAIL" in printed
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "exits 0 whatever the verdict" in " ".join(capsys.readouterr().out.split())
    assert main(["gate", str(out)]) == 1


def test_compare_of_a_baseline_run_marks_the_runs_own_row(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--model", "copy_last", "--data", str(tiny_store.path), "--out", str(out),
                 "--set", "eval.bootstrap=20"]) == 0
    capsys.readouterr()
    assert main(["compare", str(out)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("copy_last")]
    assert len(rows) == 1 and "(baseline; the run's model)" in rows[0]


def test_the_docs_stand_alone():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for doc in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        assert "../shared" not in doc.read_text(encoding="utf-8"), f"{doc} points outside the repository"
