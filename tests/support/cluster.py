"""A local Redis Cluster for tests: N masters (and replicas), real redis-server processes.

`redis-cli --cluster create` builds it in about two seconds; the helpers move a slot
the way `redis-cli --cluster reshard` does (SETSLOT IMPORTING/MIGRATING, MIGRATE
the keys, SETSLOT NODE everywhere) and fail a master over to its replica with
`CLUSTER FAILOVER`, so tests can do both while jobs flow.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis as sync_redis

from tests.support.redis_server import free_port


def cluster_ports(n: int) -> list[int]:
    """Free ports whose cluster bus port (+10000) is valid too."""
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p + 10000 < 65536 and p not in ports:
            ports.append(p)
    return ports


@dataclass
class Cluster:
    """The running nodes; `url` is what REDIS_URL gets."""

    ports: list[int]
    root: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    last_migrate_error: str = ""

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def node(self, port: int) -> sync_redis.Redis:
        return sync_redis.Redis(port=port, decode_responses=True)

    def cli(self, port: int, *args: str) -> str:
        out = subprocess.run(
            ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True,
            timeout=30,
        )  # fmt: skip
        return out.stdout

    def nodes(self) -> list[dict[str, str]]:
        """CLUSTER NODES as dicts: id, port, role (master/slave), master_id, slots."""
        rows = []
        for line in self.cli(self.ports[0], "cluster", "nodes").splitlines():
            parts = line.split()
            role = "master" if "master" in parts[2] else "slave"
            port = parts[1].split("@")[0].rsplit(":", 1)[1]
            rows.append({"id": parts[0], "port": port, "role": role, "master_id": parts[3],
                         "slots": " ".join(parts[8:])})  # fmt: skip
        return rows

    def owner(self, slot: int) -> dict[str, str]:
        """The master node serving `slot` (from CLUSTER SLOTS)."""
        with self.node(self.ports[0]) as n:
            for start, end, master, *_ in n.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = str(master[1])
                    return next(x for x in self.nodes() if x["port"] == port)
        raise AssertionError(f"slot {slot} has no owner")

    def migrate_slot(self, slot: int, dst_port: int) -> int:
        """Move one slot and its keys to the master on `dst_port`; returns keys moved."""
        src = self.owner(slot)
        dst = next(x for x in self.nodes() if x["port"] == str(dst_port))
        s, d = int(src["port"]), int(dst["port"])
        moved = 0
        with self.node(s) as node:
            for _ in range(20):
                self.cli(d, "cluster", "setslot", str(slot), "importing", src["id"])
                self.cli(s, "cluster", "setslot", str(slot), "migrating", dst["id"])
                try:
                    while keys := node.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 50):
                        node.execute_command(
                            "MIGRATE", "127.0.0.1", d, "", 0, 10000, "REPLACE", "KEYS", *keys
                        )
                        moved += len(keys)
                    break
                except sync_redis.ResponseError as exc:  # seen: the target answering MOVED
                    self.last_migrate_error = str(exc)
                    time.sleep(0.1)
        for x in self.nodes():
            if x["role"] == "master":
                self.cli(int(x["port"]), "cluster", "setslot", str(slot), "node", dst["id"])
        return moved

    def failover(self, master_port: int) -> int:
        """CLUSTER FAILOVER on a replica of the master on `master_port`; returns its port.

        A manual failover gives up when the master does not answer in time (a loaded
        machine); it is then asked again, up to three times.
        """
        master = next(x for x in self.nodes() if x["port"] == str(master_port))
        replica = next(x for x in self.nodes() if x["master_id"] == master["id"])
        port = int(replica["port"])
        for _ in range(3):
            self._wait_synced(port)
            self.cli(port, "cluster", "failover")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                roles = {x["port"]: x["role"] for x in self.nodes()}
                if roles[replica["port"]] == "master" and roles[str(master_port)] == "slave":
                    return port
                time.sleep(0.1)
        raise AssertionError("failover did not complete after three CLUSTER FAILOVER")

    def take_slot_out(self, slot: int) -> int:
        """Unassign `slot` on every node: its commands get CLUSTERDOWN; returns its owner.

        The owner keeps the slot's keys; `give_slot_back` serves them again.
        """
        owner = int(self.owner(slot)["port"])
        for p in self.ports:
            self.cli(p, "cluster", "delslots", str(slot))
        return owner

    def give_slot_back(self, slot: int, port: int) -> None:
        self.cli(port, "cluster", "addslots", str(slot))
        self.wait_ok()

    def _wait_synced(self, replica_port: int) -> None:
        deadline = time.monotonic() + 20
        while "master_link_status:up" not in self.cli(replica_port, "info", "replication"):
            if time.monotonic() > deadline:
                raise AssertionError(f"replica {replica_port} never synced with its master")
            time.sleep(0.1)

    def wait_replicas(self, per_master: int) -> None:
        """Every master has its replicas attached and in sync (after `--cluster create`)."""
        deadline = time.monotonic() + 30
        while True:
            nodes = self.nodes()
            masters = [x for x in nodes if x["role"] == "master"]
            replicas = [x for x in nodes if x["role"] == "slave"]
            attached = all(
                sum(r["master_id"] == m["id"] for r in replicas) >= per_master for m in masters
            )
            if attached:
                break
            if time.monotonic() > deadline:
                raise AssertionError("replicas did not attach to every master")
            time.sleep(0.1)
        for r in replicas:
            self._wait_synced(int(r["port"]))

    def wait_ok(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            infos = [self.cli(p, "cluster", "info") for p in self.ports]
            if all("cluster_state:ok" in i for i in infos):
                return
            time.sleep(0.1)
        raise AssertionError("cluster did not reach cluster_state:ok")


def _wait_ping(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                             text=True, check=False)  # fmt: skip
        if out.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise AssertionError(f"redis-server on {port} did not start")


@contextmanager
def running_cluster(masters: int = 3, replicas: int = 0) -> Iterator[Cluster]:
    """A fresh cluster of `masters` masters with `replicas` replicas each."""
    cluster = Cluster(
        cluster_ports(masters * (1 + replicas)), Path(tempfile.mkdtemp(prefix="tgw-cl-"))
    )
    try:
        for p in cluster.ports:
            cluster.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled",
                 "yes", "--cluster-config-file", str(cluster.root / f"{p}.conf"),
                 "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
                 "--dir", str(cluster.root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        for p in cluster.ports:
            _wait_ping(p)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in cluster.ports],
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        cluster.wait_ok()
        if replicas:
            cluster.wait_replicas(replicas)
        yield cluster
    finally:
        for proc in cluster.procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(cluster.root, ignore_errors=True)
