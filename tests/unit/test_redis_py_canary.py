"""A canary for the redis-py internals that `engine/wire/cluster_client.py` leans on.

`EngineCluster` subclasses redis-py's asyncio `RedisCluster` and its `Connection`, and
reaches into `ClusterNode`'s pool (`_free`, `update_active_connections_for_reconnect`)
to close idle sockets without touching busy ones. None of that is public API: a
release can rename or reshape it, and the failure would show up only as a stalled
worker during a failover. Each test below names one assumption; when one fails,
read the release's `asyncio/cluster.py` before moving the lock (./scripts/lock) and
adjust `cluster_client.py` or pin redis-py below the release.

Proven with redis-py 8.1.x and 8.2.x. 8.1 forced a slots refresh by calling its own
`aclose()` from inside a failing command (the reason the override exists); 8.2 asks
for a refresh instead (`_request_refresh`) and calls `aclose()` only to close. The
override is right under both: it closes what is idle and lets what is busy finish.
"""

from __future__ import annotations

import collections
import inspect
from importlib.metadata import version

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode, NodesManager
from redis.asyncio.connection import Connection, SSLConnection

from tgworkers.engine.wire.cluster_client import (
    ClusterConnection,
    ClusterSSLConnection,
    EngineCluster,
)

PROVEN = ("8.1.", "8.2.")


def test_the_installed_redis_py_is_one_the_override_was_proven_with() -> None:
    installed = version("redis")
    assert installed.startswith(PROVEN), (
        f"redis-py {installed} is not one cluster_client.py was proven with ({PROVEN}); "
        "run the cluster suites (tests/integration/engine/test_cluster*.py, -m slow too) "
        "against it, then add it to PROVEN here and to pyproject's comment"
    )


def test_the_node_pool_keeps_idle_connections_in_a_deque_named_free() -> None:
    node = ClusterNode("127.0.0.1", 6379)
    assert isinstance(node._free, collections.deque), "ClusterNode._free is no longer a deque"
    assert isinstance(node._connections, list), "ClusterNode._connections is no longer a list"
    assert callable(getattr(node, "update_active_connections_for_reconnect", None)), (
        "ClusterNode.update_active_connections_for_reconnect() is gone: busy connections "
        "can no longer be marked to close on release"
    )
    assert node.connection_class is Connection, "ClusterNode.connection_class moved"


def test_a_connection_can_be_closed_without_waiting_and_says_whether_it_is_open() -> None:
    params = inspect.signature(Connection.disconnect).parameters
    assert "nowait" in params, "Connection.disconnect(nowait=...) is gone"
    assert isinstance(inspect.getattr_static(Connection, "is_connected"), property), (
        "Connection.is_connected is no longer a property: _ReportsClosedSocket uses it "
        "to tell a socket closed under a command from a real AttributeError"
    )
    for name in ("send_packed_command", "read_response"):
        assert inspect.iscoroutinefunction(getattr(Connection, name)), (
            f"Connection.{name} is no longer a coroutine function: _ReportsClosedSocket wraps it"
        )
    assert callable(getattr(Connection, "mark_for_reconnect", None)), (
        "Connection.mark_for_reconnect() is gone: a busy connection can no longer be closed "
        "on release"
    )


def test_the_client_passes_its_connection_class_to_every_node() -> None:
    client = EngineCluster(host="127.0.0.1", port=6379)
    assert client.connection_kwargs["connection_class"] is ClusterConnection, (
        "RedisCluster.connection_kwargs no longer carries connection_class to the nodes"
    )
    manager = client.nodes_manager
    assert isinstance(manager, NodesManager)
    assert isinstance(manager.nodes_cache, dict), "NodesManager.nodes_cache is not a dict"
    assert isinstance(manager.startup_nodes, dict), "NodesManager.startup_nodes is not a dict"
    assert manager.startup_nodes, "the startup nodes are no longer built in __init__"
    for node in manager.startup_nodes.values():
        assert node.connection_class is ClusterConnection
    assert hasattr(client, "_initialize"), (
        "RedisCluster._initialize (the flag that makes the next command re-read the "
        "slots) is gone: EngineCluster.aclose() sets it"
    )


def test_tls_clients_keep_tls_connections() -> None:
    client = EngineCluster(host="127.0.0.1", port=6379, ssl=True)
    assert issubclass(client.connection_kwargs["connection_class"], SSLConnection)
    assert client.connection_kwargs["connection_class"] is ClusterSSLConnection


def test_the_periodic_full_reset_on_moved_can_be_switched_off() -> None:
    params = inspect.signature(RedisCluster.__init__).parameters
    assert "reinitialize_steps" in params, "RedisCluster(reinitialize_steps=...) is gone"
    client = EngineCluster(host="127.0.0.1", port=6379, reinitialize_steps=0)
    assert client.reinitialize_steps == 0
