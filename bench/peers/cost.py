"""Cost accounting: CPU of processes from /proc, Redis CPU and commands from INFO.

A `Meter` is started before a phase and read after it. Redis's statistics are reset at
start (CONFIG RESETSTAT), so the command counts are the phase's alone; Redis CPU is the
delta of `used_cpu_user + used_cpu_sys` (the server's, all threads). Process CPU is
utime + stime of each pid (all its threads), in clock ticks converted to seconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import redis

TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def redis_cpu_s(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@dataclass
class Cost:
    """What one phase cost, per job."""

    jobs: int
    process_us: float  # CPU of the measured processes, µs per job
    redis_us: float
    commands: float  # Redis commands per job (scripts' inner commands included)
    top: list[tuple[str, float]] = field(default_factory=list)  # (command, per job), top 6


class Meter:
    def __init__(self, r: redis.Redis, pids: list[int]) -> None:
        self.r, self.pids = r, pids
        self.r.config_resetstat()
        self.cpu0 = sum(process_cpu_s(p) for p in pids)
        self.redis0 = redis_cpu_s(r)

    def read(self, jobs: int) -> Cost:
        cpu = sum(process_cpu_s(p) for p in self.pids) - self.cpu0
        redis_cpu = redis_cpu_s(self.r) - self.redis0
        stats = self.r.info("commandstats")
        calls = {
            name.removeprefix("cmdstat_"): int(v["calls"])
            for name, v in stats.items()
            if not name.startswith(("cmdstat_config", "cmdstat_info"))
        }
        top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
        return Cost(
            jobs=jobs,
            process_us=cpu / jobs * 1e6,
            redis_us=redis_cpu / jobs * 1e6,
            commands=sum(calls.values()) / jobs,
            top=[(name, n / jobs) for name, n in top],
        )
