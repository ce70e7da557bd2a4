"""The run report: one table of the model and every baseline, and the direction table.

A number without its pool size, chance rate and interval is the kind of
number lvmbench exists to retire, so every table prints them.
"""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from lvmbench.format import interval, num, pct, pts
from lvmbench.report.gate import gate_line


RUN_BASELINE = " (baseline; the run's model)"
"""How a run of a baseline (``run --model copy_last``) marks its own row, as ``compare`` does."""


def _is_baseline_run(results: dict[str, Any]) -> bool:
    return results.get("model", {}).get("kind") == "baseline"


def _label(name: str, kind: str | None, results: dict[str, Any]) -> str:
    """A predictor's name as the tables print it: a baseline that is also the run's model is marked once as such."""
    if name == results.get("model", {}).get("name") and _is_baseline_run(results):
        return name + RUN_BASELINE
    return name + {"baseline": " (baseline)", "reference": " (reference)"}.get(kind or "", "")


def table_rows(results: dict[str, Any], ks: list[int]) -> tuple[list[str], list[list[Any]]]:
    """One row per predictor: the model first, then baselines by Hit@5.

    A run of a baseline scores it twice (as the model and among the baselines,
    same ranks); it gets one row, the model's, so no predictor is listed twice.
    """
    headers = (["predictor"] + [f"Hit@{k} %" for k in ks]
               + ["Hit@5 95% CI", "MRR", "CA", "PAR", "mean cos", "margin", "lift Hit@5 (pts)"])
    best = results.get("best_baseline", {}).get("hit@5")
    entries = []
    model = results.get("model", {}).get("name")
    if results.get("metrics"):
        entries.append((_label(model, "model", results), results["metrics"]))
    for name, m in sorted(results.get("baselines", {}).items(), key=lambda kv: -kv[1]["hit@5"]):
        if not (name == model and _is_baseline_run(results) and results.get("metrics")):
            entries.append((_label(name, "baseline", results), m))
    rows = []
    for name, m in entries:
        lo, hi = m["ci"]["hit@5"]
        rows.append(
            [name]
            + [pct(m[f"hit@{k}"]) for k in ks]
            + [interval(lo, hi), num(m["mrr"]), num(m.get("ca")), num(m.get("par"), 2), num(m["mean_cos"]),
               num(m["margin"], signed=True), pts(None if best is None else m["hit@5"] - best)]
        )
    return headers, rows


def render_table(results: dict[str, Any], fmt: str = "simple") -> str:
    ks = results["recipe"]["eval"]["ks"]
    headers, rows = table_rows(results, ks)
    pool = results["pool"]
    chance = results["metrics"]["chance"] if results.get("metrics") else {}
    lines = [
        f"dataset {results['dataset']['name']} "
        f"({results['dataset']['n_vectors']} vectors, dim {results['dataset']['dim']}); "
        f"{results['metrics']['n_queries'] if results.get('metrics') else '?'} {pool['split']} queries",
        f"pool: {pool['size']} candidates ({pool['split']} split), "
        f"context {'excluded' if pool['exclude_context'] else 'included'}"
        + (f" (the {pool['exclude_len']} vectors before each target, eval.exclude_len)"
           if pool["exclude_context"]
           and (pool.get("exclude_len") or 0) > results["recipe"]["data"]["context_len"]
           else "")
        + "; "
        + "chance " + ", ".join(f"Hit@{k} {pct(chance.get(f'hit@{k}'))}%" for k in ks),
        "",
        tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True),
    ]
    if results.get("metrics_with_context"):
        mc = results["metrics_with_context"]
        lines += ["", f"{results['model']['name']} with context vectors left in the pool: "
                  + ", ".join(f"Hit@{k} {pct(mc[f'hit@{k}'])}%" for k in ks) + f", MRR {mc['mrr']:.3f}"]
    if results.get("copies"):
        lines += ["", _copies_line(results, ks)]
    if results.get("diagnostics"):
        lines += ["", render_direction(results, fmt), ""]
    c = results.get("consistency")
    if c:
        lines.append(
            f"consistency (in-loop torch Hit@K vs FAISS retrieval, test): {c['n_agree']}/{c['n_queries']} agree, "
            f"{c['n_near_ties']} near-ties, {c.get('n_mismatch', 0)} mismatches -> {'OK' if c['ok'] else 'FAILED'}"
        )
    g = results.get("gate")
    if g:
        lines.append(gate_line(g))
    return "\n".join(lines)


def _copies_line(results: dict[str, Any], ks: list[int]) -> str:
    """How many targets have a bit-identical copy among their candidates, and what counting it against them gives."""
    cp, strict, m = results["copies"], results["copies"]["metrics_copies_against"], results["metrics"]
    head = (f"copies: {cp['queries']} of {m['n_queries']} targets have a bit-identical copy among their candidates, "
            "counted as hits")
    keys = [f"hit@{k}" for k in ks] + ["mrr"]
    if all(strict[k] == m[k] for k in keys):
        return head + "; counting them against the target instead changes no Hit@K or MRR"
    return (head + "; counted against the target instead (as a tool that treats every tie as a loss does): "
            + ", ".join(f"Hit@{k} {pct(strict[f'hit@{k}'])}%" for k in ks) + f", MRR {strict['mrr']:.3f}")


def render_direction(results: dict[str, Any], fmt: str = "simple") -> str:
    """The direction table: margin and cos(pred, x_{t+k}) for k = -3..+3 (x_t = target), per predictor."""
    d = results["diagnostics"]
    rows_in = d["rows"]
    offsets = d["offsets"]
    order = [results.get("model", {}).get("name")]
    order += sorted(results.get("baselines", {}), key=lambda b: -results["baselines"][b]["hit@5"])
    order += [n for n in rows_in if rows_in[n].get("kind") == "reference"]
    order = [n for i, n in enumerate(order) if n in rows_in and n not in order[:i]]
    order += [n for n in rows_in if n not in order]
    headers = ["predictor", "margin"] + [("cos(t)" if k == 0 else f"cos(t{k:+d})") for k in offsets]
    table = []
    for name in order:
        r = rows_in[name]
        label = _label(name, r.get("kind"), results)
        by_k = {o["k"]: o["mean"] for o in r["offset_cos"]}
        table.append([label, num(r["margin"], signed=True)] + [num(by_k.get(k), signed=True) for k in offsets])
    counts = {o["k"]: o["n"] for o in next(iter(rows_in.values()))["offset_cos"]} if rows_in else {}
    return "\n".join([
        "direction: margin = cos(pred, next) - cos(pred, last context vector); cos(t+k) = mean cos(pred, vector k "
        "steps from the target in its chain), t = target (= mean cos), t-1 = last context vector",
        "queries per offset: " + ", ".join(f"{k:+d}: {counts.get(k, 0)}" for k in offsets),
        tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True),
    ])


