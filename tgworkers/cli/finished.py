"""`finished PREFIX [--queue Q] [--limit N] [--json]`: did a job finish, when, how.

Jobs with a producer-chosen id that finished within `DEDUPE_TTL_S`, found by id
prefix (the same service as `GET /admin/v1/finished` and the console's Finished page).
"""

from __future__ import annotations

import argparse

from rich.table import Table

from tgworkers.cli.schedules import when
from tgworkers.cli.services import (
    add_app_flag,
    context,
    open_services,
    out_console,
    print_json,
    run_async,
)
from tgworkers.errors import InputError
from tgworkers.http.limits import MAX_LIMIT


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("finished", help="finished jobs by id prefix: when, attempt, trace")
    p.add_argument("prefix", metavar="PREFIX", help="job id or its beginning (cfb.settle:b_1)")
    p.add_argument("--queue", help="search one queue only")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--sort", help="order: id, queue, finishedAt, attempt, durationMs (-: desc)")
    p.add_argument("--json", action="store_true", help='print {"items", "prefix", "limit"}')
    add_app_flag(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    if args.queue:
        registry.queue(args.queue)
    if not 1 <= args.limit <= MAX_LIMIT:
        raise InputError(f"--limit: at most {MAX_LIMIT} (and at least 1), got {args.limit}")

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            page = await svc.finished.search(
                args.prefix, queue=args.queue, limit=args.limit, sort=args.sort
            )
        if args.json:
            print_json(page)
            return 0
        if not page.items:
            print(f"no job finished with an id starting with {args.prefix!r} within DEDUPE_TTL_S")
            return 0
        t = Table("id", "queue", "finished", "attempt", "deliveries", "trace", title="finished")
        for r in page.items:
            t.add_row(r.id, r.queue, when(r.finished_at), str(r.attempt), str(r.deliveries),
                      r.trace_id or "-")  # fmt: skip
        out_console().print(t)
        return 0

    return run_async(settings, body)
