"""Progress on long work: a tqdm bar on a terminal, a plain line now and then anywhere else.

tqdm switches itself off when stderr is not a terminal, which left CI logs and
``nohup`` output silent for a whole epoch (24 minutes on a busy machine).
Off a terminal, :class:`Progress` therefore writes one plain line through the
command's log every ``LVMBENCH_PROGRESS_SECONDS`` seconds (default 60): how far,
how fast, how long left.  Work that finishes sooner prints nothing extra.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, TextIO

from tqdm import tqdm

from lvmbench.format import clock

ENV = "LVMBENCH_PROGRESS_SECONDS"
DEFAULT_SECONDS = 60.0


def interval() -> float:
    try:
        return max(0.0, float(os.environ.get(ENV, DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


class Progress:
    """``update()`` as work is done; ``close()`` at the end (or use it as a context manager)."""

    def __init__(self, total: int, desc: str, log: Callable[[str], None] | None = print, unit: str = "it",
                 enabled: bool = True, file: TextIO | None = None):
        file = file or sys.stderr
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=file) if enabled and _tty(file) else None
        self.log = log if enabled and self.bar is None else None
        self.every = interval()
        self.start = self.last = time.monotonic()
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if self.log is not None and now - self.last >= self.every:
            self.last = now
            self.log(self.line(now))

    def set_postfix(self, **values: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(**values)
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def line(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.start
        left = elapsed / self.n * (self.total - self.n) if self.n else float("nan")
        pct = 100.0 * self.n / self.total if self.total else 100.0
        eta = f", ~{clock(left)} left" if self.n and self.n < self.total else ""
        return (f"  {self.desc}: {self.n}/{self.total} {self.unit} ({pct:.0f}%), {clock(elapsed)} elapsed{eta}"
                + (f"; {self.postfix}" if self.postfix else ""))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tty(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False
