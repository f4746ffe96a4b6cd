"""The toolkit's assertions, as pure functions over what was seen.

Each one returns what matched (so a test can look closer) and fails with an
`AssertionError` listing what was there instead: a failed assertion should say
why without a debugger. `payload` matches when every field given is equal (a
subset match, as Oban's `assert_enqueued`); `at` within `within_ms`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tgworkers.devstack.fake_peers import RecordedRequest
from tgworkers.engine.ops.dlq import DeadJob
from tgworkers.testing.recording import EnqueuedJob


def _ms(at: datetime | float) -> int:
    if isinstance(at, datetime):
        moment = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    return int(at)


def _fits(payload: Any, want: Any) -> bool:
    if isinstance(want, Mapping) and isinstance(payload, Mapping):
        return all(k in payload and _fits(payload[k], v) for k, v in want.items())
    return bool(payload == want)


def _listing(jobs: Sequence[EnqueuedJob]) -> str:
    if not jobs:
        return "nothing was enqueued"
    lines = [f"  {j.name} id={j.id} at_ms={j.at_ms} payload={j.payload}" for j in jobs]
    return "enqueued:\n" + "\n".join(lines)


def match_enqueued(
    jobs: Sequence[EnqueuedJob],
    name: str,
    *,
    payload: Any = None,
    at: datetime | float | None = None,
    within_ms: int = 1000,
) -> EnqueuedJob:
    """The first job named `name` whose payload (and due time) match."""
    for job in jobs:
        if job.name != name or (payload is not None and not _fits(job.payload, payload)):
            continue
        if at is None or abs(job.at_ms - _ms(at)) <= within_ms:
            return job
    want = f"{name} payload={payload}" + (f" at={_ms(at)}±{within_ms}ms" if at is not None else "")
    raise AssertionError(f"expected a job {want}; {_listing(jobs)}")


def match_none_enqueued(
    jobs: Sequence[EnqueuedJob], name: str | None = None, *, payload: Any = None
) -> None:
    """No job (named `name`, with `payload`) was enqueued."""
    found = [
        j
        for j in jobs
        if (name is None or j.name == name) and (payload is None or _fits(j.payload, payload))
    ]
    if found:
        raise AssertionError(f"expected no job {name or ''} payload={payload}; {_listing(found)}")


def assert_dead_lettered(
    dead: Sequence[DeadJob],
    job_id: str | None = None,
    *,
    name: str | None = None,
    reason: str | None = None,
) -> DeadJob:
    """A dead-lettered job with this id (or name) whose reason contains `reason`."""
    for job in dead:
        if job_id not in (None, job.id) or name not in (None, job.name):
            continue
        if reason is None or reason in job.reason:
            return job
    seen = "; ".join(f"{j.id} ({j.name}): {j.reason}" for j in dead) or "the DLQ is empty"
    raise AssertionError(f"expected {job_id or name} dead-lettered (reason ~ {reason!r}); {seen}")


def assert_peer_called(  # noqa: PLR0913 - what identifies a call, all but the log keyword
    requests: Sequence[RecordedRequest],
    peer: str,
    method: str,
    path: str,
    *,
    idempotency_key: str | None = None,
    body: Any = None,
    times: int | None = None,
) -> list[RecordedRequest]:
    """Calls of `method path` on `peer` (with that key, a body containing `body`)."""
    calls = [
        r
        for r in requests
        if r.peer == peer
        and r.method == method.upper()
        and r.path.removeprefix(f"/{peer}") == path
        and idempotency_key in (None, r.idempotency_key)
        and (body is None or _fits(r.body, body))
    ]
    if calls and (times is None or len(calls) == times):
        return calls
    seen = "\n".join(
        f"  {r.method} {r.path} key={r.idempotency_key} body={r.body}"
        for r in requests
        if r.peer == peer
    )
    count = f"{times} call(s)" if times is not None else "a call"
    raise AssertionError(
        f"expected {count} {method} {path} on {peer} (key={idempotency_key}), got {len(calls)}; "
        f"{peer} saw:\n{seen or '  nothing'}"
    )
