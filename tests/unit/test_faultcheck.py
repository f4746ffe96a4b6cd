"""The fault-schedule checker's verdicts on hand-made histories (tests/faultcheck/checker.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.faultcheck.checker import History, Job, Outcome, check
from tests.faultcheck.history import How, Run, Stall, load_runs
from tests.faultcheck.moveread import held_back
from tests.faultcheck.schedule import FAULT_KINDS, Options, generate

from tgworkers.engine.wire.keys import partition_of


def run(rid: str, job: str, start: float, end: float, *, key: str = "k", pid: int = 1,
        n: int | None = None, how: How = "ok") -> Run:  # fmt: skip
    return Run(run=rid, pid=pid, job_id=job, n=int(job.rsplit("-", 1)[1]) if n is None else n,
               key=key, attempt=1, deliveries=1, partition=0, start=start, end=end,
               how=how)  # fmt: skip


def jobs(*ids: str, key: str = "k") -> list[Job]:
    return [Job(n=int(i.rsplit("-", 1)[1]), job_id=i, key=key) for i in ids]


def done(**times: float) -> Outcome:
    return Outcome(done={k.replace("_", "-"): t for k, t in times.items()}, dead={}, leftover={})


def kinds(h: History) -> list[str]:
    return sorted(v.kind for v in check(h).violations)


def test_a_clean_history_has_no_violation() -> None:
    h = History(jobs=jobs("j-1", "j-2"),
                runs=[run("a", "j-1", 1.0, 2.0), run("b", "j-2", 2.0, 3.0, pid=2)],
                stalls=[], outcome=done(j_1=2.1, j_2=3.1))  # fmt: skip
    assert check(h).violations == []


def test_two_runs_of_one_key_at_once_overlap_across_jobs_and_processes() -> None:
    h = History(jobs=jobs("j-1", "j-2"),
                runs=[run("a", "j-1", 1.0, 2.0), run("b", "j-2", 1.5, 3.0, pid=2)],
                stalls=[], outcome=done(j_1=2.1, j_2=3.1))  # fmt: skip
    (v,) = check(h).violations
    assert v.kind == "overlap"
    assert [r.run for r in v.runs] == ["a", "b"]
    assert "two processes" in v.detail


def test_runs_of_different_keys_may_overlap() -> None:
    h = History(jobs=jobs("j-1") + jobs("j-2", key="other"),
                runs=[run("a", "j-1", 1.0, 2.0), run("b", "j-2", 1.5, 3.0, key="other")],
                stalls=[], outcome=done(j_1=2.1, j_2=3.1))  # fmt: skip
    assert check(h).violations == []


def test_a_cancelled_run_still_cleaning_up_overlaps_its_rerun_in_the_same_process() -> None:
    cancelled = Run(run="a", pid=1, job_id="j-1", n=1, key="k", attempt=1, deliveries=1,
                    partition=0, start=1.0, end=3.0, how="cancelled", cancelled_at=2.0)  # fmt: skip
    h = History(jobs=jobs("j-1"), runs=[cancelled, run("b", "j-1", 2.5, 3.5)], stalls=[],
                outcome=done(j_1=3.6))  # fmt: skip
    (v,) = check(h).violations
    assert v.kind == "overlap" and "same process" in v.detail
    assert "cancelled@2.000" in v.describe()


def test_an_overlap_that_began_while_the_first_process_was_stopped_is_excused() -> None:
    stop = Stall(pid=1, start=1.2, end=4.0, kind="sigstop")
    h = History(jobs=jobs("j-1"),
                runs=[run("a", "j-1", 1.0, 4.1, how="cancelled"), run("b", "j-1", 3.5, 4.5, pid=2)],
                stalls=[stop], outcome=done(j_1=4.6))  # fmt: skip
    verdict = check(h)
    assert verdict.violations == []
    assert [v.kind for v in verdict.excused] == ["overlap"]


def test_an_overlap_begun_long_after_a_stall_ended_is_not_excused() -> None:
    stop = Stall(pid=1, start=1.2, end=2.0, kind="sigstop")
    h = History(jobs=jobs("j-1"),
                runs=[run("a", "j-1", 1.0, 4.0), run("b", "j-1", 3.0, 4.5, pid=2)],
                stalls=[stop], outcome=done(j_1=4.6), grace_s=0.5)  # fmt: skip
    assert kinds(h) == ["overlap"]


def test_a_stall_of_the_later_runs_process_excuses_nothing() -> None:
    stop = Stall(pid=2, start=1.2, end=4.0, kind="block")
    h = History(jobs=jobs("j-1", "j-2"),
                runs=[run("a", "j-1", 1.0, 4.0), run("b", "j-2", 3.0, 4.5, pid=2)],
                stalls=[stop], outcome=done(j_1=4.1, j_2=4.6))  # fmt: skip
    assert kinds(h) == ["overlap"]


def test_a_job_neither_done_nor_dead_lettered_is_lost() -> None:
    h = History(jobs=jobs("j-1", "j-2"), runs=[run("a", "j-1", 1.0, 2.0)], stalls=[],
                outcome=done(j_1=2.1))  # fmt: skip
    (v,) = check(h).violations
    assert v.kind == "lost" and "j-2" in v.detail


def test_a_dead_letter_needs_a_reason_and_is_not_lost() -> None:
    h = History(jobs=jobs("j-1", "j-2"), runs=[run("a", "j-1", 1.0, 2.0, how="error")],
                stalls=[], outcome=Outcome(done={}, dead={"j-1": "poison: 6 deliveries",
                                                          "j-2": " "}, leftover={}))  # fmt: skip
    assert kinds(h) == ["dead-no-reason"]


def test_entries_left_in_the_queue_are_stuck() -> None:
    h = History(jobs=jobs("j-1"), runs=[run("a", "j-1", 1.0, 2.0)], stalls=[],
                outcome=Outcome(done={"j-1": 2.1}, dead={},
                                leftover={"ready": 0, "pending": 1, "delayed": 0}))  # fmt: skip
    (v,) = check(h).violations
    assert v.kind == "stuck" and "pending" in v.detail


def test_a_run_that_starts_after_its_job_was_done() -> None:
    h = History(jobs=jobs("j-1"),
                runs=[run("a", "j-1", 1.0, 2.0), run("b", "j-1", 2.5, 3.0, pid=2, how="error")],
                stalls=[], outcome=done(j_1=2.05))  # fmt: skip
    (v,) = check(h).violations
    assert v.kind == "run-after-done" and [r.run for r in v.runs] == ["b"]


def test_a_run_within_the_clock_tolerance_of_done_is_not_after_it() -> None:
    h = History(jobs=jobs("j-1"), runs=[run("a", "j-1", 1.0, 2.0)], stalls=[],
                outcome=done(j_1=0.995))  # fmt: skip
    assert check(h).violations == []


def test_done_needs_a_run_that_returned() -> None:
    h = History(jobs=jobs("j-1"), runs=[run("a", "j-1", 1.0, 2.0, how="cancelled")], stalls=[],
                outcome=done(j_1=2.1))  # fmt: skip
    assert kinds(h) == ["done-without-run"]


def test_duplicate_entries_run_one_after_the_other_under_one_id_are_fine() -> None:
    h = History(jobs=[Job(n=1, job_id="j-1", key="k", entries=2)],
                runs=[run("a", "j-1", 1.0, 2.0), run("b", "j-1", 2.0, 3.0, pid=2)],
                stalls=[], outcome=done(j_1=3.05))  # fmt: skip
    assert check(h).violations == []


def test_duplicate_entries_at_once_overlap_and_a_run_under_another_id_is_named() -> None:
    h = History(jobs=[Job(n=1, job_id="j-1", key="k", entries=2)],
                runs=[run("a", "j-1", 1.0, 2.0), run("b", "j-1", 1.2, 2.2, pid=2),
                      run("c", "x-9", 3.0, 3.5, n=1)],
                stalls=[], outcome=done(j_1=2.3))  # fmt: skip
    assert kinds(h) == ["id-mismatch", "overlap"]


def test_history_files_become_runs_and_a_killed_run_ends_at_its_kill(tmp_path: Path) -> None:
    lines = [
        {"e": "s", "run": "7-1", "t": 1.0, "job": "j-1", "n": 1, "key": "k", "att": 1, "dlv": 1,
         "part": 0},
        {"e": "c", "run": "7-1", "t": 1.5},
        {"e": "x", "run": "7-1", "t": 2.0, "how": "cancelled"},
        {"e": "s", "run": "7-2", "t": 2.5, "job": "j-2", "n": 2, "key": "k", "att": 1, "dlv": 1,
         "part": 1},
        {"e": "b0", "run": "7-2", "t": 2.6},
    ]  # fmt: skip
    text = "\n".join(json.dumps(x) for x in lines) + '\n{"e": "x", "ru'  # a torn last line
    (tmp_path / "7.jsonl").write_text(text)
    runs, stalls = load_runs(tmp_path, died={7: 9.0})
    by_id = {r.run: r for r in runs}
    assert by_id["7-1"].how == "cancelled" and by_id["7-1"].cancelled_at == 1.5
    assert (by_id["7-2"].end, by_id["7-2"].how) == (9.0, "open")
    assert stalls == [Stall(pid=7, start=2.6, end=9.0, kind="block")]


def test_a_seed_gives_one_schedule() -> None:
    o = Options(jobs=50)
    assert generate(11, o) == generate(11, o)
    assert generate(11, o) != generate(12, o)
    s = generate(11, o)
    assert 2 <= len(s.faults) <= 3 and set(s.kinds()) <= set(FAULT_KINDS)
    assert len(s.payloads) == 50 and {p.n for p in s.payloads} == set(range(50))


def test_an_overlap_of_one_job_in_two_partitions_says_it_was_moved() -> None:
    moved = Run(run="b", pid=2, job_id="j-1", n=1, key="k", attempt=1, deliveries=1,
                partition=2, start=1.5, end=2.5, how="ok")  # fmt: skip
    h = History(jobs=jobs("j-1"), runs=[run("a", "j-1", 1.0, 2.0), moved], stalls=[],
                outcome=done(j_1=2.6))  # fmt: skip
    (v,) = check(h).violations
    assert "partitions 0 and 2 (moved)" in v.detail


def test_moveread_is_drawn_only_when_named_and_holds_back_long_jobs_of_moving_keys() -> None:
    """The default mix (and so every documented seed) is as before; `moveread`'s jobs run
    past the move (5-7 s), compensate when cancelled, and have keys the 2 -> 3 move moves,
    one key each."""
    assert "moveread" not in FAULT_KINDS
    s = generate(2, Options(jobs=60, faults=(1, 1), kinds=("moveread",)))
    (f,) = s.faults
    assert f.kind == "moveread" and len(f.jobs) == 3 and held_back(s.faults) == set(f.jobs)
    for n in f.jobs:
        p = s.payloads[n]
        assert 5000 <= p.sleep_ms <= 7000 and 8000 <= p.cleanup_ms <= 10000
        assert partition_of(p.key, 2) != partition_of(p.key, 3)
    assert len({s.payloads[n].key for n in f.jobs}) == 3, "one key each: none waits on another"
    others = [p for p in s.payloads if p.n not in f.jobs]
    assert all(p.sleep_ms <= 250 and not p.cleanup_ms for p in others)
