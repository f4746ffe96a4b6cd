"""The fault-schedule checker (issue #22): seeded fault schedules, a history, a verdict.

- `schedule`: a seed (and options) -> jobs and a timed list of faults;
- `app`: the worker app, one exclusive job type whose runs write a history;
- `history`: the history's lines (per worker process, monotonic clock) and reader;
- `checker`: history -> violations, pure (tested in tests/unit/test_faultcheck.py);
- `runner`: one schedule against redis-server, TCP proxies and worker subprocesses;
- `__main__`: `python -m tests.faultcheck --schedules 500` (docs/engine.md).
"""
