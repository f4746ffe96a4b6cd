"""`python -m tests.faultcheck`: run seeded fault schedules and check their histories.

    python -m tests.faultcheck --schedules 500           # seeds 1..500
    python -m tests.faultcheck --seed 17                 # one schedule again, by its seed
    python -m tests.faultcheck --schedules 50 --kinds pause,cleanup

Prints one line per schedule, the schedule and the offending runs of every failing
seed with the command that re-runs it, then a summary table. Exit 1 when any
schedule had a violation.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import anyio
import msgspec

from tests.faultcheck.checker import KINDS
from tests.faultcheck.runner import Result, offending, run_schedule
from tests.faultcheck.schedule import FAULT_KINDS, KNOWN_KINDS, Options, Schedule, generate


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.faultcheck", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--schedules", type=int, default=1, help="how many schedules (default 1)")
    p.add_argument("--first-seed", type=int, default=1, help="seed of the first (default 1)")
    p.add_argument("--seed", type=int, help="run this one seed")
    p.add_argument("--workers", type=int, default=Options().workers)
    p.add_argument("--jobs", type=int, default=Options().jobs)
    p.add_argument("--keys", type=int, default=Options().keys)
    p.add_argument("--faults", default="2-3", help="faults per schedule, LOW-HIGH (default 2-3)")
    p.add_argument("--kinds", default=",".join(FAULT_KINDS),
                   help=f"fault kinds to draw from (default: {','.join(FAULT_KINDS)}; "
                   f"also: {','.join(KNOWN_KINDS[len(FAULT_KINDS):])})")  # fmt: skip
    p.add_argument("--keep", type=Path, help="keep each schedule's history under this folder")
    p.add_argument("--json", type=Path, help="write every result here (JSON lines)")
    p.add_argument("--show-excused", action="store_true", help="print excused overlaps too")
    return p.parse_args(argv)


def options(args: argparse.Namespace) -> Options:
    low, _, high = args.faults.partition("-")
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if unknown := set(kinds) - set(KNOWN_KINDS):
        raise SystemExit(f"--kinds: unknown {sorted(unknown)}; known: {','.join(KNOWN_KINDS)}")
    return Options(workers=args.workers, jobs=args.jobs, keys=args.keys,
                   faults=(int(low), int(high or low)), kinds=kinds)  # fmt: skip


def report_line(s: Schedule, r: Result) -> str:
    bad = r.verdict.by_kind()
    verdict = ", ".join(f"{k} {n}" for k, n in sorted(bad.items())) or "ok"
    excused = f" (+{len(r.verdict.excused)} excused)" if r.verdict.excused else ""
    drained = "" if r.drained else " NOT DRAINED"
    return (f"seed {s.seed:5d} {','.join(r.kinds):32s} jobs {r.jobs} runs {r.runs:4d} "
            f"{r.seconds:5.1f}s: {verdict}{excused}{drained}")  # fmt: skip


def summary(results: list[Result], schedules: list[Schedule]) -> str:
    faults: Counter[str] = Counter(k for r in results for k in r.kinds)
    caught: Counter[str] = Counter()  # fault kind -> schedules with a violation
    violations: Counter[str] = Counter()
    for r in results:
        violations.update(r.verdict.by_kind())
        if r.verdict.violations:
            caught.update(set(r.kinds))
    failing = [r.seed for r in results if r.verdict.violations]
    seconds = sum(r.seconds for r in results)
    rows = [
        ("schedules", str(len(results))),
        (
            "failing schedules",
            f"{len(failing)}" + (f" (seeds {_seeds(failing)})" if failing else ""),
        ),
        ("jobs / runs", f"{sum(r.jobs for r in results)} / {sum(r.runs for r in results)}"),
        ("time", f"{seconds:.0f}s, {seconds / max(len(results), 1):.1f}s per schedule"),
        ("excused overlaps (a stalled process)", str(sum(len(r.verdict.excused) for r in results))),
        ("skipped faults", str(sum(len(r.skipped) for r in results))),
    ]
    rows += [(f"fault {k} (in failing schedules)", f"{faults[k]} ({caught[k]})") for k in KNOWN_KINDS
             if faults[k]]  # fmt: skip
    rows += [(f"violations: {k}", str(violations[k])) for k in KINDS]
    width = max(len(a) for a, _ in rows)
    return "\n".join(f"| {a:{width}s} | {b} |" for a, b in rows)


def _seeds(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds[:30])) + (" …" if len(seeds) > 30 else "")


async def main(args: argparse.Namespace) -> int:
    o = options(args)
    seeds = (
        [args.seed]
        if args.seed is not None
        else range(args.first_seed, args.first_seed + args.schedules)
    )
    results: list[Result] = []
    schedules: list[Schedule] = []
    encoder = msgspec.json.Encoder()
    errors: list[int] = []
    for seed in seeds:
        s = generate(seed, o)
        keep = args.keep / str(seed) if args.keep else None
        try:
            r = await run_schedule(s, keep=keep)
        except Exception as exc:  # noqa: BLE001 - the runner's own failure: say so, go on
            errors.append(seed)
            print(f"seed {seed:5d} {','.join(s.kinds()):32s} RUNNER ERROR {exc!r}", flush=True)
            print(s.describe())
            continue
        results.append(r)
        schedules.append(s)
        print(report_line(s, r), flush=True)
        if r.verdict.violations or r.skipped:
            print(s.describe())
            for why in r.skipped:
                print(f"  skipped: {why}")
            if r.verdict.violations:
                print(offending(r))
                flags = o.flags()
                print(
                    f"  re-run: python -m tests.faultcheck --seed {seed}{' ' + flags if flags else ''}"
                )
            sys.stdout.flush()
        if args.show_excused and r.verdict.excused:
            print("\n".join(v.describe(r.t0) for v in r.verdict.excused))
        if args.json:
            with args.json.open("ab") as out:
                out.write(encoder.encode({"schedule": s, "result": r}) + b"\n")
    print()
    print(summary(results, schedules))
    if errors:
        print(f"| runner errors | {len(errors)} (seeds {_seeds(errors)}) |")
    return 1 if errors or any(r.verdict.violations for r in results) else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, parse()))
