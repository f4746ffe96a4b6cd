"""DLQ search: dead letters filtered by job id prefix, job name and error text; sorted.

A dead-letter stream has no index but its entry ids, so a filter reads the
stream in order, page by page, and stops after `SCAN_MAX` entries per request
(or once it has a page of matches): no request reads an unbounded structure.
The answer's `next` resumes the scan where it stopped, whether it stopped on a
full page or on the scan bound; `scanned` says how many entries this request
read. Error text matches, case-insensitively, the reason or any history message.

Sorting (`failedAt`, `attempts`, `id`, `name`, `reason`; `-` for descending) orders
the page that is returned: a DLQ is read oldest first, and sorting all of it
would need all of it in memory.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from tgworkers.engine.ops.dlq import DeadJob, DeadLetters
from tgworkers.errors import InputError

SCAN_MAX: Final = 10_000
SORT_KEYS: Final = ("failedAt", "attempts", "id", "name", "reason")


class DlqFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a dead letter must match (every given part); all None matches everything."""

    id_prefix: str | None = None
    name: str | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return any((self.id_prefix, self.name, self.error))

    def matches(self, job: DeadJob) -> bool:
        if self.id_prefix and not job.id.startswith(self.id_prefix):
            return False
        if self.name and job.name != self.name:
            return False
        if self.error:
            needle = self.error.casefold()
            texts = [job.reason, *(str(e.get("message", "")) for e in job.errors)]
            return any(needle in t.casefold() for t in texts)
        return True


def sort_key(sort: str | None) -> tuple[str, bool] | None:
    """(field, descending) of a `sort` value; `InputError` naming the choices."""
    if not sort:
        return None
    field, descending = (sort[1:], True) if sort.startswith("-") else (sort, False)
    if field not in SORT_KEYS:
        choices = ", ".join(SORT_KEYS)
        raise InputError(f"sort: expected one of {choices} (with - for descending), got {sort!r}")
    return field, descending


def sorted_jobs(jobs: list[DeadJob], sort: str | None) -> list[DeadJob]:
    key = sort_key(sort)
    if key is None:
        return jobs
    field, descending = key
    return sorted(jobs, key=lambda j: getattr(j, field), reverse=descending)


async def search(  # noqa: PLR0913 - a query: its parts by keyword
    dlq: DeadLetters,
    queue: str,
    flt: DlqFilter,
    *,
    limit: int,
    cursor: str | None = None,
    sort: str | None = None,
    scan_max: int = SCAN_MAX,
) -> dict[str, Any]:
    """`dlq list` with filters: `{"queue", "items", "total", "next", "scanned", "filter"}`."""
    sort_key(sort)  # a bad sort is refused before anything is read
    found: list[DeadJob] = []
    scanned, last, stopped = 0, None, False
    async for job in dlq.iterate_from(queue, cursor):
        if len(found) == limit or scanned == scan_max:
            stopped = True  # more entries remain after `last`
            break
        scanned += 1
        last = job
        if flt.matches(job):
            found.append(job)
    return {
        "queue": queue,
        "items": [j.summary() for j in sorted_jobs(found, sort)],
        "total": await dlq.count(queue),
        "next": f"{last.partition}:{last.entry}" if stopped and last is not None else None,
        "scanned": scanned,
        "filter": msgspec.to_builtins(flt),
    }
