"""The printed tables (median and min-max over rounds) and the PNG chart."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from bench.peers.cost import Cost

DASH = "\u2013"  # en dash, as in the README's tables
Results = dict[str, dict[str, list[float]]]  # system -> metric -> one value per round


class Collector:
    def __init__(self) -> None:
        self.values: Results = defaultdict(lambda: defaultdict(list))
        self.failures: dict[str, dict[str, str]] = defaultdict(dict)
        self.top: dict[str, dict[str, list[tuple[str, float]]]] = defaultdict(dict)

    def add(self, system: str, metric: str, value: float) -> None:
        self.values[system][metric].append(value)

    def add_cost(self, system: str, phase: str, cost: Cost) -> None:
        self.add(system, f"{phase}_process_us", cost.process_us)
        self.add(system, f"{phase}_redis_us", cost.redis_us)
        self.add(system, f"{phase}_cmds", cost.commands)
        self.top[system][phase] = cost.top

    def fail(self, system: str, metric: str, why: str) -> None:
        self.failures[system][metric] = why


def cell(c: Collector, system: str, metric: str, fmt: str = ",.0f") -> str:
    values = c.values[system].get(metric)
    if not values:
        return "failed" if metric in c.failures[system] else "—"
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{med:{fmt}} ({min(values):{fmt}}{DASH}{max(values):{fmt}})"


def pair(c: Collector, system: str, a: str, b: str, fmt: str = ",.1f") -> str:
    if not c.values[system].get(a):
        return cell(c, system, a)
    return f"{cell(c, system, a, fmt)} / {cell(c, system, b, fmt)}"


def main_table(c: Collector, systems: list[tuple[str, str]]) -> str:
    rows = [
        "| system | version | enqueue jobs/s | drain 1 proc jobs/s | drain 2 procs jobs/s "
        "| pickup p50 / p99 ms (500/s) | pickup p50 / p99 ms (5,000/s) "
        "| delayed p50 / p99 ms late (1,000 due +1 s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, version in systems:
        rows.append(
            f"| {name} | {version} | {cell(c, name, 'enqueue')} | {cell(c, name, 'drain1')} "
            f"| {cell(c, name, 'drain2')} | {pair(c, name, 'lat_p50', 'lat_p99', ',.2f')} "
            f"| {pair(c, name, 'fast_p50', 'fast_p99')} "
            f"| {pair(c, name, 'del_p50', 'del_p99', ',.0f')} |"
        )
    return "\n".join(rows)


def cost_table(c: Collector, systems: list[tuple[str, str]]) -> str:
    rows = [
        "| system | drain: worker CPU µs/job | worker busy % | drain: Redis CPU µs/job "
        "| drain: commands/job "
        "| top drain commands per job | enqueue: producer CPU µs/job | enqueue: Redis CPU µs/job "
        "| enqueue: commands/job |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, _ in systems:
        top = ", ".join(f"{cmd} {n:.2f}" for cmd, n in c.top[name].get("drain", [])[:4])
        rows.append(
            f"| {name} | {cell(c, name, 'drain_process_us')} | {cell(c, name, 'drain_busy')} "
            f"| {cell(c, name, 'drain_redis_us', ',.1f')} "
            f"| {cell(c, name, 'drain_cmds', ',.3f')} | {top} "
            f"| {cell(c, name, 'enqueue_process_us', ',.1f')} | {cell(c, name, 'enqueue_redis_us', ',.1f')} "
            f"| {cell(c, name, 'enqueue_cmds', ',.2f')} |"
        )
    return "\n".join(rows)


def chart(c: Collector, names: list[str], path: Path) -> None:
    """Four panels: drain rates, pickup p99, delayed p99, CPU per drained job."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    def med(name: str, metric: str) -> float:
        v = c.values[name].get(metric)
        return statistics.median(v) if v else 0.0

    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    xs = range(len(names))
    ax = axes[0][0]
    ax.bar([x - 0.2 for x in xs], [med(n, "drain1") for n in names], 0.4, label="1 process")
    ax.bar([x + 0.2 for x in xs], [med(n, "drain2") for n in names], 0.4, label="2 processes")
    for bars in ax.containers:
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    ax.set_yscale("log")
    ax.set_title("drain of 20,000 no-op jobs, jobs/s (log)")
    ax.legend()
    panels = [
        (axes[0][1], "lat_p99", "pickup latency p99 at 500 jobs/s, ms (log)"),
        (axes[1][0], "del_p99", "delayed job lateness p99, ms (log; due +1 s)"),
    ]
    for ax, metric, title in panels:
        bars = ax.bar(list(xs), [med(n, metric) for n in names], 0.6, color="tab:orange")
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.set_yscale("log")
        ax.set_title(title)
    ax = axes[1][1]
    worker = [med(n, "drain_process_us") for n in names]
    ax.bar(list(xs), worker, 0.6, label="worker CPU")
    ax.bar(
        list(xs), [med(n, "drain_redis_us") for n in names], 0.6, bottom=worker, label="Redis CPU"
    )
    ax.set_title("CPU per drained job, µs")
    ax.legend()
    for row in axes:
        for ax in row:
            ax.set_xticks(list(xs), names, rotation=20, fontsize=8)
    fig.suptitle("Python Redis job queues, one run, interleaved rounds, medians (2-core machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
