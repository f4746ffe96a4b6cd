"""`EngineSettings`: the settings the engine reads, and nothing else.

The engine imports nothing of the service-wide configuration: it is typed against
this struct only. `tgworkers.config.Settings` (the parsed environment, above the
engine) extends it with the settings of the other layers (HTTP, peers, jobs,
telemetry), so one parsed value serves every layer while each layer sees only its
own fields. A hot reload swaps the whole value (see `live.py`).
"""

from __future__ import annotations

import msgspec

from tgworkers.engine.retry import RetryPolicy
from tgworkers.secrets import Secret


class ProcessorOverrides(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Per-processor values from `CONCURRENCY_<P>`, `MAX_ATTEMPTS_<P>`, ..."""

    concurrency: int | None = None
    max_attempts: int | None = None
    backoff_ms: int | None = None
    timeout_s: float | None = None
    partitions: int | None = None


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Redis, keys, retry policy, delivery limits, shutdown, schedules and pauses."""

    redis_url: Secret[str] = msgspec.field(
        default_factory=lambda: Secret("redis://127.0.0.1:6379/0")
    )
    redis_cluster: bool = False
    """`REDIS_URL` named a cluster (`redis+cluster://…` or `?cluster=true`)."""
    queue_prefix: str = "tgw"
    dlq_suffix: str = ":dlq"
    max_attempts_default: int = 10
    backoff_default_ms: int = 1000
    backoff_max_ms: int = 300_000
    wait_max_ms: int | None = None
    """Longest a peer's Retry-After/retryAt or a snooze may park a job (None: BACKOFF_MAX_MS)."""
    visibility_timeout_ms: int = 30_000
    max_deliveries: int | None = None
    dedupe_ttl_s: int = 86_400
    max_payload_bytes: int = 65_536
    shutdown_grace_s: float = 25.0
    schedules_tz: str = "UTC"
    crons: dict[str, str] = msgspec.field(default_factory=dict)
    overrides: dict[str, ProcessorOverrides] = msgspec.field(default_factory=dict)
    paused_queues: tuple[str, ...] = ()
    queue_rates: dict[str, float] = msgspec.field(default_factory=dict)
    """Processor env name -> jobs started per second by every worker together
    (`RATE_QUEUE_<P>_PER_S`; rates.py)."""
    peer_rates: dict[str, float] = msgspec.field(default_factory=dict)
    """Peer name -> calls per second from every worker together (`RATE_<PEER>_PER_S`)."""

    @property
    def max_deliveries_effective(self) -> int:
        return self.max_deliveries or self.max_attempts_default

    def processor_overrides(self, env_name: str) -> ProcessorOverrides:
        return self.overrides.get(env_name, ProcessorOverrides())

    def retry_policy(self, env_name: str) -> RetryPolicy:
        o = self.processor_overrides(env_name)
        return RetryPolicy(
            base_ms=o.backoff_ms or self.backoff_default_ms,
            cap_ms=self.backoff_max_ms,
            max_attempts=o.max_attempts or self.max_attempts_default,
            wait_cap_ms=self.wait_max_ms,
        )
