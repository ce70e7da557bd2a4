"""A directory one command writes at a time: an OS lock, an "incomplete" marker, a clean overwrite.

Two commands writing one run directory used to mix their files (one run's
``recipe.json`` beside the other's ``results.json``), and ``--overwrite`` left
the old run's checkpoints for ``eval`` to score.  So:

* **Lock.** A command that writes a directory holds ``fcntl.flock`` on
  ``DIR/.lock`` (or, for a path that is replaced wholesale such as a chain
  store, on a hidden sibling ``.NAME.lock``) for its whole life.  A second
  command refuses at once, naming the holder's PID and command line, which
  the holder wrote into the lock file.  The kernel drops the lock when the
  holder exits, however it exits, so a crash never leaves a stale lock; the
  file is unlinked on release, and an acquirer checks that the path still
  names the inode it locked (else it retries), so unlinking is race-free.
* **Incomplete marker.** ``DIR/.incomplete`` is written when a command starts
  writing and removed only when it finished; ``gate``, ``compare`` and
  ``eval`` refuse a directory that has one (:func:`check_finished`).
* **Overwrite** deletes everything in the directory (but the lock) before the
  new command writes anything, so old and new files never mix.

A process may re-enter a lock it already holds (a series and its runs, a
resume inside a series); only other processes are kept out.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from lvmbench.errors import IntegrityError, UsageError

LOCK = ".lock"
INCOMPLETE = ".incomplete"
HIDDEN = (LOCK, INCOMPLETE)
"""Bookkeeping files a directory may hold and still count as empty."""


class LockedError(UsageError):
    """Another process holds the directory (exit 2: try again when it is done)."""


@dataclass
class _Held:
    fd: int
    path: Path  # the lock file
    depth: int = 1


_HELD: dict[Path, _Held] = {}


def _command() -> str:
    import shlex

    return shlex.join(["lvmbench", *sys.argv[1:]]) if sys.argv and sys.argv[0] else "lvmbench"


def _holder(lock_file: Path, tries: int = 50) -> str:
    """Who holds the lock, as its holder wrote it just after taking it (so wait a moment for an empty file)."""
    info: Any = {}
    for _ in range(tries):
        try:
            info = json.loads(lock_file.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if isinstance(info, dict) and "pid" in info:
            return f"PID {info['pid']} ({info.get('command', '?')}, since {info.get('since', '?')})"
        time.sleep(0.01)
    return "another process"


def _try_lock(lock_file: Path) -> int | None:
    """An fd holding an exclusive flock on ``lock_file`` (created if missing), or None when another holds it."""
    for _ in range(20):
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return None
            raise
        try:  # the holder before us may have unlinked the file between our open and our flock
            same = os.stat(lock_file).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise LockedError(f"{lock_file}: could not take the lock (the file keeps changing)")


def lock_path(path: str | Path, sibling: bool = False) -> Path:
    """Where the lock of ``path`` lives: inside it, or beside it for a path that is replaced as a whole."""
    p = Path(path)
    return p.with_name(f".{p.name}.lock") if sibling else p / LOCK


def acquire(path: str | Path, sibling: bool = False) -> Path:
    """Lock ``path`` for this process (re-entrant); refuse at once, naming the holder, if another has it."""
    p = Path(path)
    lock_file = lock_path(p, sibling)
    key = lock_file.resolve()
    if key in _HELD:
        _HELD[key].depth += 1
        return p
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = _try_lock(lock_file)
    if fd is None:
        raise LockedError(f"{p}: in use by {_holder(lock_file)}; wait for it to finish or stop it")
    record = {"pid": os.getpid(), "command": _command(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(record).encode())
    _HELD[key] = _Held(fd, lock_file)
    return p


def release(path: str | Path, sibling: bool = False) -> None:
    """Give back one acquisition of ``path``; the lock file goes when the last one does."""
    key = lock_path(path, sibling).resolve()
    held = _HELD.get(key)
    if held is None:
        return
    held.depth -= 1
    if held.depth <= 0:
        _drop(key)


def _drop(key: Path) -> None:
    held = _HELD.pop(key)
    try:
        os.unlink(held.path)
    except FileNotFoundError:
        pass
    os.close(held.fd)


def held() -> list[Path]:
    """The lock files this process holds (for tests and for releasing after a command)."""
    return [h.path for h in _HELD.values()]


def release_all(keep: int = 0) -> None:
    """Drop the locks this process took after the first ``keep`` (0: all; the end of a CLI command)."""
    for key in list(_HELD)[keep:]:
        _drop(key)


def is_locked(path: str | Path, sibling: bool = False) -> str | None:
    """Who holds ``path`` if another process does (without taking it), else None."""
    lock_file = lock_path(path, sibling)
    if not lock_file.is_file() or lock_file.resolve() in _HELD:
        return None
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder(lock_file)
    finally:
        os.close(fd)
    return None


def entries(path: Path) -> Iterator[Path]:
    """What ``path`` holds besides lvmbench's bookkeeping files."""
    for p in path.iterdir():
        if p.name not in HIDDEN:
            yield p


def clear(path: Path) -> None:
    """Delete everything in ``path`` but its lock (``--overwrite``): old and new files never mix."""
    for p in list(entries(path)) + [path / INCOMPLETE]:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def mark_incomplete(path: Path, what: str = "") -> None:
    """``DIR/.incomplete``: a command is writing here; it is removed only when the command finished."""
    record = {"pid": os.getpid(), "command": _command(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
              "what": what}
    (path / INCOMPLETE).write_text(json.dumps(record) + "\n", encoding="utf-8")


def mark_complete(path: Path) -> None:
    try:
        (path / INCOMPLETE).unlink()
    except FileNotFoundError:
        pass


def incomplete(path: Path) -> dict[str, Any] | None:
    """The marker's record when ``path`` did not finish, else None."""
    marker = path / INCOMPLETE
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    return info if isinstance(info, dict) else {}


def check_finished(path: str | Path, reader: str) -> None:
    """Refuse (exit 3) a directory another process is writing, or one whose command did not finish.

    ``reader`` names the command that wanted it (``gate``, ``compare``...).
    """
    p = Path(path)
    d = p if p.is_dir() else p.parent
    who = is_locked(d)
    if who is not None:
        raise IntegrityError(f"{d}: still being written by {who}; {reader} reads only finished runs")
    info = incomplete(d)
    if info is not None:
        cmd = info.get("command") or "the command that wrote it"
        raise IntegrityError(f"{d}: did not finish ({cmd} failed or was interrupted; it left {INCOMPLETE}); "
                             f"{reader} reads only finished runs: resume it or run it again with --overwrite")
