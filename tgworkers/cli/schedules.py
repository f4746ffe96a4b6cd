"""`schedules [--json]`: each schedule's expression, job, next and last fire."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from rich.table import Table

from tgworkers.cli.services import (
    add_app_flag,
    context,
    open_services,
    out_console,
    print_json,
    run_async,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schedules", help="list schedules with their next and last fire times")
    p.add_argument("--json", action="store_true", help='print {"schedules": [...]}')
    add_app_flag(p)
    p.set_defaults(func=main)


def when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            doc = await svc.schedules.read()
        if args.json:
            print_json(doc)
            return 0
        t = Table("schedule", "expression", "job", "state", "next", "last", "outcome",
                  title="schedules")  # fmt: skip
        for s in doc.schedules:
            t.add_row(
                s.name, s.expression, s.job, "paused" if s.paused else "active",
                when(s.next_at), when(s.last_at), s.last_outcome or "-",
            )  # fmt: skip
        out_console().print(t)
        return 0

    return run_async(settings, body)
