"""`enqueue NAME PAYLOAD_JSON [--id] [--at ISO8601|MS] [--delay SECONDS] [--expires-at …]`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from tgworkers.cli.services import (
    add_app_flag,
    audit,
    context,
    open_services,
    print_json,
    run_async,
)
from tgworkers.engine.client import EnqueueResult
from tgworkers.errors import InputError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("enqueue", help="validate a payload and enqueue one job")
    p.add_argument("name", help="job type, e.g. cfb.settle")
    p.add_argument("payload", metavar="PAYLOAD_JSON", help="the payload as a JSON object")
    p.add_argument("--id", help="job id (default: derived by the job type, else random)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", help="run at: ISO 8601 time or Unix ms")
    when.add_argument("--delay", type=float, metavar="SECONDS", help="run after this many seconds")
    p.add_argument(
        "--expires-at", metavar="ISO8601|MS",
        help="deadline: delivered after it, the job is dead-lettered 'expired', not run",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_app_flag(p)
    p.set_defaults(func=main)


def parse_at(raw: str, flag: str = "--at") -> int:
    """`--at`: Unix ms (digits) or an ISO 8601 time; a time without zone is UTC."""
    text = raw.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag}: expected an ISO 8601 time or Unix ms, got {raw!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    registry.job_type(args.name)
    run_at = parse_at(args.at) if args.at else None
    expires_at = parse_at(args.expires_at, "--expires-at") if args.expires_at else None
    if args.delay is not None and args.delay < 0:
        raise InputError("--delay: expected a number of seconds >= 0")

    async def body() -> int:
        async with open_services(settings, registry) as svc:
            result = await svc.client.enqueue(
                args.name, args.payload, id=args.id, run_at_ms=run_at, delay_s=args.delay,
                expires_at_ms=expires_at,
            )  # fmt: skip
            await audit(svc, "enqueue", args.name, job=args.name, queue=result.queue,
                        job_id=result.id, created=result.created)  # fmt: skip
        show(result, as_json=args.json)
        return 0

    return run_async(settings, body)


def show(result: EnqueueResult, *, as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        print(result.id if result.created else f"{result.id} (already exists)")
