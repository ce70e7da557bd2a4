"""A gate policy: several criteria, one verdict.

A policy holds any number of criteria - thresholds on metrics (each on the
value or an interval bound, a minimum for rates, a maximum for PAR), the
benchmark pin, the regression against a deployed run with its margin, and
the latency budget - and the gate prints one line per criterion and an
overall verdict; it passes only when every criterion passes.  The policy is
a TOML file (``lvmbench gate RUN --policy GATE.toml``), the ``[gate]`` table
of a recipe file, or the command's shorthand flags; never the gated run's
own record, which it could have edited.  A policy file looks like::

    benchmark = "default"          # a shipped name, or a BENCH.json path
    require_predictions = true
    max_p95_ms = 5.0               # the recorded batch-1 model latency, per query

    [[thresholds]]
    metric = "hit@5"
    min = 0.55
    on = "ci_low"                  # value | ci_low | ci_high

    [[thresholds]]
    metric = "par"
    max = 1.1

    lift_every_seed = true         # a `run --seeds` / `suite run --seeds` directory:
                                   # the Hit@5 lift over the best baseline on every seed

    [against]
    run = "runs/deployed"
    metric = "hit@5"
    margin = 0.01
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvmbench.errors import ConfigError, UsageError

KNOWN = {"metric", "min", "on", "thresholds", "benchmark", "against", "max_p95_ms", "require_predictions",
         "against_metric", "margin", "lift_every_seed"}


@dataclass
class Threshold:
    metric: str
    bound: float
    kind: str = "min"  # min | max
    on: str = "value"


@dataclass
class Against:
    run: str
    metric: str = "hit@5"
    margin: float = 0.01


@dataclass
class Policy:
    """Every criterion of one gate."""

    thresholds: list[Threshold] = field(default_factory=list)
    benchmark: str | None = None
    against: Against | None = None
    max_p95_ms: float | None = None
    require_predictions: bool = False
    lift_every_seed: bool = False

    def size(self) -> int:
        return (len(self.thresholds) + (self.benchmark is not None) + (self.against is not None)
                + (self.max_p95_ms is not None) + self.lift_every_seed)


def _threshold(t: Any, where: str) -> Threshold:
    if not isinstance(t, dict) or not isinstance(t.get("metric"), str):
        raise ConfigError(f"{where}: a threshold is a table with 'metric' and 'min' or 'max', got {t!r}")
    unknown = sorted(set(t) - {"metric", "min", "max", "on"})
    if unknown or ("min" in t) == ("max" in t):
        raise ConfigError(f"{where}: threshold on {t['metric']} takes metric, exactly one of min/max, and on "
                          f"(got {sorted(t)})")
    kind = "min" if "min" in t else "max"
    bound = t[kind]
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise ConfigError(f"{where}: threshold on {t['metric']}: {kind} must be a number, got {bound!r}")
    return Threshold(t["metric"], float(bound), kind, str(t.get("on", "value")))


def _against(table: dict[str, Any], where: str) -> Against | None:
    a = table.get("against")
    if a in (None, ""):
        return None
    if isinstance(a, str):  # the recipe's [gate]: against = "RUN", against_metric, margin
        return Against(a, str(table.get("against_metric", "hit@5")), float(table.get("margin", 0.01)))
    if not isinstance(a, dict) or not isinstance(a.get("run"), str):
        raise ConfigError(f"{where}: [against] needs run = \"DEPLOYED_RUN\" (and optionally metric, margin)")
    return Against(a["run"], str(a.get("metric", "hit@5")), float(a.get("margin", 0.01)))


def from_table(table: dict[str, Any], where: str) -> Policy:
    """A policy from a gate table (a policy file, or a recipe's ``[gate]``); one line naming what is wrong."""
    unknown = sorted(set(table) - KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown gate setting(s) {', '.join(unknown)} (known: {', '.join(sorted(KNOWN))})")
    thresholds = [_threshold(t, where) for t in table.get("thresholds") or []]
    if "metric" in table or "min" in table:
        thresholds.insert(0, Threshold(str(table.get("metric", "hit@5")), float(table.get("min", 0.55)), "min",
                                       str(table.get("on", "value"))))
    p95 = table.get("max_p95_ms")
    every = table.get("lift_every_seed", False)
    if not isinstance(every, bool):
        raise ConfigError(f"{where}: lift_every_seed must be true or false, got {every!r}")
    return Policy(thresholds, table.get("benchmark") or None, _against(table, where),
                  float(p95) if p95 else None, bool(table.get("require_predictions", False)), every)


def load(path: str | Path) -> Policy:
    """A policy TOML file, or a recipe TOML whose ``[gate]`` table is the policy."""
    p = Path(path)
    try:
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{p}: gate policy file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{p}: not valid TOML ({exc})") from None
    if isinstance(table.get("gate"), dict):
        table = table["gate"]
    return from_table(table, str(p))


def from_recipe_gate(gate: Any) -> Policy:
    """The policy a run's recipe names (``[gate]``): what ``run`` holds its own result against."""
    table = {"metric": gate.metric, "min": gate.min, "on": gate.on, "thresholds": list(gate.thresholds),
             "benchmark": gate.benchmark or None, "against": gate.against or None,
             "against_metric": gate.against_metric, "margin": gate.margin,
             "max_p95_ms": gate.max_p95_ms or None}
    return from_table({k: v for k, v in table.items() if v is not None}, "recipe [gate]")
