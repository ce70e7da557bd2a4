"""One gate criterion on a metric of results.json, checked before it is believed.

A gate is a trust boundary, so a number is not taken on the file's word:

* only metrics the table marks gateable can be gated: rates where higher is
  better (Hit@K, nDCG@K, MRR, CA) against a minimum in [0, 1] (55 % is
  ``--min 0.55``), and PAR against a maximum; a count (``n_queries``) or a
  median rank would pass for the wrong reason;
* the recorded value must agree with its own record: a Wilson interval is
  recomputed from the value and ``n_queries`` and must match;
* when ``predictions.npz`` sits beside ``results.json`` (as every run and
  eval writes it), the gated metric (and, on an interval bound, that bound)
  is recomputed from the per-query ranks (CA also from the per-query
  candidate counts, PAR from the per-query cosines) there and must equal the
  recorded one; the consistency record and the predictions themselves are
  re-checked too;
* only a finished, consistent run is believed (:func:`check_status`).

A mismatch is an integrity failure (exit 3).  What the gate cannot check: a
results.json moved without its predictions.npz (it says so, and
``require_predictions`` turns that into a refusal), or a predictions.npz
edited consistently with its results.json.  Several criteria at once, the
benchmark pin, the regression against a deployed run and the latency budget
are :mod:`lvmbench.report.policy`.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench.errors import IntegrityError, UsageError, first_line
from lvmbench.evaluate import metrics
from lvmbench.format import num, pct
from lvmbench.result import EvalSettings, GateRecord, Result, results_path

TOLERANCE = 1e-9
"""Recomputed and recorded values are the same float computation; this only absorbs JSON round-trips."""
BOUNDS = ("value", "ci_low", "ci_high")


def gateable(metric: str, flag: str = "--metric") -> metrics.Metric:
    """The table entry of a metric a deploy gate may use, or a one-line refusal."""
    try:
        m, _ = metrics.parse_key(metric)
    except KeyError:
        m = None
    ok = [f"{x.name}@K" if x.at_k else x.name for x in metrics.METRICS.values() if x.gate == "min"]
    ok += [f"{x.name} (as a maximum)" for x in metrics.METRICS.values() if x.gate == "max"]
    if m is None or m.gate is None:
        why = "is lower-is-better" if m is not None and not m.higher_is_better else "is not a rate metric"
        raise UsageError(f"{flag} {metric}: {why}; a deploy gate takes a rate where higher is better, or PAR as a "
                         f"maximum: {', '.join(ok)}")
    return m


def check_threshold(threshold: float, flag: str = "--min", metric: str = "hit@5") -> None:
    """A minimum on a rate is a fraction in [0, 1]; a maximum on PAR is a positive ratio."""
    m = gateable(metric)
    if m.gate == "max":
        if threshold > 0:
            return
        raise UsageError(f"{flag} {threshold:g}: a maximum on {metric} is a positive ratio (1.0 = as close to the "
                         "context as the truth is)")
    if 0.0 <= threshold <= 1.0:
        return
    hint = f"; rates are fractions: did you mean {flag} {threshold / 100:g}?" if 1.0 < threshold <= 100.0 else ""
    raise UsageError(f"{flag} {threshold:g}: a gate threshold is a fraction in [0, 1]{hint}")


def check_recipe_gate(gate: Any) -> None:
    """The recipe's gate (a policy, :mod:`lvmbench.report.policy`), refused before any training rather than after."""
    from lvmbench.errors import ConfigError
    from lvmbench.report import benchmark, policy

    m = gateable(gate.metric, "gate.metric")
    if m.gate == "max":
        raise UsageError(f"gate.metric {gate.metric}: is held against a maximum; name it in gate.thresholds as "
                         f"{{metric = \"{gate.metric}\", max = ...}}")
    check_threshold(gate.min, "gate.min", gate.metric)
    try:
        p = policy.from_recipe_gate(gate)
    except ConfigError as exc:
        raise UsageError(f"recipe [gate]: {exc}") from None
    for t in p.thresholds[1:]:
        table = gateable(t.metric, "gate.thresholds metric")
        if t.kind != table.gate:
            raise UsageError(f"gate.thresholds: {t.metric} is held against a {table.gate}imum, not a {t.kind}imum")
        check_threshold(t.bound, f"gate.thresholds {t.kind}", t.metric)
    if p.benchmark:
        benchmark.load(p.benchmark)


def _bound(result: Result, metric: str, on: str, where: str) -> float:
    m = result.metrics
    if on == "value":
        return float(m.value(metric))
    ci = m.interval(metric)
    if not ci:
        raise UsageError(f"{where}: no confidence interval recorded for '{metric}' (use --on value)")
    return float(ci[0] if on == "ci_low" else ci[1])


def gate_verdict(result: Result, metric: str, threshold: float, on: str,
                 where: str = "results", kind: str = "min") -> GateRecord:
    """``metric`` (its value or an interval bound) held against a minimum (``kind='min'``) or a maximum."""
    m = result.metrics
    if m is None:
        raise UsageError(f"{where}: no 'metrics' section")
    table = gateable(metric)
    if kind != table.gate:
        want = "--min" if table.gate == "min" else "a max"
        raise UsageError(f"{metric}: is held against {'a minimum' if table.gate == 'min' else 'a maximum'} "
                         f"({want}), not a {kind}imum")
    check_threshold(threshold, "--min" if kind == "min" else "max", metric)
    if on not in BOUNDS:
        raise UsageError(f"--on must be one of {', '.join(BOUNDS)}, got {on!r}")
    lenient = (kind == "min" and on == "ci_high") or (kind == "max" and on == "ci_low")
    if lenient:
        raise UsageError(f"--on {on}: the lenient end of the interval; a {kind}imum is held against "
                         f"{'ci_low' if kind == 'min' else 'ci_high'} or the value")
    if m.value(metric) is None:
        raise UsageError(f"{where}: metric '{metric}' not in results (available: {', '.join(sorted(m.numbers()))})")
    value = _bound(result, metric, on, where)
    passed = value >= threshold if kind == "min" else value <= threshold
    return GateRecord(metric=metric, threshold=threshold, kind=kind, on=on, value=value, passed=bool(passed),
                      margin=value - threshold)


def _differs(a: float, b: float) -> bool:
    return not abs(float(a) - float(b)) <= TOLERANCE


def check_record(result: Result, metric: str, where: str) -> None:
    """The recorded value, n_queries and Wilson interval of a Hit@K must describe one another."""
    m = result.metrics
    table, _ = metrics.parse_key(metric)
    ci, n = m.interval(metric), m.n_queries
    if table.interval != "wilson" or not ci or not isinstance(n, int) or n <= 0:
        return
    value = m.value(metric)
    hits = round(value * n)
    lo, hi = metrics.wilson_interval(hits, n)
    if _differs(hits / n, value) or _differs(lo, ci[0]) or _differs(hi, ci[1]):
        raise IntegrityError(
            f"{where}: metrics.{metric} = {m.recorded(metric)} does not fit its own record ({n} queries, 95 % "
            f"interval [{pct(ci[0])}, {pct(ci[1])}] %); results.json was edited")


def _arrays(npz: Path, result: Result, metric: str) -> dict[str, np.ndarray]:
    """What recomputes ``metric``: the headline ranks (and candidates, or PAR's cosines) of predictions.npz.

    The file is checked as it is read (:func:`check_predictions`); any failure
    to read it - a truncated archive, a corrupt compressed member, a pickled
    array - is an integrity failure (exit 3), never a failed gate.
    """
    key = "rank" if result.exclude_context else "rank_with_context"
    table, _ = metrics.parse_key(metric)
    need = ["par_pred", "par_true"] if table.vectors else [key] + (["candidates"] if table.needs_candidates else [])
    try:
        with np.load(npz, allow_pickle=False) as z:
            missing = [k for k in need + [key] if k not in z.files]
            if missing:
                raise IntegrityError(f"{npz}: no '{missing[0]}' array; cannot verify the gated {metric}")
            check_predictions(z, npz, result)
            return {k: np.asarray(z[k]) for k in set(need + [key])} | {"rank": np.asarray(z[key])}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise IntegrityError(f"{npz}: not a readable predictions file ({first_line(exc)}); cannot verify the "
                             "gate") from None


def _recomputed(metric: str, a: dict[str, np.ndarray], bootstrap: int, seed: int) -> tuple[float, Any]:
    """(value, 95 % interval) of ``metric`` from the per-query arrays, exactly as the run computed them."""
    table, _ = metrics.parse_key(metric)
    if table.vectors:
        par = metrics.summarize_par(a["par_pred"], a["par_true"], bootstrap, seed)
        return par["par"], par["ci"]["par"]
    return (metrics.value(metric, a["rank"], a.get("candidates")),
            metrics.interval(metric, a["rank"], bootstrap, seed, a.get("candidates")))


def verify(result: Result, path: str | Path, metric: str, on: str,
           require_predictions: bool = False) -> dict[str, Any]:
    """Recompute the gated number from predictions.npz beside ``path``; raise IntegrityError on a mismatch."""
    where = results_path(path)
    check_record(result, metric, str(where))
    npz = where.parent / "predictions.npz"
    if not npz.is_file():
        if require_predictions:
            raise UsageError(f"{npz}: not found; --require-predictions needs the run's per-query ranks beside "
                             "results.json")
        return {"verified": False, "predictions": None}
    arrays = _arrays(npz, result, metric)
    recorded = result.metrics
    n = len(arrays["rank"])
    if recorded.n_queries is not None and n != recorded.n_queries:
        raise IntegrityError(f"{where}: records {recorded.n_queries} queries but {npz} ranks {n}")
    ev = _eval(result)
    bootstrap = ev.bootstrap if ev.bootstrap is not None else 1000
    value, bounds = _recomputed(metric, arrays, int(bootstrap), int(result.seed if result.seed is not None else 0))
    if _differs(value, recorded.value(metric)):
        raise IntegrityError(f"{where}: metrics.{metric} = {recorded.recorded(metric)} but {npz} gives {value}; "
                             "results.json was edited or belongs to another run")
    if on != "value" and bounds is not None:
        j = 0 if on == "ci_low" else 1
        if _differs(bounds[j], recorded.interval(metric)[j]):
            raise IntegrityError(f"{where}: the recorded 95 % interval of {metric} differs from the one {npz} "
                                 "gives; results.json was edited")
    return {"verified": True, "predictions": str(npz), "n_queries": int(n)}


def _eval(result: Result) -> EvalSettings:
    """The recipe's eval settings as recorded (empty when the file records none)."""
    recipe = result.recipe
    return recipe.eval if recipe is not None and recipe.eval is not None else EvalSettings()


def check_status(result: Result, where: str, reader: str = "gate") -> None:
    """Only a finished, consistent run is believed: refuse any other with one line (exit 3).

    A results.json written before runs recorded a status is judged by its
    consistency record; ``verify`` then re-checks that record from the ranks.
    """
    status, detail = result.effective_status()
    if status != "complete":
        detail = detail or "its consistency check failed"
        raise IntegrityError(f"{where}: the run is {status} ({detail}); {reader} only believes a finished, "
                             "consistent run")


def check_predictions(z: Any, npz: Path, result: Result) -> None:
    """What predictions.npz holds must be what a consistent run writes: ranks that agree, unit-vector queries."""
    files = set(z.files)
    if {"torch_rank", "torch_gap", "retrieved"} <= files:
        from lvmbench.evaluate.consistency import check_consistency

        ev = _eval(result)
        c = check_consistency(z["torch_rank"], z["torch_gap"], z["retrieved"],
                              list(ev.ks if ev.ks is not None else [1, 5, 10]),
                              float(ev.tie_tol if ev.tie_tol is not None else 1e-5))
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


def gate_line(g: GateRecord) -> str:
    """The verdict of one threshold: 'gate: hit@5 = 57.7% vs min 55.0% -> PASS (margin +2.7 pts)'."""
    table, _ = metrics.parse_key(str(g.metric))
    kind = g.kind or "min"
    bound = {"ci_low": "lower", "ci_high": "upper"}.get(str(g.on))
    what = g.metric if bound is None else (
        f"{g.metric} ({'Wilson' if table.interval == 'wilson' else 'bootstrap'} 95% {bound} bound)")
    verdict = "PASS" if g.passed else "FAIL"
    if table.gate == "min":
        line = (f"gate: {what} = {pct(g.value)}% vs {kind} {pct(g.threshold)}% -> {verdict} "
                f"(margin {100 * g.margin:+.1f} pts)")
    else:
        line = (f"gate: {what} = {num(g.value)} vs {kind} {num(g.threshold)} -> {verdict} "
                f"(margin {num(g.margin, signed=True)})")
    check = g.check
    if check is not None:
        line += ("; recomputed from predictions.npz" if check.verified
                 else "; NOT verified: no predictions.npz beside results.json")
    return line
