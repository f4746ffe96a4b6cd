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

    @property
    def settings(self) -> EngineSettings:
        """The settings in force now (a hot reload swaps them)."""
        return self.live.value

    def partition_count(self, proc: Processor) -> int:
        return self.settings.processor_overrides(proc.env_name).partitions or proc.partitions

    def partitions(self, proc: Processor) -> list[PartitionKeys]:
        s = self.settings
        return [
            PartitionKeys(s.queue_prefix, proc.queue, p, s.dlq_suffix)
            for p in range(self.partition_count(proc))
        ]

    def partition_for(self, proc: Processor, partition_key: str) -> PartitionKeys:
        s = self.settings
        index = partition_of(partition_key, self.partition_count(proc))
        return PartitionKeys(s.queue_prefix, proc.queue, index, s.dlq_suffix)
