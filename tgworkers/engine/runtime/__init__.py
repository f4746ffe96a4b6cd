"""The runtime: a worker process reading, running and settling jobs.

`worker` runs one process's parts, which `assembly` builds (the process itself is
assembled by `tgworkers.bootstrap.launcher`); per processor, `processor` (the read loop and
hand-off to consumers), `broker` (stream commands, the `Delivery`), `executor` (one run to a
decision), `leases` and the watchdog, `recovery` (XAUTOCLAIM sweeps), `promoter` (delayed to
ready), `exclusive` (per-key locks) and `unfinished` (lost runs still finishing). The top of
the engine: it may use every other part (docs/engine.md, docs/architecture.md).
"""
