"""Results: the table (tabulate), the environment record, and the gate.

A number without its pool size, chance rate and interval is the kind of
number lvmbench exists to retire, so every table prints them.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

import lvmbench
from lvmbench.errors import UsageError
from lvmbench.io import read_json

SCHEMA_VERSION = 1


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def env_info(device: str = "cpu") -> dict[str, Any]:
    import faiss
    import torch

    return {
        "lvmbench": lvmbench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "faiss": getattr(faiss, "__version__", "unknown"),
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "device": device,
        "cuda": torch.version.cuda,
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "git": _git(),
    }


def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}"


def table_rows(results: dict[str, Any], ks: list[int]) -> tuple[list[str], list[list[Any]]]:
    """One row per predictor: the model first, then baselines by Hit@5."""
    headers = ["predictor"] + [f"Hit@{k} %" for k in ks] + ["Hit@5 95% CI", "MRR", "mean cos", "margin", "lift Hit@5 (pts)"]
    best = results.get("best_baseline", {}).get("hit@5")
    entries = []
    if results.get("metrics"):
        entries.append((results["model"]["name"], results["metrics"]))
    for name, m in sorted(results.get("baselines", {}).items(), key=lambda kv: -kv[1]["hit@5"]):
        entries.append((name + " (baseline)", m))
    rows = []
    for name, m in entries:
        lo, hi = m["ci"]["hit@5"]
        rows.append(
            [name]
            + [_pct(m[f"hit@{k}"]) for k in ks]
            + [f"[{_pct(lo)}, {_pct(hi)}]", f"{m['mrr']:.3f}", f"{m['mean_cos']:.3f}", f"{m['margin']:+.3f}",
               "—" if best is None else f"{100 * (m['hit@5'] - best):+.1f}"]
        )
    return headers, rows


def render_table(results: dict[str, Any], fmt: str = "simple") -> str:
    ks = results["recipe"]["eval"]["ks"]
    headers, rows = table_rows(results, ks)
    pool = results["pool"]
    chance = results["metrics"]["chance"] if results.get("metrics") else {}
    lines = [
        f"dataset {results['dataset']['name']} ({results['dataset']['n_vectors']} vectors, dim {results['dataset']['dim']}); "
        f"{results['metrics']['n_queries'] if results.get('metrics') else '?'} {pool['split']} queries",
        f"pool: {pool['size']} candidates ({pool['split']} split), context {'excluded' if pool['exclude_context'] else 'included'}"
        + (f" (the {pool['exclude_len']} vectors before each target, eval.exclude_len)"
           if pool["exclude_context"] and (pool.get("exclude_len") or 0) > results["recipe"]["data"]["context_len"] else "")
        + "; "
        + "chance " + ", ".join(f"Hit@{k} {_pct(chance.get(f'hit@{k}'))}%" for k in ks),
        "",
        tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True),
    ]
    if results.get("metrics_with_context"):
        mc = results["metrics_with_context"]
        lines += ["", f"{results['model']['name']} with context vectors left in the pool: "
                  + ", ".join(f"Hit@{k} {_pct(mc[f'hit@{k}'])}%" for k in ks) + f", MRR {mc['mrr']:.3f}"]
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


def _cos(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:+.3f}"


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
        label = name + {"baseline": " (baseline)", "reference": " (reference)"}.get(r.get("kind"), "")
        by_k = {o["k"]: o["mean"] for o in r["offset_cos"]}
        table.append([label, _cos(r["margin"])] + [_cos(by_k.get(k)) for k in offsets])
    counts = {o["k"]: o["n"] for o in next(iter(rows_in.values()))["offset_cos"]} if rows_in else {}
    return "\n".join([
        "direction: margin = cos(pred, next) - cos(pred, last context vector); cos(t+k) = mean cos(pred, vector k "
        "steps from the target in its chain), t = target (= mean cos), t-1 = last context vector",
        "queries per offset: " + ", ".join(f"{k:+d}: {counts.get(k, 0)}" for k in offsets),
        tabulate(table, headers=headers, tablefmt=fmt, disable_numparse=True),
    ])


def gate_verdict(results: dict[str, Any], metric: str, threshold: float, on: str, where: str = "results") -> dict[str, Any]:
    m = results.get("metrics")
    if not isinstance(m, dict):
        raise UsageError(f"{where}: no 'metrics' section")
    if metric not in m or not isinstance(m[metric], (int, float)):
        known = sorted(k for k, v in m.items() if isinstance(v, (int, float)))
        raise UsageError(f"{where}: metric '{metric}' not in results (available: {', '.join(known)})")
    if on == "value":
        value = float(m[metric])
    elif on == "ci_low":
        ci = m.get("ci", {}).get(metric)
        if not ci:
            raise UsageError(f"{where}: no confidence interval recorded for '{metric}' (use --on value)")
        value = float(ci[0])
    else:
        raise UsageError(f"--on must be 'value' or 'ci_low', got {on!r}")
    return {
        "metric": metric,
        "threshold": threshold,
        "on": on,
        "value": value,
        "passed": bool(value >= threshold),
        "margin": value - threshold,
    }


def gate_line(g: dict[str, Any]) -> str:
    what = g["metric"] if g["on"] == "value" else f"{g['metric']} (Wilson 95% lower bound)"
    verdict = "PASS" if g["passed"] else "FAIL"
    return f"gate: {what} = {100 * g['value']:.1f}% vs min {100 * g['threshold']:.1f}% -> {verdict} (margin {100 * g['margin']:+.1f} pts)"


def load_results(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise UsageError(f"{p}: results file not found")
    results = read_json(p, UsageError)
    if not isinstance(results, dict):
        raise UsageError(f"{p}: not an lvmbench results object")
    version = results.get("schema_version")
    if not isinstance(version, int):
        raise UsageError(f"{p}: no schema_version; not an lvmbench results file")
    if version > SCHEMA_VERSION:
        raise UsageError(f"{p}: schema_version {version} is newer than this lvmbench reads ({SCHEMA_VERSION}); upgrade lvmbench")
    return results
