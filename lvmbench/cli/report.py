"""``lvmbench report PATH... --html OUT.html``: any result directory as one self-contained page."""

from __future__ import annotations

import argparse
from pathlib import Path

from lvmbench.cli.common import EPILOG, log
from lvmbench.errors import UsageError

DESCRIPTION = (
    "Write the results of PATH as one self-contained HTML page (inline CSS, inline SVG charts and a small inline "
    "script; no network, nothing fetched) that opens from disk and can be published as it is. PATH is a run "
    "directory (the run table as a sortable leaderboard, training curves with the best epoch marked, the "
    "distribution of the target's rank, the direction diagnostics), several run directories or the directory "
    "of `run --model a,b,c` (the compare leaderboard: Hit@K and MRR intervals, lift over the best baseline with "
    "its paired interval, McNemar p Holm-corrected, W/T/L), a suite directory (one row per task, a drill-down "
    "per task), a sweep directory, a cross-validated run (`run --folds`) or a seeds run (`run --seeds`); the "
    "kind is read from the directory. Every page starts with the model, the benchmark pin, queries, pool, "
    "chance and the gate verdicts, and ends with hashes, recipe and environment (collapsed) and links to the "
    "artefacts by relative path. `run`, `suite run` and `sweep` write the same page as report.html beside "
    "their text report."
)
SERIES = {"sweep": "sweep", "folds": "cv", "suite": "suite"}


def kind_of(path: Path) -> str:
    """What a directory holds, from the files the commands write (series.json names a series' kind)."""
    from lvmbench.runs.rundir import plan_kind

    if not path.is_dir():
        raise UsageError(f"{path}: not a directory (report takes run, suite, sweep, cv or seeds directories)")
    kind = plan_kind(path)
    if kind == "multi":
        return "seeds" if (path / "seeds.json").is_file() else "compare"
    if kind in SERIES:
        return SERIES[kind]
    if (path / "suite.json").is_file():
        return "suite"
    if (path / "results.json").is_file():
        return "run"
    raise UsageError(f"{path}: neither a run directory (results.json) nor a series directory (series.json)")


def cmd_report(args: argparse.Namespace) -> int:
    from lvmbench import workdir
    from lvmbench.report.html.build import write

    paths = [Path(p) for p in args.paths]
    kinds = [kind_of(p) for p in paths]
    for p in paths:
        workdir.check_finished(p, "report")
    if len(paths) > 1:
        if set(kinds) != {"run"}:
            raise UsageError("several PATHs must all be run directories (they make the compare leaderboard); got "
                             + ", ".join(f"{p} ({k})" for p, k in zip(paths, kinds)))
        kind = "compare"
    else:
        kind = kinds[0]
    out = write(kind, paths, args.html)
    log(f"wrote {out} ({kind} report)")
    return 0


def add_report(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="write a run, several runs, a suite, a sweep, a CV or a seeds run as one "
                       "self-contained HTML page", description=DESCRIPTION, epilog=EPILOG)
    r.add_argument("paths", nargs="+", metavar="PATH", help="a run, suite, sweep, cv or seeds directory, or several "
                   "run directories")
    r.add_argument("--html", required=True, metavar="OUT.html", help="the page to write (its links to the "
                   "artefacts are relative to its folder)")
    r.set_defaults(func=cmd_report)
