"""Error types the CLI turns into one clear line and an exit code.

``UsageError`` subclasses mean "your input is wrong" (exit 2); ``IntegrityError``
means a run produced a number lvmbench cannot vouch for (exit 3).
"""

import re


class LvmbenchError(Exception):
    exit_code = 2
    reported = False
    """True once the error line was printed (every rank of a torchrun launch prints it before any exits)."""


def error_line(exc: BaseException) -> str:
    """The one line the command prints for an error."""
    return f"lvmbench: error: {exc}"


class UsageError(LvmbenchError):
    """Bad input: a file, a flag, a setting."""


class ConfigError(UsageError):
    """An unknown recipe key or a value of the wrong type."""


class DataError(UsageError):
    """A dataset that is missing, malformed or fails a hard quality check."""


class CheckpointError(UsageError):
    """A checkpoint that cannot be trusted or does not fit the data."""


class IntegrityError(LvmbenchError):
    """Leakage between splits, or training-time and index retrieval disagree."""

    exit_code = 3


class ModelOutputError(IntegrityError):
    """A model broke the output contract after its build-time check (a shape that changed mid-run)."""


class DegeneratePredictions(IntegrityError):
    """Predictions that are not finite unit vectors once normalised: they tie every candidate, so they are refused.

    ``index`` is the first bad query, ``reason`` what happened to it, ``count`` how many are bad.
    """

    def __init__(self, message: str, index: int = -1, reason: str = "", count: int = 0, model: str = ""):
        super().__init__(message)
        self.index, self.reason, self.count, self.model = index, reason, count, model


class DiskFullError(UsageError):
    """A write failed for lack of space (or quota): the file and the free space, in one line."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), colour codes removed, for one-line refusals."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


class Interrupted(LvmbenchError, KeyboardInterrupt):
    """Ctrl-C: the run directory holds what a resume needs; the message says how to continue (exit 130).

    It is a KeyboardInterrupt too, so a program (or a test runner) that calls
    lvmbench in-process is interrupted as it expects; only the console script
    turns it into a message and exit code 130.
    """

    exit_code = 130


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C behind ``exc``, if any.

    A library can turn a KeyboardInterrupt raised inside it into its own error:
    ``torch.save`` interrupted mid-write raises a RuntimeError from its zip
    writer's cleanup, with the interrupt only as ``__context__``.  A broad
    ``except Exception`` would then swallow the user's Ctrl-C; callers re-raise
    what this returns instead.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, KeyboardInterrupt):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None
