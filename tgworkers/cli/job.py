"""`job show|cancel|delete|run-now|requeue QUEUE ID`: one job by id (issue 26's single-job actions).

The same engine service as `POST /admin/v1/queues/{q}/jobs/{id}/…` and the console's
job page; every change is audited (`via=cli`). A job in the wrong state for the
action exits 2 naming where it is and what to do instead.
"""

from __future__ import annotations

import argparse

from tgworkers.cli.services import (
    add_app_flag,
    audit,
    context,
    open_services,
    operator,
    print_json,
    run_async,
)
from tgworkers.engine.ops.job_actions import JobActionResult, JobActions, JobNotFoundError
from tgworkers.errors import InputError

ACTIONS = {
    "show": "print one live job (ready, in flight, delayed or dead) as JSON",
    "cancel": "interrupt a running job; it is dead-lettered with reason 'cancelled by <you>'",
    "delete": "delete a ready or delayed job (not one in flight: cancel it)",
    "run-now": "make a delayed job due now",
    "requeue": "put a dead-lettered job back onto its queue (a passed deadline is dropped)",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("job", help="one job by id: show, cancel, delete, run-now")
    ops = p.add_subparsers(dest="op", required=True, metavar="ACTION")
    for op, text in ACTIONS.items():
        q = ops.add_parser(op, help=text)
        q.add_argument("queue", metavar="QUEUE")
        q.add_argument("id", metavar="ID")
        if op == "delete":
            q.add_argument("--yes", action="store_true", help="confirm: deleted for good")
        if op == "requeue":
            q.add_argument("--reset-attempts", action="store_true", help="start at attempt 1")
        if op != "show":
            q.add_argument("--json", action="store_true", help="print the result as JSON")
        add_app_flag(q)
        q.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    registry.queue(args.queue)
    if args.op == "delete" and not args.yes:
        raise InputError(f"delete removes {args.id} for good: pass --yes to confirm")

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            if args.op == "show":
                job = await svc.browser.find(args.queue, args.id)
                if job is None:
                    raise JobNotFoundError(f"no job {args.id!r} in {args.queue}")
                print_json(job)
                return 0
            result = await _run(svc.jobs, args)
            await audit(svc, f"job.{args.op.replace('-', '_')}", f"{args.queue}/{args.id}",
                        queue=args.queue, job_id=args.id, state=result.state)  # fmt: skip
        if args.json:
            print_json(result)
        else:
            print(f"{args.id}: {args.op} done, now {result.state}")
        return 0

    return run_async(settings, body)


async def _run(actions: JobActions, args: argparse.Namespace) -> JobActionResult:
    if args.op == "cancel":
        return await actions.cancel(args.queue, args.id, by=operator())
    if args.op == "delete":
        return await actions.delete(args.queue, args.id)
    if args.op == "requeue":
        return await actions.requeue(
            args.queue, args.id, by=operator(), reset_attempts=args.reset_attempts
        )
    return await actions.run_now(args.queue, args.id)
