"""The runtime: a worker process reading, running and settling jobs.

`worker` runs one process's parts, which `assembly` builds (the process itself is
assembled by `tgworkers.bootstrap.launcher`), and `upkeep` does the worker's own Redis
chores. Per processor: `processor` (the read and consume loops), `settler` (the settle
loop), `deliveries` (the one owner of delivery state: held entries, unfinished runs, each
`Delivery`'s transitions; `delivery` the value, `counters` the counts), `broker` (stream
commands), `executor` (one run to a decision) and `settlement` (the decision to a settle
item), `leases` and the watchdog, `recovery` (XAUTOCLAIM sweeps), `promoter` (delayed to
ready), `exclusive` (per-key locks) and `unfinished` (lost runs still finishing). The top of
the engine: it may use every other part (docs/engine.md, docs/architecture.md).
"""
