"""Where a processor's jobs live: its partitions and their keys.

Derived from settings (QUEUE_PREFIX, DLQ_SUFFIX, PARTITIONS_<P>), so producers and
workers configured alike agree on every key without talking to each other. It
reads the settings through a `Live` reference, so the readers built on it (stats,
control, dead letters) follow a hot reload (`PAUSED_QUEUES` and the like).
"""

from __future__ import annotations

from tgworkers.engine.live import Live, live
from tgworkers.engine.registry import Processor
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.wire.keys import GlobalKeys, PartitionKeys, partition_of


class Layout:
    """Computes the partition keys of processors under the current settings."""

    def __init__(self, settings: EngineSettings | Live[EngineSettings]) -> None:
        self.live = live(settings)
        self.globals = GlobalKeys(self.live.value.queue_prefix)  # QUEUE_PREFIX is static
        self._for: EngineSettings | None = None
        """The settings `_counts` and `_keys` were computed under (a reload clears them)."""
        self._counts: dict[str, int] = {}
        self._keys: dict[tuple[str, int], PartitionKeys] = {}

    def _cached(self) -> EngineSettings:
        """The settings in force, with the per-settings caches cleared if they changed.

        A bulk enqueue asks for every job's partition: the overrides' lookup and a new
        `PartitionKeys` per job were a tenth of `enqueue_many`'s CPU (profiled).
        """
        s = self.live.value
        if s is not self._for:
            self._for, self._counts, self._keys = s, {}, {}
        return s

    @property
    def settings(self) -> EngineSettings:
        """The settings in force now (a hot reload swaps them)."""
        return self.live.value

    def partition_count(self, proc: Processor) -> int:
        s = self._cached()
        n = self._counts.get(proc.env_name)
        if n is None:
            n = s.processor_overrides(proc.env_name).partitions or proc.partitions
            self._counts[proc.env_name] = n
        return n

    def partitions(self, proc: Processor) -> list[PartitionKeys]:
        s = self.settings
        return [
            PartitionKeys(s.queue_prefix, proc.queue, p, s.dlq_suffix)
            for p in range(self.partition_count(proc))
        ]

    def partition_for(self, proc: Processor, partition_key: str) -> PartitionKeys:
        index = partition_of(partition_key, self.partition_count(proc))
        pk = self._keys.get((proc.queue, index))
        if pk is None:  # after partition_count: the cache belongs to the settings in force
            s = self.settings
            pk = PartitionKeys(s.queue_prefix, proc.queue, index, s.dlq_suffix)
            self._keys[(proc.queue, index)] = pk
        return pk
