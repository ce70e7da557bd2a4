"""Error types the CLI turns into one clear line and an exit code.

``UsageError`` subclasses mean "your input is wrong" (exit 2); ``IntegrityError``
means a run produced a number lvmbench cannot vouch for (exit 3).
"""


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
