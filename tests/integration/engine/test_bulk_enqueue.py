"""Bulk enqueue: chunks sent while the next is built, all or nothing, and dedupe of a
call that redis-py sends twice (docs/engine.md, "Dedupe of engine-made ids")."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from tgworkers.engine.client import CHUNK, Client, EnqueueRequest
from tgworkers.engine.layout import Layout
from tgworkers.engine.wire.connection import connect
from tgworkers.errors import InputError


class LoseOneReply:
    """A proxy to Redis that, once armed, lets the next EVALSHA reach Redis and run, then
    drops its reply and resets the connection: the reply lost with its connection."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.armed = False
        self.lost = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> LoseOneReply:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in self._writers:
            w.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}
        doomed = asyncio.Event()

        async def to_redis() -> None:
            while data := await reader.read(65536):
                if self.armed and b"EVALSHA" in data:
                    self.armed = False
                    doomed.set()
                up_writer.write(data)
                await up_writer.drain()

        async def to_client() -> None:
            while data := await up_reader.read(65536):
                if doomed.is_set():  # the script ran: its reply never arrives
                    self.lost += 1
                    writer.transport.abort()
                    up_writer.close()
                    return
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(OSError):
            await asyncio.gather(to_redis(), to_client())
        writer.close()


@pytest.mark.promise(5)
async def test_a_call_sent_again_after_its_reply_was_lost_creates_no_job_twice(
    redis, redis_url, registry, settings
):
    """redis-py's retry (connection.py: `retries=2` on connection errors and timeouts)
    sends the same EVALSHA again when a reply is lost with its connection, after the
    script ran: the same engine-made ids, again. Only the dedupe read of the state record
    stops the second run; skipping dedupe for `auto_id` jobs would run each job twice."""
    url = urlsplit(redis_url)
    proxy = await LoseOneReply(url.port or 6379).start()
    via: Redis = connect(
        url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(), socket_timeout_s=5
    )
    try:
        client = Client(via, registry, settings)
        await client.enqueue("test.work", {"n": 0})  # scripts loaded, partitions checked
        proxy.armed = True
        results = await client.enqueue_many(
            EnqueueRequest(name="test.work", payload={"n": n}) for n in range(1, 4)
        )
    finally:
        await via.aclose()
        await proxy.close()
    assert proxy.lost == 1, "the reply was not lost: the test proved nothing"
    (pk,) = Layout(settings).partitions(registry.processor_of["test.work"])
    assert await redis.xlen(pk.ready) == 4  # three jobs and the warm-up, each once
    ids = {r.id for r in results}
    assert len(ids) == 3
    records = [await redis.hget(pk.jobs, i) for i in ids]
    assert all(r is not None and r.startswith(b"r:") for r in records)
    # the replay answers "already there" for the jobs its lost first run created
    assert [r.created for r in results] == [False, False, False]


@pytest.mark.promise(7)
async def test_a_bad_request_after_several_chunks_enqueues_nothing(redis, client, settings):
    """Chunks go out while later ones are built, so every request is checked first."""
    good = [EnqueueRequest(name="test.work", payload={"n": n}) for n in range(3 * CHUNK)]
    bad = EnqueueRequest(name="test.work", payload={"n": "seven"})
    with pytest.raises(InputError):
        await client.enqueue_many([*good, bad])
    (pk,) = Layout(settings).partitions(client.registry.processor_of["test.work"])
    assert not await redis.exists(pk.ready, pk.jobs)


@pytest.mark.promise(5)
async def test_a_bulk_enqueue_over_several_chunks_answers_each_job_in_order(
    redis, client, settings
):
    n = 2 * CHUNK + 7
    reqs = [EnqueueRequest(name="test.work", payload={"n": i}, id=f"j{i}") for i in range(n)]
    reqs.insert(CHUNK + 3, EnqueueRequest(name="test.work", payload={"n": 5}, id="j5"))
    results = await client.enqueue_many(reqs)
    assert [r.id for r in results] == [r.id for r in reqs]
    assert [r.created for r in results].count(False) == 1
    assert not results[CHUNK + 3].created  # the same id in a later chunk
    (pk,) = Layout(settings).partitions(client.registry.processor_of["test.work"])
    assert await redis.xlen(pk.ready) == n
