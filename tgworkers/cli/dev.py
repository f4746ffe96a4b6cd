"""`dev`: the whole stack on one machine for a first look, gone again on Ctrl-C.

Starts, in order: a Redis (a reachable `REDIS_URL`, else a private `redis-server`
on a free port in a temp dir), the stub peers (the fakes the tests use) verifying
a freshly generated Ed25519 service key, and then exactly what `run` starts (the
same launcher, so the same telemetry, ledger hook and HTTP server) with every
processor on, short schedules and the HTTP server on a free port. Sample work
keeps flowing and a compact view shows queues and outcomes.

Ctrl-C (SIGINT) or SIGTERM: the worker drains as in `run`, then the stub peers
stop and the private Redis is killed and its directory removed (an `ExitStack`,
so the same happens when start-up fails half-way). Exit status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import anyio
import structlog

from tgworkers.bootstrap.launcher import Launcher, launch
from tgworkers.bootstrap.layer_settings import http_settings
from tgworkers.bootstrap.processors import check_requirements, select_processors
from tgworkers.cli.app import registry_for, setup_logging
from tgworkers.cli.dev_view import DevView, is_terminal
from tgworkers.config import Settings, default_consumer_name, load_settings, merged_environment
from tgworkers.devstack.environment import (
    ISSUER,
    dev_environment,
    generate_admin_token,
    generate_service_key,
)
from tgworkers.devstack.fake_peers import FakePeers
from tgworkers.devstack.redis import DevRedis, free_port, private_redis, reachable
from tgworkers.devstack.sample import TICK_S, SampleWork
from tgworkers.engine.ops import CONNECTION_ERRORS, EngineServices
from tgworkers.errors import ConfigError
from tgworkers.http.console.session import SessionStore
from tgworkers.peers import ServiceKey

log = structlog.get_logger("tgworkers.dev")

CONSOLE_LINK: Final = "<console-link>"
"""Placeholder in the banner, replaced by the one-time link once Redis is up."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dev",
        help="a first look: private Redis, stub peers, every processor, sample work",
        description=(
            "Runs the whole stack on this machine: a private redis-server (unless REDIS_URL "
            "answers), the stub peers, every processor with short schedules, the dashboard, "
            "and sample jobs. Ctrl-C stops everything it started."
        ),
    )
    p.add_argument("--port", type=int, help="dashboard/admin HTTP port (default: PORT or free)")
    p.add_argument("--tick", type=float, default=TICK_S, help="seconds between sample jobs")
    p.add_argument("--plain", action="store_true", help="plain lines even on a terminal")
    p.set_defaults(func=main)


@dataclass(frozen=True, slots=True)
class Stack:
    """What `dev` started, for the banner and the clean-up."""

    redis: DevRedis
    fake: FakePeers
    settings: Settings

    def banner(self) -> list[str]:
        port, prefix = self.settings.port, self.settings.queue_prefix
        token = self.settings.admin_token.reveal() if self.settings.admin_token else ""
        server = self.redis.server
        where = (
            f"private redis-server pid {server.pid}, dir {server.dir}"
            if server is not None
            else "REDIS_URL, queue prefix " + prefix
        )
        url = self.redis.url if server is not None else self.settings.redacted_redis_url()
        redis_env = f"REDIS_URL={shlex.quote(self.redis.url)} " if server is not None else ""
        python = shlex.quote(sys.executable)
        return [
            "tgworkers dev: every processor, stub peers and sample work. Ctrl-C stops it all.",
            f"  redis      {url}  ({where})",
            f"  peers      http://127.0.0.1:{self.fake.port}/<peer>  (stub services)",
            f"  console    {CONSOLE_LINK}  (one-time link, signs you in)",
            f"             or http://127.0.0.1:{port}/ui/ with the ADMIN_TOKEN {token}",
            f"  admin      curl -H 'Authorization: Bearer {token}' "
            f"http://127.0.0.1:{port}/admin/v1/queues",
            f"  stats      {redis_env}QUEUE_PREFIX={prefix} {python} -m tgworkers stats --watch",
        ]


def dev_settings(
    base: dict[str, str], redis: DevRedis, fake: FakePeers, port: int, jwk_text: str
) -> Settings:
    """Settings for this stack: the real environment over dev's defaults, the stack forced."""
    env = dev_environment(
        base, redis_url=redis.url, peer_base_url=f"http://127.0.0.1:{fake.port}",
        jwk_text=jwk_text, port=port,
        admin_token=base.get("ADMIN_TOKEN") or generate_admin_token(),
    )  # fmt: skip
    return load_settings(env, None)


def http_port(args: argparse.Namespace, base: dict[str, str]) -> int:
    if args.port is not None:
        return int(args.port)
    raw = base.get("PORT", "").strip()
    return int(raw) if raw.isdigit() else free_port()


def build_worker(settings: Settings) -> Launcher:
    """The process `run` would build for these settings (same helpers, same checks)."""
    registry = registry_for(None)
    processors = select_processors(registry, settings, None)
    if not processors:
        raise ConfigError("no processor selected: check PROCESSORS / ENABLE_*")
    check_requirements(registry, settings, processors)
    return launch(settings, registry, processors, consumer=default_consumer_name())


def main(args: argparse.Namespace) -> int:
    base = merged_environment(os.environ, Path(".env"))
    if (url := base.get("REDIS_URL")) and not reachable(url):
        print("dev: REDIS_URL does not answer; starting a private redis-server", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(private_redis(base.get("REDIS_URL")))
        jwk_text = generate_service_key()  # the workers sign with it, the stubs verify
        public = ServiceKey.from_jwk_text(jwk_text).public_jwk()
        fake = stack.enter_context(FakePeers(public, issuer=ISSUER))
        settings = dev_settings(base, redis, fake, http_port(args, base), jwk_text)
        setup_logging(settings)
        launcher = build_worker(settings)
        services = launcher.services  # the operator API over the worker's own parts
        sample = SampleWork(fake, services.client.enqueue, tick_s=args.tick)
        stats = services.stats  # the one StatsReader of the process
        live = is_terminal() and not args.plain
        running = frozenset(p.queue for p in launcher.worker.processors)
        banner = Stack(redis, fake, settings).banner()
        view = DevView(stats, sample, banner, queues=running, live=live)
        with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C before the worker listens
            # `run`'s process, plus the sample producer and the view while the worker runs
            launcher.run(
                functools.partial(extras, launcher.worker, services, settings, sample, view)
            )
    print("dev: stopped; nothing left running", file=sys.stderr)
    return 0


class Lifecycle(Protocol):
    """What `dev` reads of the worker the launcher built (`runtime.worker.Worker`).

    Only its start and stop: everything else `dev` uses comes through the operator API
    (`launcher.services`), so the CLI imports nothing of the runtime.
    """

    @property
    def started(self) -> anyio.Event: ...
    @property
    def stop_requested(self) -> anyio.Event: ...


async def console_link(services: EngineServices, settings: Settings) -> str:
    """A one-time URL that opens the console signed in as an operator."""
    sessions = SessionStore(services.redis, services.layout.globals, http_settings(settings))
    token = await sessions.issue_link()
    return f"http://127.0.0.1:{settings.port}/ui/login/link?t={token}"


async def extras(
    worker: Lifecycle,
    services: EngineServices,
    settings: Settings,
    sample: SampleWork,
    view: DevView,
) -> None:
    """Seed and produce sample work and show the view, from start until a stop is asked."""
    await worker.started.wait()
    link = await console_link(services, settings)
    view.banner = tuple(line.replace(CONSOLE_LINK, link) for line in view.banner)
    if not view.live:
        print("\n".join(view.banner), flush=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(view.run)
        tg.start_soon(produce, sample)
        await worker.stop_requested.wait()
        tg.cancel_scope.cancel()


async def produce(sample: SampleWork) -> None:
    """Seed, then one tick at a time; a Redis hiccup is logged and the next tick tries again."""
    try:
        await sample.seed()
    except CONNECTION_ERRORS as exc:
        log.warning("sample.seed_failed", error=type(exc).__name__)
    while True:
        try:
            await sample.run()
        except CONNECTION_ERRORS as exc:
            log.warning("sample.tick_failed", error=type(exc).__name__)
