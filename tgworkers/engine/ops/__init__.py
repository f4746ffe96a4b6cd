"""The operator API: what the CLI, the admin API and the console call to look and act.

Pause and resume (`control`), dead letters and their search (`dlq`, `dlq_search`), stats and
history, browsing queues, the workers view, the audit log, repartitioning, single-job and
schedule actions, the finished-job lookup and the shared rate limits. Above the client and
the schedules, below the runtime: it changes Redis through the wire's scripts and never
reaches into a running worker (docs/operations.md).
"""
