"""`pause QUEUE` / `resume QUEUE`: every worker stops / starts taking jobs within 1 s."""

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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, paused, text in (
        ("pause", True, "stop handing out jobs of a queue (in-flight ones finish)"),
        ("resume", False, "hand out jobs of a paused queue again"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("queue", metavar="QUEUE")
        p.add_argument("--json", action="store_true", help='print {"queue", "paused"}')
        add_app_flag(p)
        p.set_defaults(func=main, paused=paused)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    registry.queue(args.queue)

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            state = await svc.control.operator_pause(args.queue, paused=args.paused)
            action = "pause" if args.paused else "resume"
            await audit(svc, action, args.queue, queue=args.queue)
        if args.json:
            print_json(state)
        else:
            verb = "paused" if args.paused else "resumed"
            also = " (the configuration holds it too: PAUSED_QUEUES)"
            print(f"queue {args.queue} {verb}{also if len(state.paused_by) > 1 else ''}")
        return 0

    return run_async(settings, body)
