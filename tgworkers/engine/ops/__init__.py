"""The operator API: what the CLI, the admin API and the console call to look and act.

Pause and resume (`control`), dead letters and their search (`dlq`, `dlq_search`), stats and
history, browsing queues, the workers view, the audit log, repartitioning, single-job and
schedule actions, the finished-job lookup, the shared rate limits, and the testing harness's
time shift and queued-job listing (`timeline`, not held by the services); `EngineServices`
(`api`) holds one of each, built once per process. Listings share one cursor parser
(`cursor`) and one lenient decoder of stored jobs (`entries`). Above the client and the
schedules, below the runtime: it changes Redis through the wire's scripts and never
reaches into a running worker (docs/operations.md).

`cli/`, `http/` and `testing/` use this package, the job authors' API (`tgworkers.engine`
and its top-level modules) and `engine.telemetry`, never the wire, the schedules or the
runtime (tests/unit/test_layering.py): the names below are what they need of the wire.
"""

from tgworkers.engine.ops.api import EngineServices, WorkerParts
from tgworkers.engine.wire.connection import CONNECTION_ERRORS, connect

__all__ = ["CONNECTION_ERRORS", "EngineServices", "WorkerParts", "connect"]
