"""A gate policy held against a run: one line per criterion, one verdict, in text, JSON, JUnit or markdown.

Every criterion reads only what the gated run directory (and the deployed
run's, for ``against``) holds, each number re-checked as
:mod:`lvmbench.report.gate` does; the run must be finished and consistent
before any criterion is looked at.  Exit codes are the command's: 0 when
every criterion passes, 1 when one fails (a benchmark whose pins differ is a
failed criterion), 2 for input the gate cannot judge (runs on different
queries for ``against``, no latency record for a latency budget), 3 for an
integrity failure.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lvmbench import workdir
from lvmbench.errors import UsageError
from lvmbench.format import num, pct, pvalue
from lvmbench.report import benchmark, regression
from lvmbench.report.gate import check_status, gate_line, gate_verdict, verify
from lvmbench.report.policy import Against, Policy
from lvmbench.result import GateCheck, Result

FORMATS = ("text", "json", "junit", "markdown")


@dataclass
class Criterion:
    kind: str  # threshold | benchmark | against | latency
    name: str
    passed: bool
    line: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    run: str
    criteria: list[Criterion]
    measured_on: str
    pinned: str | None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria)


def _target_ids(run_dir: Path) -> np.ndarray | None:
    npz = run_dir / "predictions.npz"
    if not npz.is_file():
        return None
    with np.load(npz, allow_pickle=False) as z:
        return np.asarray(z["target_ids"]) if "target_ids" in z.files else None


def _threshold(t: Any, result: Result, run: Path, require: bool) -> Criterion:
    g = gate_verdict(result, t.metric, t.bound, t.on, where=str(run), kind=t.kind)
    g.check = GateCheck.from_json(verify(result, run, t.metric, t.on, require))
    sign = ">=" if t.kind == "min" else "<="
    shown = f"{pct(t.bound)}%" if t.kind == "min" else num(t.bound)
    return Criterion("threshold", f"{t.metric} {sign} {shown} ({t.on})", bool(g.passed), gate_line(g), g.to_json())


def _benchmark(spec: str, pins: dict[str, Any]) -> Criterion:
    bench = benchmark.load(spec)
    diffs = benchmark.differences(pins, bench)
    name = bench["name"]
    line = (f"gate: benchmark '{name}' -> PASS (measured on it: dataset, split, queries, pool, context, exclusion "
            "and K as pinned)" if not diffs else f"gate: benchmark '{name}' -> FAIL: " + "; ".join(diffs))
    return Criterion("benchmark", f"benchmark {name}", not diffs, line, {"benchmark": name, "differences": diffs})


def _pair_line(label: str, r: dict[str, Any], margin: float) -> str:
    hit = r["metric"].startswith("hit@") or r["metric"] == "ca"
    lift = (f"{100 * r['lift']:+.1f} pts [95% CI {100 * r['lift_ci'][0]:+.1f}, {100 * r['lift_ci'][1]:+.1f}]"
            if hit else f"{r['lift']:+.4f} [95% CI {r['lift_ci'][0]:+.4f}, {r['lift_ci'][1]:+.4f}]")
    floor = f"-{100 * margin:.1f} pts" if hit else f"-{margin:g}"
    extra = (f"; McNemar p {pvalue(r['mcnemar_p'])} (Hit@{r['mcnemar_k']}), W/T/L "
             f"{r['wins']}/{r['ties']}/{r['losses']}") if "wins" in r else ""
    holm = f", Holm p {pvalue(r['holm_p'])}" if "holm_p" in r else ""
    return (f"gate: {label}: {r['metric']} lift {lift}, lower bound vs {floor} -> "
            f"{'PASS' if r['passed'] else 'FAIL'}{holm}{extra}")


def _against(a: Against, run: Path) -> list[Criterion]:
    r = regression.against(run, a.run, a.metric, a.margin)
    if "tasks" not in r:
        return [Criterion("against", f"against {a.run}", r["passed"], _pair_line(f"against {a.run}", r, a.margin),
                          r)]
    out = [Criterion("against", f"against {a.run} [{task}]", t["passed"],
                     _pair_line(f"against {a.run} [{task}]", t, a.margin), t) for task, t in r["tasks"].items()]
    macro = {**r["macro"], "metric": a.metric}
    out.append(Criterion("against", f"against {a.run} [macro average]", macro["passed"],
                         _pair_line(f"against {a.run} [macro average of {len(r['tasks'])} tasks]", macro, a.margin),
                         macro))
    return out


def _latency(budget: float, result: Result, run: Path) -> Criterion:
    rec = result.latency.model_at(1) if result.latency is not None else None
    if rec is None:
        raise UsageError(f"{run}: records no batch-1 model latency, so a latency budget cannot be held against it "
                         "(a predictions file has none; measure a checkpoint with `lvmbench latency RUN`)")
    m = result.latency.machine
    where = m.where() if m is not None else "?, ? threads, ?"
    passed = rec.p95_ms <= budget
    line = (f"gate: latency: batch-1 p95 {rec.p95_ms:.3f} ms per query vs max {budget:.3f} ms -> "
            f"{'PASS' if passed else 'FAIL'} ({rec.calls} timed calls on {where})")
    return Criterion("latency", f"latency p95 <= {budget:g} ms", passed, line, {"p95_ms": rec.p95_ms, **rec.to_json()})


def _every_seed(d: Path) -> Criterion:
    from lvmbench.report import seeds_gate

    r = seeds_gate.every_seed(d)
    return Criterion("seeds", "lift on every seed", r["passed"], seeds_gate.line(r), r)


def _evaluate_aggregate(policy: Policy, d: Path) -> Verdict:
    """A directory of several runs (suite, folds, seeds): --against for a suite, --lift-every-seed for any."""
    if policy.thresholds or policy.benchmark or policy.max_p95_ms is not None:
        raise UsageError(f"{d}: a directory of several runs is gated with --lift-every-seed (or, for a suite, "
                         "--against DEPLOYED_SUITE); thresholds, benchmark pins and latency are gated on one run "
                         "directory (one of the run directories inside it)")
    if policy.against is not None and not (d / "suite.json").is_file():
        raise UsageError(f"{d}: --against compares one run with one run, or a suite with a suite")
    if policy.against is None and not policy.lift_every_seed:
        raise UsageError(f"{d}: a directory of several runs is gated with --lift-every-seed (or, for a suite, "
                         "--against DEPLOYED_SUITE)")
    workdir.check_finished(d, "gate")
    criteria = (_against(policy.against, d) if policy.against is not None else []) + (
        [_every_seed(d)] if policy.lift_every_seed else [])
    return Verdict(str(d), criteria, "every task and seed of the directory, each run re-read", None)


def evaluate(policy: Policy, run: str | Path) -> Verdict:
    """Every criterion of ``policy`` on the run (or suite, folds or seeds) directory ``run``."""
    p = Path(run)
    d = p if p.is_dir() else p.parent
    if any((d / name).is_file() for name in ("suite.json", "cv.json", "multi.json")):
        return _evaluate_aggregate(policy, d)
    if policy.lift_every_seed:
        raise UsageError(f"{d}: --lift-every-seed gates a directory of `run --seeds`, `run --folds` or `suite run`; "
                         "this is a single run")
    workdir.check_finished(d, "gate")
    result = Result.from_json(p)
    criteria = [_threshold(t, result, p, policy.require_predictions) for t in policy.thresholds]
    check_status(result, str(p), "gate")
    pins = benchmark.pins_of(result, _target_ids(d))
    if policy.benchmark:
        criteria.append(_benchmark(policy.benchmark, pins))
    if policy.against is not None:
        criteria += _against(policy.against, d)
    if policy.max_p95_ms is not None:
        criteria.append(_latency(policy.max_p95_ms, result, d))
    context = benchmark.describe(pins, result.metrics.chance_at(5) if result.metrics is not None else None)
    return Verdict(str(p), criteria, context, policy.benchmark)


def _context(v: Verdict) -> str:
    return v.measured_on + (f"; benchmark '{v.pinned}'" if v.pinned else "; not pinned to a benchmark")


def render(v: Verdict, fmt: str = "text") -> str:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return {"text": _text, "json": _json, "junit": _junit, "markdown": _markdown}[fmt](v)


def _text(v: Verdict) -> str:
    if len(v.criteria) == 1:
        return f"{v.criteria[0].line}\n  on {_context(v)}"
    passed = sum(c.passed for c in v.criteria)
    return "\n".join([c.line for c in v.criteria] + [
        f"gate: {'PASS' if v.passed else 'FAIL'} ({passed} of {len(v.criteria)} criteria passed)",
        f"  on {_context(v)}"])


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(x) for k, x in value.items() if not k.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(x) for x in value]
    return value.item() if isinstance(value, np.generic) else value


def _json(v: Verdict) -> str:
    return json.dumps({"run": v.run, "passed": v.passed, "measured_on": v.measured_on, "benchmark": v.pinned,
                       "criteria": [_plain(asdict(c)) for c in v.criteria]}, indent=2)


def _junit(v: Verdict) -> str:
    """JUnit XML: one testsuite, one testcase per criterion, a <failure> for each that failed."""
    failed = sum(not c.passed for c in v.criteria)
    suite = ET.Element("testsuite", name="lvmbench gate", tests=str(len(v.criteria)), failures=str(failed),
                       errors="0", skipped="0")
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="run", value=v.run)
    for c in v.criteria:
        case = ET.SubElement(suite, "testcase", classname=f"lvmbench.gate.{c.kind}", name=c.name)
        if not c.passed:
            ET.SubElement(case, "failure", message=c.line, type=c.kind).text = c.line
        ET.SubElement(case, "system-out").text = c.line
    ET.SubElement(suite, "system-out").text = _context(v)
    root = ET.Element("testsuites", tests=str(len(v.criteria)), failures=str(failed))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _markdown(v: Verdict) -> str:
    rows = [f"| {c.name} | {'PASS' if c.passed else '**FAIL**'} | {c.line.removeprefix('gate: ')} |"
            for c in v.criteria]
    return "\n".join([f"### lvmbench gate: {'PASS' if v.passed else 'FAIL'}", "",
                      f"`{v.run}` on {_context(v)}", "", "| criterion | verdict | detail |", "|---|---|---|",
                      *rows])
