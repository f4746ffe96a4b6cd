"""Every Redis key and stream field name the engine uses, in one place.

A queue is split into `partitions` partitions; every key of one partition shares
one hash tag, `{<prefix>:<queue>:<partition>}`, so each Lua script touches a single
slot and the engine runs unchanged on Redis Cluster. Keys that span queues (the
control hash, the worker registry, the schedule ledger) live under `{<prefix>}`
and are only touched by single-key commands.

The partition of a job is `sha256(partition_key)[0:4]` read as a big-endian
unsigned integer, modulo the partition count; a job without a partition key uses
its job id. docs/wire-format.md gives the same rule for producers in other
languages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

GROUP: Final = "tgworkers"
"""The consumer group every worker of every queue reads through."""


def partition_of(partition_key: str, partitions: int) -> int:
    """The partition a key belongs to (documented in docs/wire-format.md)."""
    return partition_of_bytes(partition_key.encode(), partitions)


def partition_of_bytes(partition_key: bytes, partitions: int) -> int:
    """`partition_of` for a key as stored (any bytes, UTF-8 or not)."""
    if partitions <= 1:
        return 0
    digest = hashlib.sha256(partition_key).digest()
    return int.from_bytes(digest[:4], "big") % partitions


ENGINE_KEY_NAMES: Final = frozenset(
    {"ready", "delayed", "jobs", "done", "dlq", "stats", "steps", "lock", "wake", "finished"}
)
"""The partition keys the engine owns (the first `:`-part); jobs get other names."""


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """The keys of one queue partition, all under one hash tag."""

    prefix: str
    queue: str
    partition: int
    dlq_suffix: str = ":dlq"

    @property
    def tag(self) -> str:
        return f"{{{self.prefix}:{self.queue}:{self.partition}}}"

    @property
    def ready(self) -> str:
        """Stream of ready jobs, read through the consumer group `GROUP`."""
        return f"{self.tag}:ready"

    @property
    def delayed(self) -> str:
        """Sorted set: job id -> due time (Unix ms)."""
        return f"{self.tag}:delayed"

    @property
    def delayed_jobs(self) -> str:
        """Hash: job id -> the delayed job's stream fields as a JSON array of strings."""
        return f"{self.tag}:delayed:jobs"

    @property
    def jobs(self) -> str:
        """Hash: job id -> state of every live job: `r:<entry>`, `d` or `x:<dlq entry>`."""
        return f"{self.tag}:jobs"

    @property
    def done(self) -> str:
        """Sorted set: producer-chosen job id -> finish time, kept `DEDUPE_TTL_S`."""
        return f"{self.tag}:done"

    @property
    def finished(self) -> str:
        """Hash: producer-chosen job id -> its finish record (JSON), kept `DEDUPE_TTL_S`.

        With `finished_at` (zset, id -> finish ms: the window) and `finished_ids` (zset,
        score 0: the lex index a prefix search reads); finished.py.
        """
        return f"{self.tag}:finished"

    @property
    def finished_at(self) -> str:
        return f"{self.tag}:finished:at"

    @property
    def finished_ids(self) -> str:
        return f"{self.tag}:finished:ids"

    @property
    def dlq(self) -> str:
        """Dead-letter stream of this partition (`DLQ_SUFFIX`)."""
        return f"{self.tag}{self.dlq_suffix}"

    @property
    def stats(self) -> str:
        """Hash of running totals: processed, failed, retried, dead, lost."""
        return f"{self.tag}:stats"

    @property
    def steps(self) -> str:
        """Hash: job id -> JSON list of the job's finished steps (cleared when done)."""
        return f"{self.tag}:steps"

    def job_key(self, name: str) -> str:
        """A key a job type owns in this partition: `{tag}:<name>` (`ctx.key(name)`).

        Under the partition's hash tag, so a job's own data sits in the same Cluster
        slot as its queue. The engine's own names are refused, so a job can never
        write over a queue's stream, sets or records.
        """
        head = name.split(":", 1)[0]
        if not name or head in ENGINE_KEY_NAMES:
            raise ValueError(f"job key {name!r}: {head!r} is one of the engine's own keys")
        return f"{self.tag}:{name}"

    def lock(self, exclusive_key: str) -> str:
        """String: the job id holding per-key exclusivity for `exclusive_key`."""
        return f"{self.tag}:lock:{exclusive_key}"

    @property
    def wake_channel(self) -> str:
        """Pub/Sub channel told when a delayed job becomes the earliest one."""
        return f"{self.tag}:wake"


@dataclass(frozen=True, slots=True)
class GlobalKeys:
    """Keys shared by every queue under one prefix."""

    prefix: str

    @property
    def control(self) -> str:
        """Hash: queue -> `paused` when paused (absent when running)."""
        return f"{{{self.prefix}}}:control"

    @property
    def partitions(self) -> str:
        """Hash: queue -> its recorded partition count, `<old>><new>` while repartitioning."""
        return f"{{{self.prefix}}}:partitions"

    @property
    def partitions_epoch(self) -> str:
        """String: a counter `repartition` raises each time it marks a queue as moving."""
        return f"{{{self.prefix}}}:partitions:epoch"

    @property
    def partitions_acks(self) -> str:
        """Hash: consumer name -> the last epoch whose pause flags and records it applied."""
        return f"{{{self.prefix}}}:partitions:acks"

    @property
    def workers(self) -> str:
        """Sorted set: consumer name -> last heartbeat (Unix ms)."""
        return f"{{{self.prefix}}}:workers"

    @property
    def worker_info(self) -> str:
        """Hash: consumer name -> JSON `{version, processors, host, startedMs}` (console)."""
        return f"{{{self.prefix}}}:workers:info"

    @property
    def schedules(self) -> str:
        """Hash: schedule name -> its ledger record (JSON)."""
        return f"{{{self.prefix}}}:schedules"

    @property
    def schedules_paused(self) -> str:
        """Hash: schedule name -> JSON `{by, at}` while an operator has it paused."""
        return f"{{{self.prefix}}}:schedules:paused"

    def samples(self, queue: str) -> str:
        """Sorted set of counter samples used for the per-minute rates of `stats`."""
        return f"{{{self.prefix}}}:samples:{queue}"

    def minutes(self, queue: str) -> str:
        """Sorted set of per-minute counter buckets (a day of them) for the console charts.

        Member `<minute ms>:<processed>:<failed>` (running totals at that minute),
        score = the minute's start in Unix ms.
        """
        return f"{{{self.prefix}}}:minutes:{queue}"

    def console(self, kind: str, token_id: str) -> str:
        """String: a console session or one-time login link (JSON), with a TTL."""
        return f"{{{self.prefix}}}:console:{kind}:{token_id}"

    def rate(self, scope: str, name: str) -> str:
        """Hash: one shared rate limit's GCRA state and counters (`rates.py`).

        `scope` is `queue` or `peer`; fields `tat` (µs), `perS`, `allowed`,
        `waited` and `refused` (permits taken at once, after a wait, refused).
        """
        return f"{{{self.prefix}}}:rate:{scope}:{name}"

    @property
    def cancels(self) -> str:
        """Hash: `<queue>/<job id>` -> JSON `{by, at}`: a running job an operator cancelled.

        Polled by every worker's control loop; the owner of the delivery acts and
        deletes the field (job_actions.py).
        """
        return f"{{{self.prefix}}}:cancels"

    @property
    def audit(self) -> str:
        """Stream of operator actions (who replayed, drained or dropped what)."""
        return f"{{{self.prefix}}}:audit"


WIRE_FORMAT_VERSION: Final = 1
"""What producers in other languages build against (docs/wire-format.md): the key layout,
the entry's fields, the partition formula and the enqueue script's KEYS/ARGV. Raised
when a producer has to change what it writes; the Node client's major version is this
number (clients/node/package.json; tests/unit/test_node_client_drift.py)."""


HEARTBEAT_S: Final = 2.0
"""How often a worker writes its heartbeat (`GlobalKeys.workers`); a consumer whose last one is
older than three of these is taken for gone (repartition's acknowledgements, `workersLive`)."""


class Field:
    """Field names of a job entry in a ready or dead-letter stream (the wire format)."""

    ID: Final = "id"
    NAME: Final = "name"
    PAYLOAD: Final = "payload"
    ATTEMPT: Final = "attempt"
    ENQUEUED_MS: Final = "enqueued_ms"
    DUE_MS: Final = "due_ms"
    KEY: Final = "key"
    ORIGIN: Final = "origin"
    TRACEPARENT: Final = "traceparent"
    TRACESTATE: Final = "tracestate"
    ERRORS: Final = "errors"
    AUTO_ID: Final = "auto_id"
    EXPIRES_MS: Final = "expires_ms"
    """Unix ms after which the job is dead-lettered (`expired`) instead of run; optional."""
    # engine-internal counters, written only by the engine's scripts and executor
    SNOOZES: Final = "snoozes"
    WAITS: Final = "waits"
    MOVED_DELIVERIES: Final = "moved_deliveries"
    """Deliveries a job had spent when `repartition` moved it (MAX_DELIVERIES counts them)."""
    # only in dead-letter entries
    REASON: Final = "reason"
    FAILED_MS: Final = "failed_ms"
