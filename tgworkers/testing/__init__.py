"""Testing toolkit for job authors: run a handler inline, or the real engine on a test's clock.

- `perform(job, payload, **context)`: one handler run with a real `JobContext`;
  returns `Performed` (the outcome, the engine's decision, recorded enqueues,
  finished steps). No Redis, no server, no sleeping.
- `run_worker(...)` / the `tgw_worker` fixture: the production worker on a real
  Redis with the fake peers; `drain`, `advance`, and assertions on Redis.
- `FakePeerService`: the fake peers with fault injection and a request log.
- assertions: `assert_enqueued`, `assert_not_enqueued`, `assert_dead_lettered`,
  `assert_peer_called` (also as methods of `Performed` and `Harness`).

docs/testing.md walks through testing a new job type with it.
"""

from tgworkers.testing.assertions import (
    assert_dead_lettered,
    assert_peer_called,
    match_enqueued as assert_enqueued,
    match_none_enqueued as assert_not_enqueued,
)
from tgworkers.testing.clock import FakeClock
from tgworkers.testing.harness import Harness, run_worker
from tgworkers.testing.outcomes import JobRun
from tgworkers.testing.peers import FakePeerService
from tgworkers.testing.perform import MemorySteps, Performed, perform
from tgworkers.testing.recording import EnqueuedJob

__all__ = [
    "EnqueuedJob",
    "FakeClock",
    "FakePeerService",
    "Harness",
    "JobRun",
    "MemorySteps",
    "Performed",
    "assert_dead_lettered",
    "assert_enqueued",
    "assert_not_enqueued",
    "assert_peer_called",
    "perform",
    "run_worker",
]
