"""The engine services an operator command runs on, and its error translation.

Commands are thin: each opens the services, calls one engine operation and
prints the result. Everything Redis can throw is translated here, once, into
`OperationError` (exit 1) with one line naming the redacted URL, never the
password; anyio's exception groups are unwrapped so no traceback leaks out.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgspec
from redis import exceptions as rex
from rich.console import Console

from tgworkers.cli.app import registry_for, settings_from_env, setup_logging
from tgworkers.cli.document import with_document
from tgworkers.config import Settings
from tgworkers.engine.layout import Layout
from tgworkers.engine.ops import CONNECTION_ERRORS, EngineServices, connect
from tgworkers.engine.partitions import PartitionRecords
from tgworkers.engine.registry import Registry
from tgworkers.errors import OperationError, TgworkersError

_encoder = msgspec.json.Encoder()


Services = EngineServices
"""The CLI runs on the very services the HTTP API uses (no second implementation)."""


def add_app_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app", help="module:ATTR holding the processors (default: the platform's)"
    )


def context(args: argparse.Namespace) -> tuple[Settings, Registry]:
    """Settings and registry of a command (config errors exit 2 before any output).

    The settings include the config document (`CONFIG_URL` / `CONFIG_FILE`), as
    the workers apply it (cli/document.py).
    """
    settings = settings_from_env()
    registry = registry_for(getattr(args, "app", None))
    setup_logging(settings)
    return with_document(settings, registry), registry


@asynccontextmanager
async def open_services(
    settings: Settings, registry: Registry, *, check_partitions: bool = True
) -> AsyncIterator[Services]:
    """The services on a fresh connection; refuses (exit 2) a stale partition count."""
    redis = connect(
        settings.redis_url.reveal(),
        cluster=settings.redis_cluster,
        socket_timeout_s=10.0,
        max_connections=16,
    )
    try:
        if check_partitions:
            records = PartitionRecords(redis, Layout(settings))
            await records.check(registry.processors.values())
        yield EngineServices.build(redis, registry, settings)
    finally:
        await redis.aclose()  # type: ignore[no-untyped-call,unused-ignore]


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def translate(exc: BaseException, settings: Settings) -> BaseException:
    """Map a failure to the error the CLI reports (one line, no secret)."""
    exc = _leaf(exc)
    if isinstance(exc, TgworkersError | KeyboardInterrupt):
        return exc
    where = settings.redacted_redis_url()
    if isinstance(exc, CONNECTION_ERRORS):
        return OperationError(f"cannot reach Redis at {where} ({type(exc).__name__})")
    if isinstance(exc, rex.RedisError):
        return OperationError(f"Redis at {where} refused the command ({type(exc).__name__})")
    return exc


def run_async(settings: Settings, body: Callable[[], Awaitable[int]]) -> int:
    """Run one command's coroutine, translating Redis failures into exit 1."""
    try:
        return anyio.run(body)
    except BaseException as exc:  # noqa: BLE001 - re-raised, translated, never swallowed
        raise translate(exc, settings) from None


def operator() -> str:
    """The audit stream's `who` for a CLI change: `cli:<OS user>@<host>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's random uid)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


async def audit(svc: Services, action: str, target: str, **details: Any) -> None:
    """Append a CLI change to the audit stream (the console and the API do the same)."""
    await svc.audit.record(
        via="cli", who=operator(), role="admin", action=action, target=target, **details
    )


@asynccontextmanager
async def audited(
    svc: Services, action: str, target: str, details: Callable[[], dict[str, Any]]
) -> AsyncIterator[None]:
    """Audit a long command at its exit, also when it stopped part-way (what it did so far).

    A failure's entry carries `failed` (the error's type); writing it is tried once,
    shielded, and never hides the error that stopped the command.
    """
    try:
        yield
    except BaseException as exc:
        with anyio.CancelScope(shield=True), contextlib.suppress(rex.RedisError, OSError):
            await audit(svc, action, target, **details(), failed=type(exc).__name__)
        raise
    await audit(svc, action, target, **details())


def out_console() -> Console:
    """A console on stdout; wide when piped, so tables are not cut at 80 columns."""
    console = Console(file=sys.stdout)
    return console if console.is_terminal else Console(file=sys.stdout, width=200)


def print_json(value: Any) -> None:
    sys.stdout.write(_encoder.encode(value).decode() + "\n")
    sys.stdout.flush()
