"""`backfill NAME [--file F | -] [--rate N] [--dry-run] [--json]`: one job per line.

Streams: lines are read, validated and sent in chunks of at most 500 through
`Client.enqueue_many`, so memory stays flat for a million lines. A bad line is
reported on stderr with its number and skipped; the others go on. Job types
that derive their id from the payload make a rerun of the same file create
nothing twice (the enqueue script's uniqueness does that, not this command).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Final

import anyio
import msgspec

from tgworkers.cli.progress import Meter
from tgworkers.cli.services import (
    add_app_flag,
    audited,
    context,
    open_services,
    print_json,
    run_async,
)
from tgworkers.engine.client import CHUNK, Client, EnqueueRequest, encode_payload
from tgworkers.engine.registry import JobType
from tgworkers.errors import InputError

MAX_REPORTED_CHARS: Final = 300


class Summary(msgspec.Struct, kw_only=True, rename="camel"):
    """The last line `backfill` prints (`--json`)."""

    name: str
    lines: int = 0
    valid: int = 0
    created: int = 0
    existing: int = 0
    bad: int = 0
    dry_run: bool = False


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("backfill", help="enqueue one job per JSON line of a file or stdin")
    p.add_argument("name", help="job type")
    p.add_argument("stdin", nargs="?", choices=["-"], help="- reads stdin (the default)")
    p.add_argument("--file", default="-", help="JSON lines file, or - for stdin (default)")
    p.add_argument("--rate", type=int, metavar="N", help="enqueue at most N jobs a second")
    p.add_argument("--dry-run", action="store_true", help="validate only; enqueue nothing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_app_flag(p)
    p.set_defaults(func=main)


@contextmanager
def source(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"--file: cannot read {path}: {exc.strerror}") from None
    with handle:
        yield handle


class Backfill:
    """Validates lines and sends them in rate-shaped chunks."""

    def __init__(self, jt: JobType[Any], client: Client | None, *, rate: int | None) -> None:
        self.jt = jt
        self.client = client
        self.rate = rate
        self.chunk_size = min(CHUNK, rate) if rate else CHUNK
        self.summary = Summary(name=jt.name, dry_run=client is None)
        self._started = time.monotonic()
        self._sent = 0

    def validate(self, number: int, raw: bytes, max_bytes: int) -> EnqueueRequest | None:
        try:
            _, value = encode_payload(self.jt, raw, max_bytes=max_bytes)
        except InputError as exc:
            self.summary.bad += 1
            print(f"line {number}: {str(exc)[:MAX_REPORTED_CHARS]}", file=sys.stderr)
            return None
        self.summary.valid += 1
        return EnqueueRequest(name=self.jt.name, payload=value)

    async def send(self, chunk: list[EnqueueRequest]) -> None:
        if self.client is None or not chunk:
            return
        results = await self.client.enqueue_many(chunk)
        created = sum(r.created for r in results)
        self.summary.created += created
        self.summary.existing += len(results) - created
        self._sent += len(chunk)
        if self.rate:
            ahead_s = self._started + self._sent / self.rate - time.monotonic()
            if ahead_s > 0:
                await anyio.sleep(ahead_s)

    async def run(self, lines: IO[bytes], max_bytes: int, meter: Meter) -> Summary:
        chunk: list[EnqueueRequest] = []
        for number, raw in enumerate(lines, start=1):
            self.summary.lines = number
            if not raw.strip():
                continue
            request = self.validate(number, raw, max_bytes)
            if request is not None:
                chunk.append(request)
            if len(chunk) >= self.chunk_size:
                await self.send(chunk)
                meter.advance(len(chunk), bad=self.summary.bad)
                chunk = []
        await self.send(chunk)
        meter.advance(len(chunk), bad=self.summary.bad)
        return self.summary


def report(summary: Summary, *, as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    s = summary
    verb = "would enqueue" if s.dry_run else "enqueued"
    done = f"{s.valid} valid" if s.dry_run else f"{s.created} created, {s.existing} existing"
    print(f"backfill {s.name}: {verb} from {s.lines} lines: {done}, {s.bad} bad lines skipped")


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    jt = registry.job_type(args.name)
    if args.stdin == "-" and args.file != "-":
        raise InputError("pass --file FILE or -, not both")
    if args.rate is not None and args.rate < 1:
        raise InputError("--rate: expected a number of jobs a second >= 1")

    async def body() -> int:
        with source(args.file) as lines, Meter(f"backfill {jt.name}", total=None) as meter:
            if args.dry_run:
                summary = await Backfill(jt, None, rate=None).run(
                    lines, settings.max_payload_bytes, meter
                )
            else:
                async with open_services(settings, registry) as svc:
                    backfill = Backfill(jt, svc.client, rate=args.rate)
                    counts = lambda: msgspec.structs.asdict(backfill.summary)  # noqa: E731
                    async with audited(svc, "backfill", jt.name, counts):
                        summary = await backfill.run(lines, settings.max_payload_bytes, meter)
        report(summary, as_json=args.json)
        return 0

    return run_async(settings, body)
