"""The knobs of one processor's runtime, read on every use so a hot reload applies live.

Its own module so the runtime and its recovery both read it without importing each other.
"""

from __future__ import annotations


class RuntimeOptions:
    """The knobs a runtime reads on every use, so a hot reload applies live."""

    def __init__(  # noqa: PLR0913 - keyword-only knobs
        self,
        *,
        concurrency: int,
        visibility_timeout_ms: int,
        max_deliveries: int,
        dedupe_ttl_ms: int,
        block_ms: int = 1000,
        reap_idle_ms: int | None = None,
        read_per_partition: bool = False,
    ) -> None:
        self.concurrency = concurrency
        self.visibility_timeout_ms = visibility_timeout_ms
        self.max_deliveries = max_deliveries
        self.dedupe_ttl_ms = dedupe_ttl_ms
        self.block_ms = block_ms
        self.reap_idle_ms = reap_idle_ms or max(2 * visibility_timeout_ms, 5_000)
        self.read_per_partition = read_per_partition

    @property
    def lease_interval_s(self) -> float:
        return self.visibility_timeout_ms / 3000

    @property
    def lease_budget_s(self) -> float:
        """How long a run may go without a renewed lease: VT less a margin for cancelling."""
        vt_s = self.visibility_timeout_ms / 1000
        return vt_s - max(vt_s / 10, 0.1)

    @property
    def sweep_interval_s(self) -> float:
        return min(max(self.visibility_timeout_ms / 4000, 0.25), 2.0)
