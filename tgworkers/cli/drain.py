"""`drain QUEUE [--delayed] --yes`: delete jobs no worker has taken yet."""

from __future__ import annotations

import argparse

from tgworkers.cli.services import (
    add_app_flag,
    audit,
    context,
    open_services,
    print_json,
    run_async,
)
from tgworkers.errors import InputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("drain", help="delete a queue's ready (and delayed) jobs")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("--delayed", action="store_true", help="delete delayed jobs as well")
    p.add_argument("--yes", action="store_true", help="confirm: jobs are deleted for good")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    add_app_flag(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    registry.queue(args.queue)
    if not args.yes:
        raise InputError(f"drain deletes the jobs of {args.queue} for good: pass --yes to confirm")

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            result = await svc.control.drain(args.queue, delayed=args.delayed)
            await audit(svc, "drain", args.queue, queue=args.queue,
                        removed_ready=result.removed_ready,
                        removed_delayed=result.removed_delayed)  # fmt: skip
        if args.json:
            print_json(result)
        else:
            extra = f" and {result.removed_delayed} delayed" if args.delayed else ""
            print(f"drained {args.queue}: removed {result.removed_ready} ready{extra} jobs")
        return 0

    return run_async(settings, body)
