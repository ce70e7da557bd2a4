"""The ``lvmbench`` command: one small ``add_<command>`` per subcommand.

Exit codes: 0 success (and ``gate`` passed); 1 ``gate`` failed (a criterion, or
a benchmark pin the run does not match); 2 bad input (a missing or malformed
file, an unknown model or setting, a directory another command holds); 3 an
integrity failure (leakage between splits, training-time Hit@K disagreeing
with index retrieval, predictions that tie every candidate, a run that did not
finish); 130 interrupted.

Subcommand modules import the heavy layers (torch, FAISS) inside their
``cmd_*`` functions, so ``lvmbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from lvmbench import __version__
from lvmbench.cli.common import EPILOG, same_command, trusted_specs
from lvmbench.cli.data import add_data
from lvmbench.cli.evaluate import add_eval, add_trec
from lvmbench.cli.predictions import add_score, add_task
from lvmbench.cli.gate import add_benchmark, add_gate, add_latency
from lvmbench.cli.report import add_report
from lvmbench.cli.results import add_compare, add_models
from lvmbench.cli.run import add_run, add_sweep
from lvmbench.cli.suite import add_suite
from lvmbench.errors import Interrupted, LvmbenchError, error_line
from lvmbench.trust import trusted_imports

COMMANDS = (add_run, add_eval, add_sweep, add_suite, add_task, add_score, add_trec, add_gate, add_benchmark,
            add_latency, add_models, add_compare, add_report, add_data)
"""Each registers one subcommand (its parser and ``func``); the order is the order of ``--help``."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lvmbench",
        description="Train latent vector models through the consultant recipe and score them end to end "
        "against a FAISS index, with baselines, intervals and integrity checks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"lvmbench {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None, owns_process: bool = False) -> int:
    """Run one command; return its exit code.

    Errors become one line on stderr and their exit code.  Ctrl-C becomes
    exit 130 only with ``owns_process`` (the console script, ``python -m
    lvmbench``); a caller that runs lvmbench in-process, a test suite say,
    gets the KeyboardInterrupt (with the resume command in its message) so
    that its own Ctrl-C handling still works.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with trusted_imports(trusted_specs(args)):
            return int(args.func(args))
    except LvmbenchError as exc:
        if isinstance(exc, Interrupted) and not owns_process:
            raise
        if not exc.reported:
            print(error_line(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if not owns_process:
            raise
        # commands that keep state (run, sweep, data build) raise Interrupted with their own way to continue;
        # the rest write their results only at the end, so nothing partial was kept
        print(f"lvmbench: interrupted; nothing was kept: run the same command again: {same_command(args)}",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lvmbench ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        from lvmbench import workdir

        workdir.release_all()  # the directories this command held are free again


def console_main() -> int:
    """The ``lvmbench`` console script and ``python -m lvmbench``: this process is lvmbench's own."""
    return main(owns_process=True)


if __name__ == "__main__":
    sys.exit(console_main())
