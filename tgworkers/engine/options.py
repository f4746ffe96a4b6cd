"""The knobs of one processor's runtime, read on every use so a hot reload applies live.

Its own module so the runtime and its recovery both read it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tgworkers.errors import ConfigError

if TYPE_CHECKING:
    from tgworkers.engine.registry import JobType


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
    def visibility_timeout_ms(self) -> int:
        return self._visibility_timeout_ms

    @visibility_timeout_ms.setter
    def visibility_timeout_ms(self, value: int) -> None:
        """Also sets the times derived from it, read several times per job (plain attributes).

        As properties computed on each read they were 6 % of a no-op job's CPU (three
        reads per job, each a chain of three properties; profiled).
        """
        self._visibility_timeout_ms = value
        self.lease_interval_s: float = value / 3000
        """How often the leases of held entries are renewed (VT/3)."""
        self.margin_s: float = lease_margin_s(value)
        """What the watchdog keeps between cancelling a run and its lease's end (VT/10, ≥ 0.1 s)."""
        self.lease_budget_s: float = value / 1000 - self.margin_s
        """How long a run may go without a renewed lease: VT less a margin for cancelling.

        A job type's declared clean-up (`JobType.cleanup_s`) comes off it too
        (`run_budget_s`): its runs are cancelled that much earlier.
        """

    def run_budget_s(self, cleanup_s: float) -> float:
        """How long a run of a job type with this clean-up may go without a renewed lease."""
        return self.lease_budget_s - cleanup_s

    @property
    def watchdog_interval_s(self) -> float:
        """Half the margin (at most 0.25 s): a run is cancelled well inside its margin."""
        return min(self.margin_s / 2, 0.25)

    @property
    def sweep_interval_s(self) -> float:
        return min(max(self.visibility_timeout_ms / 4000, 0.25), 2.0)


def lease_margin_s(visibility_timeout_ms: int) -> float:
    """The watchdog's margin: a tenth of VT, at least 100 ms (its passes, a busy loop)."""
    return max(visibility_timeout_ms / 10_000, 0.1)


def cleanup_limit_s(visibility_timeout_ms: int) -> float:
    """The longest clean-up a job type may declare under this visibility timeout.

    The watchdog cancels a run `cleanup_s` earlier than VT less the margin, so what
    is left must still span one renewal interval (VT/3) plus the margin; with less, a
    healthy run would be cancelled between two renewals. So at most 2·VT/3 less twice
    the margin: 0.93 s at VT 2 s, 14 s at the default 30 s, 0.13 s at the minimum 500 ms.
    """
    vt_s = visibility_timeout_ms / 1000
    return vt_s * 2 / 3 - 2 * lease_margin_s(visibility_timeout_ms)


def check_cleanup_budgets(job_types: Iterable[JobType[Any]], visibility_timeout_ms: int) -> None:
    """Refuse, naming the job type and the numbers, a clean-up the leases cannot cover."""
    limit = cleanup_limit_s(visibility_timeout_ms)
    for jt in job_types:
        if jt.cleanup_s > limit:
            vt_s = visibility_timeout_ms / 1000
            left = vt_s - lease_margin_s(visibility_timeout_ms) - jt.cleanup_s
            raise ConfigError(
                f"job type {jt.name}: cleanup_s {jt.cleanup_s:g} s is too long for "
                f"VISIBILITY_TIMEOUT_MS {visibility_timeout_ms}: it leaves the lease watchdog "
                f"{max(left, 0):.3g} s, under one renewal interval ({vt_s / 3:.3g} s) plus its "
                f"margin ({lease_margin_s(visibility_timeout_ms):.3g} s); declare at most "
                f"{limit:.3g} s or raise VISIBILITY_TIMEOUT_MS"
            )
