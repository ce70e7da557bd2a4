"""Run directories: where a command writes, and the refusal to overwrite one."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from lvmbench.errors import UsageError


def make_run_dir(out: str | Path | None, model_name: str, overwrite: bool) -> Path:
    """``out`` (default ``runs/<model>-<timestamp>``), created; a non-empty one only with ``overwrite``."""
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{model_name}-{stamp}"
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"{out}: run directory exists and is not empty (pass --overwrite to replace its files)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def series_dir(out: str | Path | None, suffix: str, overwrite: bool) -> Path:
    """The parent directory of a series (default runs/<timestamp>-<suffix>); refused if non-empty."""
    if out is None:
        out = Path("runs") / f"{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{suffix}"
    return make_run_dir(out, suffix, overwrite)
