"""Write a report page: pick the adapter for the kind of directory, render, write atomically.

``kind`` is one of :data:`~lvmbench.report.html.views.KINDS`; the command
line finds it from the directory (``lvmbench report``), a command that
writes ``report.html`` beside its own report knows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from lvmbench.errors import UsageError
from lvmbench.io import atomic_write_text
from lvmbench.report.html import adapt, adapt_series
from lvmbench.report.html.pages import render
from lvmbench.report.html.views import KINDS, PageView

REPORT = "report.html"

SINGLE: dict[str, Callable[[Path, Path], PageView]] = {
    "run": adapt.run_page, "suite": adapt_series.suite_page, "cv": adapt_series.cv_page,
    "seeds": adapt_series.seeds_page, "sweep": adapt_series.sweep_page,
}


def view(kind: str, paths: Sequence[str | Path], page_dir: str | Path) -> PageView:
    """The page of ``paths`` (one directory, or several runs for ``compare``), its links relative to ``page_dir``."""
    if kind not in KINDS:
        raise UsageError(f"unknown report kind {kind!r} (one of {', '.join(KINDS)})")
    dirs = [Path(p) for p in paths]
    if not dirs:
        raise UsageError("report needs at least one directory")
    if kind == "compare":
        if len(dirs) == 1 and (dirs[0] / "multi.json").is_file():
            dirs = adapt_series.multi_runs(dirs[0])
        return adapt.compare_page(dirs, Path(page_dir))
    if len(dirs) != 1:
        raise UsageError(f"a {kind} report takes one directory, got {len(dirs)}")
    return SINGLE[kind](dirs[0], Path(page_dir))


def write(kind: str, paths: Sequence[str | Path], out: str | Path) -> Path:
    """Render the page and write it to ``out`` (atomically); the same inputs give the same bytes."""
    out = Path(out)
    if out.is_dir():
        raise UsageError(f"{out}: is a directory; --html takes the page's file name (e.g. {out / REPORT})")
    html = render(view(kind, paths, out.parent))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, html)
    return out


def write_beside(kind: str, paths: Sequence[str | Path], out: str | Path,
                 log: Callable[[str], None]) -> Path | None:
    """``report.html`` beside a command's own report: a page that cannot be drawn is a warning, not a failure
    (the measurement is written already); the command's text report stays the record."""
    try:
        return write(kind, paths, out)
    except Exception as exc:  # noqa: BLE001 - the run's results must survive any problem drawing its page
        log(f"warning: {out} not written: {type(exc).__name__}: {exc}")
        return None
