"""Page cursors: the one parser of every listing that resumes where a page ended.

A cursor is the `next` value of a previous page, handed back verbatim. The partitioned
listings write `<partition>:<position>`: the position is a stream entry id (`<ms>-<seq>`)
for the DLQ and the ready and in-flight jobs, `<due ms>|<job id>` for delayed jobs. The
audit log's cursor is the entry id alone.

A cursor that is none of these is refused with `InputError` (400 over HTTP, exit 2 in the
CLI), naming what was expected. Starting over instead would hand back page one as if it
were the next, and a client following `next` would loop without noticing.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from tgworkers.errors import InputError

Position = Literal["entry", "due"]
"""What follows the partition: a stream entry id, or a delayed job's `<due ms>|<job id>`."""


class Cursor(NamedTuple):
    """Where the next page starts: after `position` in partition `partition`."""

    partition: int
    position: str


def _refused(cursor: str) -> InputError:
    return InputError(f"cursor: expected the `next` value of a previous page, got {cursor!r}")


def is_entry_id(text: str, *, whole: bool = True) -> bool:
    """`<ms>-<seq>`; with `whole=False` the sequence may be left out (`<ms>`, as XRANGE takes)."""
    ms, dash, seq = text.partition("-")
    return ms.isdigit() and (seq.isdigit() if dash or whole else True)


def _is_due(text: str) -> bool:
    due, bar, job_id = text.partition("|")
    return due.isdigit() and bool(bar) and bool(job_id)


def parse_cursor(cursor: str | None, *, position: Position = "entry") -> Cursor | None:
    """`<partition>:<position>` of a previous page; None for no cursor; `InputError` if bad."""
    if not cursor:
        return None
    part, _, rest = cursor.partition(":")
    valid = is_entry_id(rest) if position == "entry" else _is_due(rest)
    if not (part.isdigit() and valid):
        raise _refused(cursor)
    return Cursor(int(part), rest)


def parse_entry_cursor(cursor: str | None) -> str | None:
    """The audit log's cursor (an entry id, `<ms>[-<seq>]`); None for none; `InputError` if bad."""
    if cursor and not is_entry_id(cursor, whole=False):
        raise _refused(cursor)
    return cursor or None
