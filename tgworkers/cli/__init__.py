"""The command line: `python -m tgworkers <command>` (also `tgworkers`).

Each command is a thin layer over one engine service. User and configuration
errors exit 2 with one line on stderr naming the problem; operational failures
exit 1 with one line; no command prints a traceback for either.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from tgworkers import __version__
from tgworkers.cli import (
    backfill,
    dev,
    dlq,
    drain,
    enqueue,
    finished,
    job,
    jobs,
    pause,
    repartition,
    run as run_cmd,
    schedule,
    schedules,
    stats,
)
from tgworkers.errors import TgworkersError

COMMANDS: tuple[
    tuple[str, Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]], ...
] = (
    ("run", run_cmd.register),
    ("dev", dev.register),
    ("enqueue", enqueue.register),
    ("stats", stats.register),
    ("pause", pause.register),
    ("drain", drain.register),
    ("backfill", backfill.register),
    ("dlq", dlq.register),
    ("schedules", schedules.register),
    ("schedule", schedule.register),
    ("jobs", jobs.register),
    ("job", job.register),
    ("finished", finished.register),
    ("repartition", repartition.register),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tgworkers", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tgworkers {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for _, register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except TgworkersError as exc:
        print(f"tgworkers: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    return result
