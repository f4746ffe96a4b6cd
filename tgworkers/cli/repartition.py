"""`repartition QUEUE N`: change a queue's partition count, moving its jobs' state.

Pauses the queue, waits until every live worker has acknowledged the pause and no
delivery of the queue may still be running, moves ready/delayed/dead-lettered jobs,
dedupe records and locks to the partitions the new count gives them, records N and
resumes (engine/ops/repartition.py). Then restart every process with PARTITIONS_<P>=N:
until then, processes with the old count hold the queue and refuse to enqueue into it.
Audited at entry (`repartition.start`) and exit (`repartition`, with what moved, or
`failed` naming the error), here in the command, not inside the move.
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from tgworkers.cli.services import (
    add_app_flag,
    audit,
    audited,
    context,
    open_services,
    print_json,
    run_async,
)
from tgworkers.engine.ops.repartition import Repartitioner


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("repartition", help="change a queue's partition count safely")
    p.add_argument("queue", metavar="QUEUE")
    p.add_argument("count", metavar="N", type=int, help="the new partition count (1-1024)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for in-flight jobs (default 60)")  # fmt: skip
    p.add_argument("--ack-timeout", type=float, default=10.0,
                   help="seconds to wait for every live worker to acknowledge the pause "
                        "(default 10)")  # fmt: skip
    p.add_argument("--proceed-unacked", action="store_true",
                   help="move even if some live workers did not acknowledge (they are "
                        "listed); default: refuse, nothing moved")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print what moved as JSON")
    add_app_flag(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    proc = registry.queue(args.queue)

    async def body() -> int:
        async with open_services(settings, registry, check_partitions=False) as svc:
            mover = Repartitioner(svc.client.redis, registry, settings)
            asked = {"queue": args.queue, "count": args.count}
            await audit(svc, "repartition.start", args.queue, **asked)
            done: dict[str, Any] = {}
            async with audited(svc, "repartition", args.queue, lambda: {**asked, **done}):
                result = await mover.run(
                    args.queue, args.count, timeout_s=args.timeout,
                    ack_timeout_s=args.ack_timeout, proceed_unacked=args.proceed_unacked,
                )  # fmt: skip
                done.update(msgspec.to_builtins(result))
        if args.json:
            print_json(result)
        elif result.old == result.new:
            print(f"queue {args.queue} already has {result.new} partitions")
        else:
            moved = (
                ", ".join(f"{n} {what}" for what, n in sorted(result.moved.items())) or "nothing"
            )
            print(f"queue {args.queue}: {result.old} -> {result.new} partitions; moved {moved}")
            print(f"{result.acked} workers acknowledged the pause; "
                  f"{result.malformed} entries that are not jobs carried as they are")  # fmt: skip
            if result.unacked:
                print(f"workers that did not acknowledge: {', '.join(result.unacked)}")
            print(f"now restart every process with PARTITIONS_{proc.env_name}={result.new}")
            if result.paused:
                print(f"queue {args.queue} is left paused: `tgworkers resume {args.queue}`")
        return 0

    return run_async(settings, body)
