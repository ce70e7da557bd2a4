"""TREC export: trec_eval's measures (via pytrec_eval) reproduce lvmbench's Hit@K and MRR query by query.

The synthetic store's vectors are continuous random draws, so exact score ties
(which trec_eval breaks by docid and lvmbench never counts against the target)
do not occur; each test checks that precondition.
"""

import json

import numpy as np
import pytest

from lvmbench.cli import main
from lvmbench.report.trec import QRELS, RUN, exclusion_ranges

from conftest import FAST

pytrec_eval = pytest.importorskip("pytrec_eval")

MEASURES = {"success.1,5,10", "recip_rank"}


@pytest.fixture(scope="module")
def trained_run(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("trec") / "run"
    args = ["run", "--model", "gru", "--data", str(tiny_store.path), "--out", str(out)]
    for item in FAST + ["train.max_epochs=2", "data.context_len=5"]:
        args += ["--set", item]
    assert main(args) == 0
    return out


def _trec_eval(directory):
    qrels = pytrec_eval.parse_qrel(open(directory / QRELS))
    run = pytrec_eval.parse_run(open(directory / RUN))
    return pytrec_eval.RelevanceEvaluator(qrels, MEASURES).evaluate(run)


def _ranks(run_dir, key="rank"):
    with np.load(run_dir / "predictions.npz", allow_pickle=False) as z:
        return z[key]


def test_eval_trec_over_the_whole_pool_equals_hit_at_k_and_mrr(trained_run, tiny_store, tmp_path):
    ev, trec = tmp_path / "ev", tmp_path / "trec"
    assert main(["eval", str(trained_run), "--data", str(tiny_store.path), "--out", str(ev),
                 "--trec", str(trec), "--trec-depth", "0"]) == 0
    res = json.loads((ev / "results.json").read_text())
    assert res["metrics"]["queries_with_ties"] == 0  # continuous vectors: no exact ties
    rank = _ranks(ev)
    per_q = _trec_eval(trec)
    assert len(per_q) == len(rank) == res["metrics"]["n_queries"]
    for k in (1, 5, 10):
        assert np.mean([v[f"success_{k}"] for v in per_q.values()]) == pytest.approx(res["metrics"][f"hit@{k}"])
    assert np.mean([v["recip_rank"] for v in per_q.values()]) == pytest.approx(res["metrics"]["mrr"])
    # and query by query: qid q<i> is the i-th query of predictions.npz
    for i, r in enumerate(rank):
        assert per_q[f"q{i}"]["recip_rank"] == pytest.approx(1.0 / r)
    # the query's own context never appears among its candidates; the target always does
    lines = [ln.split() for ln in (trec / RUN).read_text().splitlines()]
    with np.load(ev / "predictions.npz", allow_pickle=False) as z:
        ctx, tgt = z["context_ids"], z["target_ids"]
    docs = {}
    for qid, q0, doc, _rnk, _score, tag in lines:
        assert q0 == "Q0" and tag == "gru"
        docs.setdefault(qid, []).append(int(doc))
    for i in range(len(tgt)):
        got = set(docs[f"q{i}"])
        assert tgt[i] in got and not got & set(ctx[i][ctx[i] >= 0].tolist())


def test_truncated_run_matches_success_but_recip_rank_is_truncated(trained_run, tmp_path):
    out = tmp_path / "t10"
    assert main(["trec", str(trained_run), "--out", str(out), "--depth", "10"]) == 0
    res = json.loads((trained_run / "results.json").read_text())
    rank = _ranks(trained_run)
    per_q = _trec_eval(out)
    for k in (1, 5, 10):
        assert np.mean([per_q[f"q{i}"][f"success_{k}"] for i in range(len(rank))]) == pytest.approx(res["metrics"][f"hit@{k}"])
    truncated = np.where(rank <= 10, 1.0 / rank, 0.0)
    assert np.mean([per_q[f"q{i}"]["recip_rank"] for i in range(len(rank))]) == pytest.approx(truncated.mean())
    assert (rank > 10).any(), "the test needs a query whose target is outside the top 10"
    assert truncated.mean() < res["metrics"]["mrr"]  # the untruncated MRR is larger: documented difference
    meta = json.loads((out / "trec.json").read_text())
    assert meta["depth"] == 10 and meta["targets_within_depth"] == int((rank <= 10).sum())
    assert all(len(v) <= 10 for v in _per_query_lines(out).values())


def _per_query_lines(directory):
    out = {}
    for ln in (directory / RUN).read_text().splitlines():
        out.setdefault(ln.split()[0], []).append(ln)
    return out


def test_include_context_export_matches_the_included_ranks(trained_run, tiny_store, tmp_path):
    ev, trec = tmp_path / "ev", tmp_path / "trec"
    assert main(["eval", str(trained_run), "--data", str(tiny_store.path), "--out", str(ev), "--include-context",
                 "--trec", str(trec), "--trec-depth", "0"]) == 0
    res = json.loads((ev / "results.json").read_text())
    per_q = _trec_eval(trec)
    rank = _ranks(ev, "rank_with_context")
    for i, r in enumerate(rank):
        assert per_q[f"q{i}"]["recip_rank"] == pytest.approx(1.0 / r)
    assert np.mean([v["success_5"] for v in per_q.values()]) == pytest.approx(res["metrics"]["hit@5"])


def test_export_refuses_a_different_dataset(trained_run, tmp_path, capsys):
    from lvmbench.data.synth import write_synth

    other = write_synth(tmp_path / "other", n_chains=12, dim=32, seed=1)
    assert main(["trec", str(trained_run), "--out", str(tmp_path / "x"), "--data", str(other.path)]) == 2
    assert "sha256 differs" in capsys.readouterr().err


def test_exclusion_ranges_from_padded_context_ids():
    lo, hi = exclusion_ranges(np.array([10, 3, 7]), np.array([[7, 8, 9], [0, 1, 2], [-1, -1, -1]]))
    assert lo.tolist() == [7, 0, 7] and hi.tolist() == [10, 3, 7]
