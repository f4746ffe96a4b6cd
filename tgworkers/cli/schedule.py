"""`schedule pause|resume|run-now NAME`: one schedule (issue 26's schedule controls).

The same engine service as `POST /admin/v1/schedules/{name}/…` and the console's
Schedules page; every change is audited (`via=cli`). `schedules` lists them, with
`paused` and the next ticks.
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
from tgworkers.engine.ops.schedule_controls import ScheduleControls, ScheduleState

ACTIONS = {
    "pause": "skip the schedule's ticks until resumed (every replica, within its next tick)",
    "resume": "fire the schedule's ticks again, from the next one on (no backlog)",
    "run-now": "enqueue the schedule's job once, now (its own ticks are unchanged)",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("schedule", help="one schedule: pause, resume, run-now")
    ops = p.add_subparsers(dest="op", required=True, metavar="ACTION")
    for op, text in ACTIONS.items():
        q = ops.add_parser(op, help=text)
        q.add_argument("name", metavar="NAME")
        q.add_argument("--json", action="store_true", help="print the result as JSON")
        add_app_flag(q)
        q.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            controls = svc.schedule_controls
            controls.find(args.name)  # an unknown name exits 2 before any change
            state = await _run(controls, args)
            await audit(svc, f"schedule.{args.op.replace('-', '_')}", args.name,
                        schedule=args.name, job_id=state.job_id)  # fmt: skip
        if args.json:
            print_json(state)
        elif args.op == "run-now":
            print(f"schedule {args.name}: enqueued {state.job_id}")
        else:
            print(f"schedule {args.name} {'paused' if state.paused else 'resumed'}")
        return 0

    return run_async(settings, body)


async def _run(controls: ScheduleControls, args: argparse.Namespace) -> ScheduleState:
    if args.op == "pause":
        return await controls.pause(args.name, by=operator())
    if args.op == "resume":
        return await controls.resume(args.name)
    return await controls.run_now(args.name, by=operator())
