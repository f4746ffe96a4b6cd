"""The history of one schedule: every run's start and end, outside the Redis under test.

A run of the checked job type appends lines to a file of its own process
(`<dir>/<pid>.jsonl`, one `os.write` per line on an `O_APPEND` descriptor: a line
is in the page cache the moment it is written, so a SIGKILL loses none; no fsync,
the machine does not crash). Times are `time.monotonic()`, which is CLOCK_MONOTONIC,
one clock for every process on the host: a worker whose wall clock is skewed still
writes comparable times. The runner keeps its own events (kills, stops, the end).

Lines: `{"e": "s", ...}` a run started (its job id, n, key, attempt, deliveries,
partition); `{"e": "c"}` it was cancelled; `{"e": "x", "how": ...}` it ended;
`{"e": "b0"}` / `{"e": "b1"}` its handler began / stopped blocking the event loop
(a stall of the whole process).
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Final, Literal

import msgspec

HISTORY_DIR_ENV: Final = "TGW_FAULTCHECK_HISTORY"

How = Literal["ok", "error", "notdue", "cancelled", "open"]


class Line(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    e: str
    run: str
    t: float
    job: str = ""
    n: int = -1
    key: str = ""
    att: int = 0
    dlv: int = 0
    part: int = -1
    how: str = ""


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """One run of a job, as the checker sees it (end: when it returned, or its process died)."""

    run: str
    pid: int
    job_id: str
    n: int
    key: str
    attempt: int
    deliveries: int
    partition: int
    start: float
    end: float
    how: How
    cancelled_at: float | None = None

    def label(self, t0: float = 0.0) -> str:
        cancel = f" cancelled@{self.cancelled_at - t0:.3f}" if self.cancelled_at else ""
        return (
            f"run {self.run} job {self.job_id} key {self.key} pid {self.pid} part {self.partition} "
            f"att {self.attempt} dlv {self.deliveries} [{self.start - t0:.3f}, {self.end - t0:.3f}]"
            f" {self.how}{cancel}"
        )


class Stall(msgspec.Struct, frozen=True, kw_only=True):
    """A process that could not act: SIGSTOPped, or a handler blocking its event loop."""

    pid: int
    start: float
    end: float
    kind: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Line)


class Recorder:
    """The writing side, inside a worker process (one per process, opened lazily)."""

    def __init__(self, directory: str) -> None:
        self.pid = os.getpid()
        self.fd = os.open(
            Path(directory) / f"{self.pid}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
        )
        self._seq = itertools.count(1)

    def new_run(self) -> str:
        return f"{self.pid}-{next(self._seq)}"

    def write(self, line: Line) -> None:
        os.write(self.fd, _encoder.encode(line) + b"\n")

    def mark(self, event: str, run: str) -> None:
        self.write(Line(e=event, run=run, t=time.monotonic()))


_recorder: Recorder | None = None


def recorder() -> Recorder | None:
    """This process's recorder, or None when no history is being kept."""
    global _recorder  # noqa: PLW0603 - one per process, made on first use
    directory = os.environ.get(HISTORY_DIR_ENV)
    if directory is None:
        return None
    if _recorder is None or _recorder.pid != os.getpid():
        _recorder = Recorder(directory)
    return _recorder


def load_runs(directory: Path, died: dict[int, float]) -> tuple[list[Run], list[Stall]]:
    """Every run and handler stall recorded under `directory`.

    A run with no end line ended when its process died (`died`: pid -> the runner's
    SIGKILL time); a torn last line (a kill mid-write) is skipped.
    """
    runs: list[Run] = []
    stalls: list[Stall] = []
    for path in sorted(directory.glob("*.jsonl")):
        pid = int(path.stem)
        death = died.get(pid, float("inf"))
        starts: dict[str, Line] = {}
        ends: dict[str, Line] = {}
        cancels: dict[str, float] = {}
        blocks: dict[str, float] = {}
        for raw in path.read_bytes().splitlines():
            try:
                line = _decoder.decode(raw)
            except msgspec.DecodeError:
                continue
            if line.e == "s":
                starts[line.run] = line
            elif line.e == "x":
                ends[line.run] = line
            elif line.e == "c":
                cancels.setdefault(line.run, line.t)
            elif line.e == "b0":
                blocks[line.run] = line.t
            elif line.e == "b1" and line.run in blocks:
                stalls.append(Stall(pid=pid, start=blocks.pop(line.run), end=line.t, kind="block"))
        stalls += [Stall(pid=pid, start=t, end=death, kind="block") for t in blocks.values()]
        for run_id, s in starts.items():
            end = ends.get(run_id)
            how: How = "open" if end is None else end.how  # type: ignore[assignment]
            runs.append(
                Run(
                    run=run_id, pid=pid, job_id=s.job, n=s.n, key=s.key, attempt=s.att,
                    deliveries=s.dlv, partition=s.part, start=s.t,
                    end=death if end is None else end.t, how=how,
                    cancelled_at=cancels.get(run_id),
                )
            )  # fmt: skip
    return runs, stalls
