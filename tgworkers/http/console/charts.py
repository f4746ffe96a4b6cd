"""Processed and failed per minute as a small SVG, drawn on the server.

No chart library and no script: a polyline per series over a fixed window, the
y axis scaled to the window's peak, and a hidden-by-default `<title>` per chart
for screen readers. Only numbers reach the SVG, so there is nothing to escape.
"""

from __future__ import annotations

from typing import Final

from markupsafe import Markup

from tgworkers.engine.ops.history import MINUTE_MS, Point

WIDTH: Final = 600
HEIGHT: Final = 140
PAD_LEFT: Final = 44
PAD_BOTTOM: Final = 18


def _binned(points: list[Point], start: int, minutes: int, bin_minutes: int) -> list[Point]:
    """Average rates per bin of `bin_minutes` over `minutes` from `start` (0 where no data)."""
    bins = minutes // bin_minutes
    sums = [[0.0, 0.0] for _ in range(bins)]
    for p in points:
        i = (p.minute - start) // (MINUTE_MS * bin_minutes)
        if 0 <= i < bins:
            sums[i][0] += p.processed / bin_minutes
            sums[i][1] += p.failed / bin_minutes
    return [Point(start + i * bin_minutes * MINUTE_MS, s[0], s[1]) for i, s in enumerate(sums)]


def _line(values: list[float], peak: float) -> str:
    span_x = (WIDTH - PAD_LEFT) / max(1, len(values) - 1)
    span_y = HEIGHT - PAD_BOTTOM - 6
    return " ".join(
        f"{PAD_LEFT + i * span_x:.1f},{HEIGHT - PAD_BOTTOM - v / peak * span_y:.1f}"
        for i, v in enumerate(values)
    )


def rate_chart(points: list[Point], *, now_ms: int, minutes: int, bin_minutes: int,
               label: str) -> Markup:  # fmt: skip
    """An SVG of processed (and failed) jobs per minute over the last `minutes`."""
    start = now_ms - now_ms % MINUTE_MS - (minutes - bin_minutes) * MINUTE_MS
    binned = _binned(points, start, minutes, bin_minutes)
    processed = [p.processed for p in binned]
    failed = [p.failed for p in binned]
    peak = max([*processed, *failed, 1.0])
    total = sum(p.processed for p in points if p.minute >= start)
    failed_total = sum(p.failed for p in points if p.minute >= start)
    base = HEIGHT - PAD_BOTTOM
    svg = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}: {total:.0f} processed, {failed_total:.0f} failed">'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}"/>'
        f'<line class="axis" x1="{PAD_LEFT}" y1="6" x2="{PAD_LEFT}" y2="{base}"/>'
        f'<text class="tick" x="{PAD_LEFT - 4}" y="12" text-anchor="end">{peak:.0f}</text>'
        f'<text class="tick" x="{PAD_LEFT - 4}" y="{base}" text-anchor="end">0</text>'
        f'<text class="tick" x="{PAD_LEFT}" y="{HEIGHT - 3}">-{_span(minutes)}</text>'
        f'<text class="tick" x="{WIDTH}" y="{HEIGHT - 3}" text-anchor="end">now</text>'
        f'<polyline class="processed" points="{_line(processed, peak)}"/>'
        f'<polyline class="failed" points="{_line(failed, peak)}"/>'
        "</svg>"
    )
    return Markup(svg)  # noqa: S704 - numbers and a fixed label only


def _span(minutes: int) -> str:
    return f"{minutes // 60} h" if minutes >= 60 else f"{minutes} min"  # noqa: PLR2004
