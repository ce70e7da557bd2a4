"""Run directories: where a command writes, held by one command at a time (:mod:`lvmbench.workdir`)."""

from __future__ import annotations

import datetime as _dt
import functools
from pathlib import Path
from typing import Any, Callable, TypeVar

from lvmbench import workdir
from lvmbench.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


def make_run_dir(out: str | Path | None, model_name: str, overwrite: bool) -> Path:
    """``out`` (default ``runs/<model>-<timestamp>``), created, locked and marked incomplete.

    A non-empty directory is refused unless ``overwrite``, which first deletes
    everything in it: the new run's files never sit beside the old run's.
    The lock is taken before the emptiness check, so of two commands started
    together on one directory exactly one proceeds.
    """
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{model_name}-{stamp}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    workdir.acquire(out)
    try:
        if any(workdir.entries(out)) or workdir.incomplete(out) is not None:
            if not overwrite:
                raise UsageError(f"{out}: run directory exists and is not empty (pass --overwrite to replace "
                                 "its contents)")
            workdir.clear(out)
        workdir.mark_incomplete(out, model_name)
    except BaseException:
        workdir.release(out)
        raise
    return out


def claim_existing(run_dir: Path) -> Path:
    """Lock a directory a command continues (``--resume``) and mark it incomplete until it finishes."""
    workdir.acquire(run_dir)
    try:
        workdir.mark_incomplete(run_dir, "resume")
    except BaseException:
        workdir.release(run_dir)
        raise
    return run_dir


PLAN = "series.json"
"""Written into a series' parent directory before its first job: the kind of series and its points."""


def plan_kind(parent: Path) -> str | None:
    """The kind (multi, sweep, folds, suite) a directory's series.json names, or None."""
    import json

    try:
        kind = json.loads((parent / PLAN).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def series_dir(out: str | Path | None, suffix: str, overwrite: bool, kind: str | None = None,
               log: Callable[[str], None] | None = None) -> Path:
    """The parent directory of a series (default runs/<timestamp>-<suffix>).

    A directory that already holds a series of the same ``kind`` is taken up
    as it is (locked, marked incomplete): its finished jobs are reused, so a
    command run again, or extended by another model, seed or task, runs only
    what is missing.  Any other non-empty directory is refused unless
    ``overwrite``, which empties it first.
    """
    if out is None:
        out = Path("runs") / f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{suffix}"
    out = Path(out)
    if kind is not None and not overwrite and out.is_dir() and plan_kind(out) == kind:
        if log is not None:
            log(f"{out}: holds a {kind} series already; its finished jobs are reused (--rerun runs them again, "
                "--overwrite empties the directory first)")
        return claim_existing(out)
    return make_run_dir(out, suffix, overwrite)


def scoped(fn: F) -> F:
    """Release the directory locks ``fn`` took when it returns or raises (the whole command's life)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        keep = len(workdir.held())
        try:
            return fn(*args, **kwargs)
        finally:
            workdir.release_all(keep)

    return wrapper  # type: ignore[return-value]
