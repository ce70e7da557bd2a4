"""The deploy gate: a rate metric of results.json against a threshold, checked before it is believed.

A gate is a trust boundary, so a number is not taken on the file's word:

* only rates where higher is better can be gated (Hit@K, nDCG@K, MRR): a
  count (``n_queries``) or a lower-is-better value (``median_rank``) would
  pass a ``>=`` test for the wrong reason, and a threshold outside [0, 1] is
  refused (rates are fractions: 55 % is ``--min 0.55``);
* the recorded value must agree with its own record: a Wilson interval is
  recomputed from the value and ``n_queries`` and must match;
* when ``predictions.npz`` sits beside ``results.json`` (as every run and
  eval writes it), the gated metric (and, with ``--on ci_low``, its interval)
  is recomputed from the per-query ranks there and must equal the recorded
  one.

A mismatch is an integrity failure (exit 3).  What the gate cannot check: a
results.json moved without its predictions.npz (it says so, and
``require_predictions`` turns that into a refusal), or a predictions.npz
edited consistently with its results.json.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench.errors import IntegrityError, UsageError, first_line
from lvmbench.evaluate import metrics
from lvmbench.format import pct

TOLERANCE = 1e-9
"""Recomputed and recorded values are the same float computation; this only absorbs JSON round-trips."""


def gateable(metric: str, flag: str = "--metric") -> metrics.Metric:
    """The table entry of a metric a deploy gate may use, or a one-line refusal."""
    try:
        m, _ = metrics.parse_key(metric)
    except KeyError:
        m = None
    ok = [f"{x.name}@K" if x.at_k else x.name for x in metrics.METRICS.values()
          if x.rate and x.higher_is_better and not x.needs_candidates]
    if m is None or not m.rate or not m.higher_is_better or m.needs_candidates:
        why = ("is lower-is-better" if m is not None and not m.higher_is_better else
               "needs each query's candidate count, which predictions.npz does not hold"
               if m is not None and m.needs_candidates else "is not a rate metric")
        raise UsageError(f"{flag} {metric}: {why}; a deploy gate takes a rate where higher is better: "
                         f"{', '.join(ok)}")
    return m


def check_threshold(threshold: float, flag: str = "--min") -> None:
    if 0.0 <= threshold <= 1.0:
        return
    hint = f"; rates are fractions: did you mean {flag} {threshold / 100:g}?" if 1.0 < threshold <= 100.0 else ""
    raise UsageError(f"{flag} {threshold:g}: a gate threshold is a fraction in [0, 1]{hint}")


def check_recipe_gate(metric: str, threshold: float) -> None:
    """The recipe's gate settings, refused before any training rather than after it."""
    gateable(metric, "gate.metric")
    check_threshold(threshold, "gate.min")


def gate_verdict(results: dict[str, Any], metric: str, threshold: float, on: str,
                 where: str = "results") -> dict[str, Any]:
    m = results.get("metrics")
    if not isinstance(m, dict):
        raise UsageError(f"{where}: no 'metrics' section")
    gateable(metric)
    check_threshold(threshold)
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


def _differs(a: float, b: float) -> bool:
    return not abs(float(a) - float(b)) <= TOLERANCE


def check_record(results: dict[str, Any], metric: str, where: str) -> None:
    """The recorded value, n_queries and Wilson interval of a Hit@K must describe one another."""
    m = results["metrics"]
    table, _ = metrics.parse_key(metric)
    ci, n = (m.get("ci") or {}).get(metric), m.get("n_queries")
    if table.interval != "wilson" or not ci or not isinstance(n, int) or n <= 0:
        return
    hits = round(float(m[metric]) * n)
    lo, hi = metrics.wilson_interval(hits, n)
    if _differs(hits / n, m[metric]) or _differs(lo, ci[0]) or _differs(hi, ci[1]):
        raise IntegrityError(
            f"{where}: metrics.{metric} = {m[metric]} does not fit its own record ({n} queries, 95 % interval "
            f"[{pct(ci[0])}, {pct(ci[1])}] %); results.json was edited")


def _ranks(npz: Path, results: dict[str, Any]) -> np.ndarray:
    """The headline ranks of a run's predictions.npz (context excluded or not, as the run scored), checked.

    Any failure to read it - a truncated archive, a corrupt compressed member,
    a pickled array - is an integrity failure (exit 3), never a failed gate.
    """
    key = "rank" if (results.get("pool") or {}).get("exclude_context", True) else "rank_with_context"
    try:
        with np.load(npz, allow_pickle=False) as z:
            if key not in z.files:
                raise IntegrityError(f"{npz}: no '{key}' array; cannot verify the gated metric")
            check_predictions(z, npz, results)
            return np.asarray(z[key])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise IntegrityError(f"{npz}: not a readable predictions file ({first_line(exc)}); cannot verify the "
                             "gate") from None


def verify(results: dict[str, Any], path: str | Path, metric: str, on: str,
           require_predictions: bool = False) -> dict[str, Any]:
    """Recompute the gated number from predictions.npz beside ``path``; raise IntegrityError on a mismatch."""
    p = Path(path)
    where = p / "results.json" if p.is_dir() else p
    check_record(results, metric, str(where))
    npz = where.parent / "predictions.npz"
    if not npz.is_file():
        if require_predictions:
            raise UsageError(f"{npz}: not found; --require-predictions needs the run's per-query ranks beside "
                             "results.json")
        return {"verified": False, "predictions": None}
    ranks = _ranks(npz, results)
    recorded = results["metrics"]
    if len(ranks) != recorded.get("n_queries", len(ranks)):
        raise IntegrityError(f"{where}: records {recorded.get('n_queries')} queries but {npz} ranks {len(ranks)}")
    value = metrics.value(metric, ranks)
    if _differs(value, recorded[metric]):
        raise IntegrityError(f"{where}: metrics.{metric} = {recorded[metric]} but the ranks in {npz} give "
                             f"{value}; results.json was edited or belongs to another run")
    if on == "ci_low":
        ev = (results.get("recipe") or {}).get("eval", {})
        bounds = metrics.interval(metric, ranks, int(ev.get("bootstrap", 1000)), int(results.get("seed", 0)))
        if bounds is not None and _differs(bounds[0], recorded["ci"][metric][0]):
            raise IntegrityError(f"{where}: the recorded 95 % interval of {metric} differs from the one the ranks "
                                 f"in {npz} give; results.json was edited")
    return {"verified": True, "predictions": str(npz), "n_queries": int(len(ranks))}


def check_status(results: dict[str, Any], where: str, reader: str = "gate") -> None:
    """Only a finished, consistent run is believed: refuse any other with one line (exit 3).

    A results.json written before runs recorded a status is judged by its
    consistency record; ``verify`` then re-checks that record from the ranks.
    """
    status = results.get("status")
    if status is None:
        ok = (results.get("consistency") or {}).get("ok")
        val = (results.get("consistency") or {}).get("val") or {}
        status = "complete" if ok and val.get("ok", True) else "inconsistent"
    if status != "complete":
        detail = results.get("status_detail") or "its consistency check failed"
        raise IntegrityError(f"{where}: the run is {status} ({detail}); {reader} only believes a finished, "
                             "consistent run")


def check_predictions(z: Any, npz: Path, results: dict[str, Any]) -> None:
    """What predictions.npz holds must be what a consistent run writes: ranks that agree, unit-vector queries."""
    files = set(z.files)
    if {"torch_rank", "torch_gap", "retrieved"} <= files:
        from lvmbench.evaluate.scoring import check_consistency

        ev = (results.get("recipe") or {}).get("eval", {})
        c = check_consistency(z["torch_rank"], z["torch_gap"], z["retrieved"], list(ev.get("ks", [1, 5, 10])),
                              float(ev.get("tie_tol", 1e-5)))
        if not c["ok"]:
            raise IntegrityError(f"{npz}: the training loop's ranks and FAISS retrieval disagree on "
                                 f"{c['n_mismatch']} queries; the gate only believes a consistent run")
    if "queries" in files:
        q = np.asarray(z["queries"], dtype=np.float64)
        with np.errstate(all="ignore"):
            norms = np.sqrt((q * q).sum(axis=1)) if q.ndim == 2 else np.array([np.nan])
        bad = np.flatnonzero(~(np.abs(norms - 1.0) <= 1e-3))
        if len(bad):
            raise IntegrityError(f"{npz}: prediction {int(bad[0])} is not a finite unit vector ({len(bad)} such); "
                                 "such predictions tie every candidate and cannot be gated")


def gate_line(g: dict[str, Any]) -> str:
    kind = "Wilson" if g["metric"].startswith("hit@") else "bootstrap"
    what = g["metric"] if g["on"] == "value" else f"{g['metric']} ({kind} 95% lower bound)"
    verdict = "PASS" if g["passed"] else "FAIL"
    line = (f"gate: {what} = {100 * g['value']:.1f}% vs min {100 * g['threshold']:.1f}% -> {verdict} "
            f"(margin {100 * g['margin']:+.1f} pts)")
    check = g.get("check")
    if check is not None:
        line += ("; recomputed from predictions.npz" if check["verified"]
                 else "; NOT verified: no predictions.npz beside results.json")
    return line
