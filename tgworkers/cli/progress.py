"""Progress for long commands: a rich bar on a terminal, plain lines otherwise.

Both go to stderr, so stdout stays clean for JSON lines and summaries.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Final

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

PLAIN_EVERY_S: Final = 5.0


class Meter:
    """Counts progress; draws a bar on a terminal, else a line every few seconds."""

    def __init__(self, label: str, *, total: int | None, bar: bool = True) -> None:
        self.label = label
        self.total = total
        self.done = 0
        console = Console(file=sys.stderr)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._plain = not console.is_terminal
        if bar and console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeRemainingColumn(), console=console, transient=True,
            )  # fmt: skip
        self._last_line = time.monotonic()

    def __enter__(self) -> Meter:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, n: int, **counts: int) -> None:
        self.done += n
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=n)
        elif self._plain and time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            self._last_line = time.monotonic()
            of = f"/{self.total}" if self.total is not None else ""
            extra = "".join(f" {k}={v}" for k, v in counts.items())
            print(f"{self.label}: {self.done}{of}{extra}", file=sys.stderr, flush=True)
