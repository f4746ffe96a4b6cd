"""`python -m tgworkers.testing.stack`: a private stack for producers in other languages.

A Node (or Go, or shell) test starts this, reads ONE JSON line from stdout, then
drives the stack with JSON lines on stdin; closing stdin stops everything:

    {"redisUrl": "redis://127.0.0.1:PORT/0", "prefix": "tgw", "workerPid": 1234}

It runs a private `redis-server` (or `--redis-url`), the fake peers on loopback,
and a real worker subprocess (`python -m tgworkers run --processors ...`) that
reaches them. Commands (one answer line each):
- `{"op": "seed", "kind": "bet", "id": "b_1", "tEndMs": 0}`: seed the fakes;
- `{"op": "requests", "peer": "playhub", "path": "/internal/v1/cfb/settle"}`: the log;
- `{"op": "restart", "env": {"PARTITIONS_CFB_SETTLE": "5"}}`: stop the worker
  (SIGTERM, graceful) and start it again with these variables added (after a
  `tgworkers repartition`, as a rollout would): `{"workerPid": …}`;
- `{"op": "ping"}`: `{"ok": true}`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import redis

from tgworkers.devstack.redis import RedisServer
from tgworkers.engine.layout import Layout
from tgworkers.engine.settings import EngineSettings
from tgworkers.testing.harness import QUIET
from tgworkers.testing.peers import FakePeerService


@contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.close()


def _answer(peers: FakePeerService, cmd: dict[str, Any]) -> Any:
    op = cmd.get("op")
    if op == "ping":
        return {"ok": True}
    if op == "seed" and cmd.get("kind") == "bet":
        peers.state.add_bet(str(cmd["id"]), t_end_ms=int(cmd.get("tEndMs", 0)))
        return {"ok": True}
    if op == "requests":
        return [
            {
                "method": r.method,
                "path": r.path,
                "idempotencyKey": r.idempotency_key,
                "body": r.body,
                "requestId": r.headers.get("x-request-id"),
            }
            for r in peers.requests(cmd.get("peer"), cmd.get("path"))
        ]
    return {"error": f"unknown command {cmd!r}"}


START_TIMEOUT_S: Final = 60.0


class _Worker:
    """The stack's worker subprocess, restartable with more variables."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str]) -> None:
        self.args, self.env = args, env
        self.proc = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        """Starts the worker and returns once it has registered its heartbeat.

        A producer's test may act on the workers at once (a `repartition` waits only for
        the workers it sees): a worker still importing on a loaded machine is not there yet.
        """
        since_ms = int(time.time() * 1000)
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tgworkers", "run", "--processors", self.args.processors],
            env=self.env,
            stdout=subprocess.DEVNULL if self.args.quiet else sys.stderr,
            stderr=subprocess.STDOUT,
        )
        key = Layout(EngineSettings(queue_prefix=self.env["QUEUE_PREFIX"])).globals.workers
        with redis.Redis.from_url(self.env["REDIS_URL"]) as client:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not client.zcount(key, since_ms, "+inf"):
                if proc.poll() is not None:
                    raise RuntimeError(f"the stack's worker exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    proc.kill()
                    raise RuntimeError(f"the stack's worker did not start in {START_TIMEOUT_S} s")
                time.sleep(0.05)
        return proc

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def restart(self, more: dict[str, str]) -> dict[str, Any]:
        self.stop()
        self.env = {**self.env, **more}
        self.proc = self._start()
        return {"workerPid": self.proc.pid}


def serve(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    peers = FakePeerService().start()
    try:
        with _redis(args.redis_url) as url:
            env = {
                **os.environ,
                **QUIET,
                **peers.env(),
                "REDIS_URL": url,
                "QUEUE_PREFIX": args.prefix,
                "LOG_FORMAT": "json",
                **dict(args.env),
            }
            worker = _Worker(args, env)
            try:
                started = {"redisUrl": url, "prefix": args.prefix, "workerPid": worker.proc.pid}
                stdout.write(json.dumps(started) + "\n")
                stdout.flush()
                for line in stdin:
                    if not line.strip():
                        continue
                    cmd = json.loads(line)
                    if cmd.get("op") == "restart":
                        answer = worker.restart({k: str(v) for k, v in cmd["env"].items()})
                    else:
                        answer = _answer(peers, cmd)
                    stdout.write(json.dumps(answer) + "\n")
                    stdout.flush()
            finally:
                worker.stop()
    finally:
        peers.stop()
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tgworkers.testing.stack")
    parser.add_argument("--processors", required=True, help="comma list, as `run --processors`")
    parser.add_argument("--prefix", default="tgw", help="QUEUE_PREFIX")
    parser.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    parser.add_argument("--env", type=_pair, action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--quiet", action="store_true", help="drop the worker's log")
    return serve(parser.parse_args(argv), sys.stdin, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
