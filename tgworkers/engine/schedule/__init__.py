"""Schedules: cron expressions and the loop that enqueues each tick once.

`cron` parses and steps expressions (5 or 6 fields, `@hourly`, seconds); `scheduler` keeps
the ledger in Redis so any number of replicas fire each tick exactly once (promise 8). It
enqueues through the client and knows nothing of the runtime (docs/scheduler.md).
"""
