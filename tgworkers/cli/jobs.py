"""`jobs [--json]`: each job type with its processor, queue, fields and policy.

`--json` also publishes what a producer in another language needs (engine/jobspec.py):
the payload's JSON Schema, the partition count, and the job-id and partition-key
templates (`"cfb.settle:{betId}"`), so clients can be generated from it.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from tgworkers.cli.services import add_app_flag, context, out_console, print_json
from tgworkers.config import Settings
from tgworkers.engine.jobspec import spec_of
from tgworkers.engine.layout import Layout
from tgworkers.engine.registry import Registry


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("jobs", help="list job types, their queues and policies")
    p.add_argument("--json", action="store_true", help='print {"jobs": [...]}')
    add_app_flag(p)
    p.set_defaults(func=main)


def describe(registry: Registry, settings: Settings) -> dict[str, Any]:
    """`jobs --json`; per-processor overrides (`MAX_ATTEMPTS_<P>`, ...) applied."""
    jobs = []
    layout = Layout(settings)
    for name in sorted(registry.job_types):
        jt = registry.job_types[name]
        proc = registry.processor_of[name]
        policy = jt.retry or settings.retry_policy(proc.env_name)
        timeout_s = settings.processor_overrides(proc.env_name).timeout_s or jt.timeout_s
        spec = spec_of(jt, proc, layout.partition_count(proc))
        jobs.append({
            "name": name, "processor": proc.name, "queue": proc.queue, "fields": jt.fields(),
            "maxAttempts": policy.max_attempts, "timeoutS": float(timeout_s),
            "schema": spec.schema, "partitions": spec.partitions, "jobId": spec.job_id,
            "jobIdFromPayload": spec.job_id_from_payload, "partitionKey": spec.partition_key,
            "partitionKeyFromPayload": spec.partition_key_from_payload,
            **({} if jt.expires_after_s is None else {"expiresAfterS": jt.expires_after_s}),
        })  # fmt: skip
    return {"jobs": jobs}


def main(args: argparse.Namespace) -> int:
    settings, registry = context(args)
    doc = describe(registry, settings)
    if args.json:
        print_json(doc)
        return 0
    t = Table("job", "queue", "fields", "max attempts", "timeout", title="job types")
    for j in doc["jobs"]:
        fields = ", ".join(f"{k}: {v}" for k, v in j["fields"].items())
        t.add_row(j["name"], j["queue"], fields, str(j["maxAttempts"]), f"{j['timeoutS']:g}s")
    out_console().print(t)
    return 0
