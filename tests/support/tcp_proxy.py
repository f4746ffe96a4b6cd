"""A TCP proxy between workers and Redis that misbehaves on demand.

It runs its own event loop in a thread, so a test can turn faults on and off
while worker subprocesses talk through it:
- `latency_s`: every chunk waits this long before it is forwarded;
- `black_hole()`: nothing is forwarded either way and nothing is closed (no RST,
  no FIN), like a network partition or a crashed host: only socket timeouts help;
- `reset_all()`: every open connection is aborted with an RST;
- `heal()`: back to forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any


class TcpProxy:
    """Listens on 127.0.0.1 (`port`) and forwards to `upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.latency_s = 0.0
        self._holes = False
        self._conns: set[asyncio.StreamWriter] = set()
        self._serving: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tcp-proxy")
        self.port = 0
        self.connections = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def black_hole(self) -> None:
        self._holes = True

    def heal(self) -> None:
        self._holes = False
        self.latency_s = 0.0

    def reset_all(self) -> None:
        self._call(self._reset_all())

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:  # awaited by `_shutdown`, so none is pending when the loop stops
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _abort(writer)
            return
        self._conns |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._conns.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            while self._holes:  # swallow time, forward nothing, close nothing
                await asyncio.sleep(0.05)
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def _reset_all(self) -> None:
        for w in list(self._conns):
            _abort(w)
        self._conns.clear()

    async def _shutdown(self) -> None:
        self._server.close()
        await self._reset_all()
        if self._serving:  # their pipes end on the aborted sockets; a black hole's never do
            _, stuck = await asyncio.wait(self._serving, timeout=1)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0), not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
