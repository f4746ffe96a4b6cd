"""History in, violations out: the checker's judgement, pure (no Redis, no processes).

What it proves of one schedule's history (issue #22):

- **overlap**: no two runs of one key are running at once. A run is running from its
  start line to its end line (or its process's SIGKILL). One overlap is excused, and
  counted apart: the later run started while the earlier run's process was stalled
  (SIGSTOPped, or its loop blocked by a handler) or within `grace_s` after the stall
  ended. A lease cannot stop a process that cannot run; fencing makes its effects
  harmless, and the engine's watchdog stops it when it runs again.
- **lost**: every enqueued job ended done (its id in a `done` set) or dead-lettered.
- **dead-no-reason**: a dead letter names its reason.
- **stuck**: nothing is left ready, pending or delayed once the schedule has healed.
- **run-after-done**: no run of a job started after the job was done (its first
  `settle_done`, on Redis's clock converted to the monotonic one; the last for a job
  enqueued as duplicate entries).
- **done-without-run**: a job is done only if one of its runs returned.
- **id-mismatch**: every run of a job (duplicate entries included) carries its one id.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import msgspec

from tests.faultcheck.history import Run, Stall

KINDS = (
    "overlap", "lost", "dead-no-reason", "stuck", "run-after-done", "done-without-run",
    "id-mismatch",
)  # fmt: skip


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A job the schedule enqueued: its number, its one id, its key, its entries."""

    n: int
    job_id: str
    key: str
    entries: int = 1


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """What Redis holds once the schedule has healed and drained."""

    done: dict[str, float]
    """job id -> monotonic time it was done: its first settle_done (the last, for a job
    enqueued as several entries: plain XADDs do not dedupe, each entry runs)."""
    dead: dict[str, str]
    """job id -> dead-letter reason."""
    leftover: dict[str, int]
    """ready / pending / delayed entries still in the queue."""


class History(msgspec.Struct, frozen=True, kw_only=True):
    jobs: list[Job]
    runs: list[Run]
    stalls: list[Stall]
    outcome: Outcome
    grace_s: float = 0.5
    clock_tolerance_s: float = 0.01
    """Redis's millisecond clock against the monotonic one."""


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    detail: str
    runs: tuple[Run, ...] = ()

    def describe(self, t0: float = 0.0) -> str:
        lines = [f"{self.kind}: {self.detail}"]
        lines += [f"    {r.label(t0)}" for r in self.runs]
        return "\n".join(lines)


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    violations: list[Violation]
    excused: list[Violation]
    """Overlaps that began while the earlier run's process was stalled."""

    def by_kind(self) -> Counter[str]:
        return Counter(v.kind for v in self.violations)


def check(h: History) -> Verdict:
    violations: list[Violation] = []
    overlaps, excused = _overlaps(h.runs, h.stalls, h.grace_s)
    violations += overlaps
    violations += _outcomes(h)
    violations += _after_done(h)
    violations += _ids(h)
    return Verdict(violations=violations, excused=excused)


def _overlaps(
    runs: Sequence[Run], stalls: Sequence[Stall], grace_s: float
) -> tuple[list[Violation], list[Violation]]:
    by_key: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_key[r.key].append(r)
    stalls_of: dict[int, list[Stall]] = defaultdict(list)
    for s in stalls:
        stalls_of[s.pid].append(s)
    bad: list[Violation] = []
    excused: list[Violation] = []
    for key, items in sorted(by_key.items()):
        items.sort(key=lambda r: (r.start, r.end))
        active: list[Run] = []
        for b in items:
            active = [a for a in active if a.end > b.start]
            for a in active:
                gap = f"{b.start - a.start:.3f}s after the first began, {a.end - b.start:.3f}s together"
                place = "same process" if a.pid == b.pid else "two processes"
                if a.job_id == b.job_id and a.partition != b.partition:
                    place += f", one job in partitions {a.partition} and {b.partition} (moved)"
                stall = _stall_excusing(a, b, stalls_of[a.pid], grace_s)
                if stall is None:
                    bad.append(Violation(kind="overlap", detail=f"key {key}: {place}, {gap}",
                                         runs=(a, b)))  # fmt: skip
                else:
                    why = f"key {key}: began during a {stall.kind} of pid {a.pid}, {gap}"
                    excused.append(Violation(kind="overlap", detail=why, runs=(a, b)))
            active.append(b)
    return bad, excused


def _stall_excusing(a: Run, b: Run, stalls: Iterable[Stall], grace_s: float) -> Stall | None:
    """The stall of a's process that b began in (a running when it began), if any."""
    for s in stalls:
        if a.start <= s.end and s.start <= b.start <= s.end + grace_s:
            return s
    return None


def _outcomes(h: History) -> list[Violation]:
    out: list[Violation] = []
    runs_of = _runs_by_job(h.runs)
    for job in h.jobs:
        runs = tuple(runs_of.get(job.job_id, ()))
        if job.job_id in h.outcome.dead:
            if not h.outcome.dead[job.job_id].strip():
                out.append(Violation(kind="dead-no-reason", detail=f"job {job.job_id}", runs=runs))
        elif job.job_id not in h.outcome.done:
            out.append(Violation(kind="lost", detail=f"job {job.job_id} (n {job.n}, key {job.key})"
                                 f" neither done nor dead-lettered", runs=runs[-4:]))  # fmt: skip
        elif not any(r.how == "ok" for r in runs):
            out.append(Violation(kind="done-without-run", detail=f"job {job.job_id}", runs=runs))
    if left := {k: v for k, v in h.outcome.leftover.items() if v}:
        out.append(Violation(kind="stuck", detail=f"left in the queue: {left}"))
    return out


def _after_done(h: History) -> list[Violation]:
    out: list[Violation] = []
    for r in h.runs:
        done = h.outcome.done.get(r.job_id)
        if done is not None and r.start > done + h.clock_tolerance_s:
            out.append(Violation(kind="run-after-done",
                                 detail=f"job {r.job_id} started {r.start - done:.3f}s after done",
                                 runs=(r,)))  # fmt: skip
    return out


def _ids(h: History) -> list[Violation]:
    expected = {j.n: j.job_id for j in h.jobs}
    out: list[Violation] = []
    for r in h.runs:
        want = expected.get(r.n)
        if want is not None and r.job_id != want:
            out.append(Violation(kind="id-mismatch",
                                 detail=f"job n {r.n} ran as {r.job_id}, enqueued as {want}",
                                 runs=(r,)))  # fmt: skip
        elif want is None:
            out.append(Violation(kind="id-mismatch", detail=f"a run of a job never enqueued (n {r.n})",
                                 runs=(r,)))  # fmt: skip
    return out


def _runs_by_job(runs: Iterable[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: r.start):
        out[r.job_id].append(r)
    return out
