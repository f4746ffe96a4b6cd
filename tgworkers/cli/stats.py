"""`stats [--json] [--watch]`: per-queue counts, totals and rates."""

from __future__ import annotations

import argparse

import anyio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from tgworkers.cli.services import (
    Services,
    add_app_flag,
    context,
    open_services,
    out_console,
    print_json,
    run_async,
)
from tgworkers.engine.ops.stats import StatsDocument

WATCH_INTERVAL_S = 2.0
_COLUMNS = (
    "queue", "ready", "inflight", "delayed", "dlq", "paused", "consumers", "oldest ready",
    "processed", "failed", "retried", "done/min", "failed/min",
)  # fmt: skip


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stats", help="per-queue counts, totals and rates")
    p.add_argument("--json", action="store_true", help="print the stats document as JSON")
    p.add_argument("--watch", action="store_true", help="refresh every 2 s until Ctrl-C")
    add_app_flag(p)
    p.set_defaults(func=main)


def table(doc: StatsDocument) -> Table:
    t = Table(*_COLUMNS, title="tgworkers queues")
    for q in doc.queues:
        t.add_row(
            q.name, str(q.ready), str(q.inflight), str(q.delayed), str(q.dlq),
            "+".join(q.paused_by) or "no", str(q.consumers),
            f"{q.oldest_ready_age_ms / 1000:.1f}s",
            str(q.processed), str(q.failed), str(q.retried),
            str(q.rate_per_min.processed), str(q.rate_per_min.failed),
        )  # fmt: skip
    return t


def limits_table(doc: StatsDocument) -> Table:
    t = Table("scope", "name", "limit/s", "at once", "after a wait", "sent back",
              title="shared rate limits")  # fmt: skip
    for lim in doc.limits:
        t.add_row(lim.scope, lim.name, f"{lim.per_s:g}", str(lim.allowed), str(lim.waited),
                  str(lim.refused))  # fmt: skip
    return t


async def watch(svc: Services, *, as_json: bool) -> None:
    """Refresh in place on a terminal; elsewhere print one snapshot per interval."""
    console = Console()
    if console.is_terminal and not as_json:
        with Live(table(await svc.stats.snapshot()), console=console, auto_refresh=False) as live:
            while True:
                await anyio.sleep(WATCH_INTERVAL_S)
                live.update(table(await svc.stats.snapshot()), refresh=True)
    while True:
        doc = await svc.stats.snapshot()
        if as_json:
            print_json(doc)
        else:
            console.print(table(doc))
        await anyio.sleep(WATCH_INTERVAL_S)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            if args.watch:
                await watch(svc, as_json=args.json)
            doc = await svc.stats.snapshot()
        if args.json:
            print_json(doc)
        else:
            out_console().print(table(doc))
            if doc.limits:
                out_console().print(limits_table(doc))
        return 0

    try:
        return run_async(settings, body)
    except KeyboardInterrupt:
        return 0
