"""`dlq list|show|requeue|drop|export`: the dead-letter queues of every queue."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import IO, Any

import msgspec
from rich.table import Table

from tgworkers.cli.progress import Meter
from tgworkers.cli.services import (
    Services,
    add_app_flag,
    audit,
    context,
    open_services,
    out_console,
    print_json,
    run_async,
)
from tgworkers.engine.ops.dlq_search import DlqFilter, search
from tgworkers.errors import InputError

Action = Callable[[Services, argparse.Namespace], Awaitable[int]]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    top = sub.add_parser("dlq", help="list, show, requeue, drop or export dead-lettered jobs")
    dsub = top.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    p = _action(dsub, "list", list_jobs, "dead-lettered jobs of a queue")
    p.add_argument("--limit", type=int, default=100, help="at most N items (default 100)")
    p.add_argument("--json", action="store_true", help='print {"queue", "items", "total"}')
    p.add_argument("--id-prefix", help="only jobs whose id starts with this")
    p.add_argument("--name", help="only jobs of this job type")
    p.add_argument("--error", help="only jobs whose reason or error history contains this text")
    p.add_argument("--sort", help="order the page: failedAt, attempts, id, name, reason (-: desc)")
    p = _action(dsub, "show", show, "one dead-lettered job with its error history")
    p.add_argument("id", metavar="ID")
    p = _action(dsub, "requeue", requeue, "move jobs back onto their queue, same ids")
    _selection(p)
    p.add_argument("--reset-attempts", action="store_true", help="start again at attempt 1")
    p = _action(dsub, "drop", drop, "delete dead-lettered jobs")
    _selection(p)
    p.add_argument("--yes", action="store_true", help="confirm: jobs are deleted for good")
    p = _action(dsub, "export", export, "write dead-lettered jobs as JSON lines")
    p.add_argument("--out", metavar="FILE", help="file to write (default: stdout)")


def _action(
    dsub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, fn: Action, text: str
) -> argparse.ArgumentParser:
    p = dsub.add_parser(name, help=text)
    p.add_argument("queue", metavar="QUEUE")
    add_app_flag(p)
    p.set_defaults(func=main, action=fn)
    return p


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="*", metavar="ID", help="job ids")
    p.add_argument("--all", action="store_true", help="every job in the queue's DLQ")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def selected(args: argparse.Namespace) -> list[str] | None:
    """The ids named, or None for `--all`; exactly one of the two is required."""
    if args.all and args.ids:
        raise InputError("pass job ids or --all, not both")
    if not args.all and not args.ids:
        raise InputError("name the job ids to act on, or pass --all")
    return None if args.all else list(args.ids)


async def list_jobs(svc: Services, args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise InputError("--limit: expected a number >= 0")
    flt = DlqFilter(id_prefix=args.id_prefix, name=args.name, error=args.error)
    if flt.active or args.sort:
        doc = await search(svc.dlq, args.queue, flt, limit=args.limit, sort=args.sort)
    else:
        doc = await svc.dlq.list_jobs(args.queue, limit=args.limit)
    if args.json:
        print_json(doc)
        return 0
    t = Table("id", "name", "attempts", "reason", "failed at (ms)", title=f"DLQ of {args.queue}")
    for item in doc["items"]:
        t.add_row(item["id"], item["name"], str(item["attempts"]), item["reason"],
                  str(item["failedAt"]))  # fmt: skip
    out_console().print(t)
    if "scanned" in doc:
        more = "; more to read: --json gives the cursor" if doc["next"] else ""
        print(f"{len(doc['items'])} matching in {doc['scanned']} read{more}")
    print(f"{doc['total']} dead-lettered in total")
    return 0


async def show(svc: Services, args: argparse.Namespace) -> int:
    job = await svc.dlq.show(args.queue, args.id)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(_public(job)), indent=2).decode())
    sys.stdout.write("\n")
    return 0


def _public(job: Any) -> dict[str, Any]:
    return {**job.summary(), "errors": job.errors}


async def requeue(svc: Services, args: argparse.Namespace) -> int:
    ids = selected(args)
    result = await svc.dlq.requeue(args.queue, ids, reset_attempts=args.reset_attempts, by="cli")
    await audit(svc, "dlq.requeue", args.queue, queue=args.queue, requeued=result["requeued"],
                skipped=len(result["skipped"]), all=args.all,
                reset_attempts=args.reset_attempts)  # fmt: skip
    if args.json:
        print_json(result)
    else:
        skipped = f"; not found: {', '.join(result['skipped'])}" if result["skipped"] else ""
        attempts = (
            "attempts reset: each starts again at attempt 1"
            if args.reset_attempts
            else "attempts kept: each runs as its next attempt (--reset-attempts for full retries)"
        )
        print(f"requeued {result['requeued']} jobs onto {args.queue}{skipped}; {attempts}")
    return 0


async def drop(svc: Services, args: argparse.Namespace) -> int:
    ids = selected(args)
    if not args.yes:
        raise InputError("drop deletes dead-lettered jobs for good: pass --yes to confirm")
    result = await svc.dlq.drop(args.queue, ids)
    await audit(svc, "dlq.drop", args.queue, queue=args.queue, dropped=result["dropped"],
                all=args.all)  # fmt: skip
    if args.json:
        print_json(result)
    else:
        print(f"dropped {result['dropped']} jobs from the DLQ of {args.queue}")
    return 0


async def export(svc: Services, args: argparse.Namespace) -> int:
    """Streams JSON lines page by page: memory stays flat however long the DLQ."""
    total = await svc.dlq.count(args.queue)
    out = _output(args.out)
    written = 0
    try:
        with Meter(f"export {args.queue}", total=total, bar=bool(args.out)) as meter:
            async for line in svc.dlq.export(args.queue):
                out.write(line)
                written += 1
                meter.advance(1)
    finally:
        if args.out:
            out.close()
        else:
            out.flush()
    if args.out:
        print(f"exported {written} jobs to {args.out}", file=sys.stderr)
    return 0


def _output(path: str | None) -> IO[bytes]:
    if path is None:
        return sys.stdout.buffer
    try:
        return open(path, "wb")
    except OSError as exc:
        raise InputError(f"--out: cannot write {path}: {exc.strerror}") from None


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    registry.queue(args.queue)
    action: Action = args.action

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            return await action(svc, args)

    return run_async(settings, body)
