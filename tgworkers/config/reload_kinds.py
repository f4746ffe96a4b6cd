"""Reload classification: which variables a hot-reload document may change.

Dynamic keys are applied live; static keys need a restart and secrets never come
from a document (both ignored with a warning); anything else is a typo.
"""

from __future__ import annotations

from typing import Final, Literal

from tgworkers.config.variables import PEERS, SCALARS, SECRET_VARIABLES, override_for, rate_for

VariableKind = Literal["dynamic", "static", "secret", "unknown"]

DYNAMIC_VARIABLES: Final = frozenset(
    {"MAX_ATTEMPTS_DEFAULT", "BACKOFF_DEFAULT_MS", "BACKOFF_MAX_MS", "WAIT_MAX_MS", "PROCESSORS",
     "PAUSED_QUEUES", "SCHEDULES_TZ"}
)  # fmt: skip
"""Plain variables a hot-reload document may change (besides the families below)."""
_DYNAMIC_FIELDS: Final = frozenset({"concurrency", "max_attempts", "backoff_ms", "timeout_s"})
_STATIC_EXTRA: Final = frozenset({"NODE_ENV", "TGW_ENV"})


def variable_kind(name: str) -> VariableKind:
    """How a hot-reload document's key is treated: applied, ignored, or rejected.

    Dynamic keys are applied live. Static keys (the Redis URL, the queue prefix,
    the port, partitions, …) need a restart and secrets never come from a
    document: both are ignored with a warning. Anything else is a typo, and the
    document is rejected.
    """
    if name in SECRET_VARIABLES:
        return "secret"
    # RATE_QUEUE_<P>_PER_S and RATE_<PEER>_PER_S are read per permit (engine/ops/rates.py)
    if name in DYNAMIC_VARIABLES or name.startswith(("ENABLE_", "CRON_")) or rate_for(name):
        return "dynamic"
    if (hit := override_for(name)) is not None:
        return "dynamic" if hit[1] in _DYNAMIC_FIELDS else "static"
    if name in SCALARS or name in _STATIC_EXTRA or name.startswith("OTEL_"):
        return "static"
    if any(name in (f"SVC_{p.upper()}_URL", f"SVC_{p.upper()}_TIMEOUT_S") for p in PEERS):
        return "static"
    return "unknown"
