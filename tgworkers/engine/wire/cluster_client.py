"""A Redis Cluster client that never closes a socket under a command in flight.

redis-py 8.1's asyncio `RedisCluster` forces a slots refresh by calling its own
`aclose()` from inside a failing command: on CLUSTERDOWN, on a slot not covered, on
every fifth MOVED (`reinitialize_steps`) and when a pipeline meets a connection
error. That `aclose()` closes every connection of every node, including the ones
other tasks are writing to or reading from at that moment. During a slot migration
or a failover under load those tasks fail with `AttributeError: 'NoneType' object
has no attribute 'writelines'` (not a Redis error, so nothing retries it; a
handler's command fails its attempt) and the workers were seen to stop making
progress (upstream: redis/redis-py#3546, #3835).

Two changes, both local to this module:

- `EngineCluster.aclose()` closes what is idle *now* and marks what is in use, so
  each in-flight command finishes on its socket and the socket is closed as it is
  released (redis-py's own lazy-reconnect path). The next command re-reads the slots.
  The same call is the process's real close at shutdown, when nothing is in flight.
- `ClusterConnection` reports a socket closed under it as `ConnectionError`, which
  the cluster client retries with a topology refresh, instead of `AttributeError`.
  Belt and braces: redis-py's failed `initialize()` still closes every node directly.

`reinitialize_steps=0` also stops the periodic full reset on MOVED: each MOVED
patches the one slot it names (what a migration or failover needs), and a
connection error still triggers a full refresh.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from redis import exceptions as rex
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import Connection, SSLConnection


class _ReportsClosedSocket(Connection):
    """A socket closed by another task mid-command is a ConnectionError, not an AttributeError.

    redis-py sets the reader and writer to None when it closes a connection; a command
    already past its connect step then calls a method on None. Only that case is
    translated: an AttributeError while the socket is open is a bug and stays one.
    """

    def _closed(self) -> rex.ConnectionError:
        return rex.ConnectionError(f"{self.host}:{self.port} closed by a topology refresh")

    async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().send_packed_command(*args, **kwargs)
        except AttributeError:
            if self.is_connected:
                raise
            raise self._closed() from None

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except AttributeError:
            if self.is_connected:
                raise
            raise self._closed() from None


class ClusterConnection(_ReportsClosedSocket):
    """A plain TCP connection to a cluster node."""


class ClusterSSLConnection(_ReportsClosedSocket, SSLConnection):
    """A TLS connection to a cluster node (`rediss://`)."""


class EngineCluster(RedisCluster):
    """`RedisCluster` whose close (its own topology reset included) spares commands in flight."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tls = issubclass(self.connection_kwargs["connection_class"], SSLConnection)
        cls = ClusterSSLConnection if tls else ClusterConnection
        self.connection_kwargs["connection_class"] = cls  # shared with the nodes manager
        for node in self._every_node():  # the startup nodes, built before any connection
            node.connection_class = cls

    async def aclose(self) -> None:
        """Close idle connections now and busy ones as their command ends; refresh slots next.

        Called by redis-py itself from inside a failing command, and by the worker at
        shutdown; the same rule is right for both. Idle connections are taken out of
        the free list while they close, so no other task can pick one up half closed;
        they go back closed and reconnect on their next use.
        """
        self._initialize = True  # the next command re-reads the cluster's slots
        for node in self._every_node():
            node.update_active_connections_for_reconnect()  # in use: closed on release
            idle = list(node._free)  # noqa: SLF001 - the pool has no public view of its idle set
            node._free.clear()  # noqa: SLF001
            try:
                for connection in idle:
                    await connection.disconnect(nowait=True)
            finally:
                node._free.extend(idle)  # noqa: SLF001

    def _every_node(self) -> Iterable[ClusterNode]:
        manager = self.nodes_manager
        seen: dict[int, ClusterNode] = {}
        for node in (*manager.nodes_cache.values(), *manager.startup_nodes.values()):
            seen.setdefault(id(node), node)
        return seen.values()
