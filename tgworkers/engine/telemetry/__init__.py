"""Telemetry: what a job run records, under which names, and how it leaves the process.

The recorder (per-run spans and histograms, the process's active telemetry), the catalogue
of instrument names, the observable instruments' sources, the run's log and trace context,
the per-job budgets, and the providers' setup. Below the client and the runtime, which
record through it; above the wire and the job-facing model, which it reads
(docs/observability.md).
"""
