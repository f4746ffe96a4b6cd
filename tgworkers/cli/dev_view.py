"""What `dev` shows while it runs: queues, recent outcomes, and where to look next.

On a terminal it is one rich `Live` panel redrawn every second; elsewhere (a pipe,
CI, a test) it prints one plain line every few seconds, so logs stay readable and
a script can follow along. Outcomes are the changes of the stats document's
totals between two reads (done, retried, failed, dead-lettered), next to what
the sample producer just did, so cause and effect sit side by side.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import Final

import anyio
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tgworkers.devstack.sample import SampleWork
from tgworkers.engine.ops import CONNECTION_ERRORS
from tgworkers.engine.ops.stats import QueueStats, StatsDocument, StatsReader

LIVE_EVERY_S: Final = 1.0
PLAIN_EVERY_S: Final = 5.0
RECENT_LINES: Final = 6
"""Lines of sample work and of outcomes shown side by side: the view fits 24 rows."""
_COUNTERS: Final = (("processed", "done"), ("retried", "retried"), ("failed", "failed"),
                    ("dlq", "dead-lettered"))  # fmt: skip


def outcome_lines(before: StatsDocument | None, after: StatsDocument) -> list[str]:
    """One line per queue and counter that moved between two reads."""
    if before is None:
        return []
    old = {q.name: q for q in before.queues}
    stamp = time.strftime("%H:%M:%S")
    lines = []
    for q in after.queues:
        prev = old.get(q.name)
        for attr, label in _COUNTERS:
            delta = getattr(q, attr) - (getattr(prev, attr) if prev else 0)
            if delta > 0:
                lines.append(f"{stamp} {q.name}: +{delta} {label}")
    return lines


def queue_table(doc: StatsDocument) -> Table:
    table = Table("queue", "ready", "inflight", "delayed", "done", "retried", "failed", "dlq",
                  box=None, header_style="bold")  # fmt: skip
    for q in doc.queues:
        table.add_row(
            q.name, str(q.ready), str(q.inflight), str(q.delayed), str(q.processed),
            str(q.retried), str(q.failed), Text(str(q.dlq), style="red" if q.dlq else ""),
        )  # fmt: skip
    return table


def summary_line(doc: StatsDocument, elapsed_s: float) -> str:
    """`dev 12s | done a=3 b=1 | retried a=2 | dlq a=1`: the plain view's one line."""

    def part(label: str, values: Sequence[QueueStats], attr: str) -> str:
        items = [f"{q.name}={getattr(q, attr)}" for q in values if getattr(q, attr)]
        return f"{label} " + (" ".join(items) or "-")

    parts = [part(label, doc.queues, attr) for attr, label in (
        ("processed", "done"), ("retried", "retried"), ("dlq", "dlq"))]  # fmt: skip
    return f"dev {elapsed_s:.0f}s | " + " | ".join(parts)


class DevView:
    """Reads the stats document and shows it, live on a terminal, as lines elsewhere."""

    def __init__(
        self,
        stats: StatsReader,
        sample: SampleWork,
        banner: Sequence[str],
        *,
        queues: frozenset[str],
        live: bool,
    ) -> None:
        self.stats = stats
        self.sample = sample
        self.banner = tuple(banner)
        self.queues = queues
        self.live = live
        self.outcomes: deque[str] = deque(maxlen=RECENT_LINES)
        self._last: StatsDocument | None = None
        self._started = time.monotonic()

    async def read(self) -> StatsDocument | None:
        """The next document, recording outcomes; None while Redis does not answer."""
        try:
            full = await self.stats.snapshot()
        except CONNECTION_ERRORS:
            return None
        doc = StatsDocument(queues=[q for q in full.queues if q.name in self.queues], at=full.at)
        self.outcomes.extend(outcome_lines(self._last, doc))
        self._last = doc
        return doc

    async def run(self) -> None:
        if self.live:
            await self._run_live()
        else:
            await self._run_plain()

    def render(self, doc: StatsDocument | None) -> Group:
        head = Text("\n".join(self.banner), style="cyan")
        body = queue_table(doc) if doc else Text("Redis is not answering…", style="red")
        recent = Table("sample work", "outcomes", box=None, header_style="bold", expand=True)
        recent.add_row(
            Text("\n".join(list(self.sample.recent)[-RECENT_LINES:]) or "-", style="dim"),
            Text("\n".join(self.outcomes) or "-"),
        )
        return Group(head, Text(""), body, Text(""), recent)

    async def _run_live(self) -> None:
        console = Console()
        with Live(self.render(await self.read()), console=console, auto_refresh=False) as live:
            while True:
                await anyio.sleep(LIVE_EVERY_S)
                live.update(self.render(await self.read()), refresh=True)

    async def _run_plain(self) -> None:
        while True:
            await anyio.sleep(PLAIN_EVERY_S)
            doc = await self.read()
            if doc is None:
                print("dev: Redis is not answering", flush=True)
                continue
            print(summary_line(doc, time.monotonic() - self._started), flush=True)


def is_terminal() -> bool:
    return sys.stdout.isatty()
