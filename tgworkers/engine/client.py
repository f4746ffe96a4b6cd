"""Enqueueing jobs: single, bulk, delayed and unique by job id (promise 5).

The payload is validated against the job type's Struct and size-checked before
anything reaches Redis (promise 7); a bad one raises `InputError` naming the
problem. Jobs of one partition are sent in one script call per chunk, so a bulk
enqueue costs one round trip per partition and chunk, not one per job.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Final

import anyio
import anyio.lowlevel
import msgspec
from opentelemetry import propagate
from redis import exceptions as rex
from redis.asyncio import Redis

from tgworkers.engine.enqueueing import EnqueueRequest, EnqueueResult
from tgworkers.engine.layout import Layout
from tgworkers.engine.live import Live
from tgworkers.engine.partitions import PartitionRecords
from tgworkers.engine.registry import JobType, Processor, Registry
from tgworkers.engine.settings import EngineSettings
from tgworkers.engine.telemetry.recorder import active as active_telemetry, carried_trace_headers
from tgworkers.engine.wire.envelope import Envelope, fields_json, to_fields
from tgworkers.engine.wire.keys import PartitionKeys
from tgworkers.engine.wire.script_items import NewJob
from tgworkers.engine.wire.scripts import MAX_DUE_MS, Scripts
from tgworkers.errors import InputError, PayloadError

__all__ = ["CHUNK", "Client", "EnqueueRequest", "EnqueueResult", "encode_payload", "new_job_id"]

CHUNK: Final = 500

CLUSTER_REFUSALS: Final = (rex.ClusterError, rex.RedisClusterException)
"""A cluster refused the command without running it: redirected until redis-py's TTL ran
out, CLUSTERDOWN (a ClusterError), or no node serving the slot at the client's refresh."""
REFUSAL_RETRY_S: Final = 15.0
_encoder: Final = msgspec.json.Encoder()


def _due_of(delayed: Any, state: Any, done: Any) -> int | None:
    """The existing job's due (or run, or finish) time from its records; None if gone."""
    if delayed is not None:
        return int(float(delayed))
    if state and state[:2] in (b"r:", b"x:"):
        return int(state[2:].split(b"-", 1)[0])
    return int(float(done)) if done is not None else None


class _RandomIds(threading.local):
    """96-bit random ids cut from one `os.urandom` read of 256 at a time.

    A syscall per job was a twentieth of a bulk enqueue's CPU (profiled). The buffer is
    per thread (producers may enqueue from several threads, an event loop each: two
    threads reading one offset would hand out one id twice, and the second job would be
    a silent duplicate), and a forked child starts a buffer of its own, so parent and
    child never hand out the same ids.
    """

    def __init__(self) -> None:
        self._buf, self._at = b"", 0

    def forget(self) -> None:
        self._buf, self._at = b"", 0

    def next(self) -> str:
        at = self._at
        if at + 12 > len(self._buf):
            self._buf, at = os.urandom(12 * 256), 0
        self._at = at + 12
        return self._buf[at : at + 12].hex()


_ids = _RandomIds()
os.register_at_fork(after_in_child=_ids.forget)  # the forking thread's buffer


def new_job_id() -> str:
    """A random 96-bit id for jobs whose type does not derive one."""
    return _ids.next()


def payload_error(jt: JobType[Any], exc: Exception) -> PayloadError:
    """Split msgspec's `problem - at `$.path`` message into its parts, with the schema."""
    text = str(exc)
    problem, sep, path = text.rpartition(" - at ")
    if not sep:
        problem, path = text, "$"
    return PayloadError(jt.name, problem, path.strip("`"), jt.expected())


def encode_payload(jt: JobType[Any], payload: Any, *, max_bytes: int) -> tuple[bytes, Any]:
    """Validate `payload` against the job type; returns (JSON bytes, decoded Struct)."""
    if isinstance(payload, bytes | str) and len(payload) > max_bytes:
        raise InputError(
            f"{jt.name}: payload is {len(payload)} bytes, over MAX_PAYLOAD_BYTES ({max_bytes})"
        )
    try:
        if isinstance(payload, jt.payload):
            value = payload
        elif isinstance(payload, bytes | str):
            value = jt.decoder.decode(payload)
        elif isinstance(payload, Mapping):
            value = msgspec.convert(payload, jt.payload)
        else:
            raise InputError(f"{jt.name}: payload must be a JSON object")
        if jt.validate is not None:
            jt.validate(value)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        raise payload_error(jt, exc) from None
    raw = _encoder.encode(value)
    if len(raw) > max_bytes:
        raise InputError(
            f"{jt.name}: payload is {len(raw)} bytes, over MAX_PAYLOAD_BYTES ({max_bytes})"
        )
    return raw, value


def deadline_ms(jt: JobType[Any], req: EnqueueRequest, now_ms: int, due_ms: int) -> int | None:
    """The job's `expires_ms`: the request's, else the job type's default, else None."""
    if req.expires_at_ms is not None:
        if due_ms and req.expires_at_ms <= due_ms:
            raise InputError(f"{jt.name}: expiresAt is not after runAt: the job could never run")
        return req.expires_at_ms
    if jt.expires_after_s is None:
        return None
    return max(now_ms, due_ms) + int(jt.expires_after_s * 1000)


class Client:
    """Enqueues jobs of the registered job types."""

    def __init__(
        self,
        redis: Redis,
        registry: Registry,
        settings: EngineSettings | Live[EngineSettings],
        *,
        layout: Layout | None = None,
        scripts: Scripts | None = None,
    ) -> None:
        """`layout` and `scripts` are the process's own when handed in (one of each)."""
        self.redis = redis
        self.registry = registry
        self.layout = layout or Layout(settings)
        self.scripts = scripts or Scripts(redis)
        self.partition_records = PartitionRecords(redis, self.layout)

    @property
    def settings(self) -> EngineSettings:
        """The settings in force now (a hot reload swaps them)."""
        return self.layout.settings

    async def enqueue(  # noqa: PLR0913 - keyword-only enqueue options
        self,
        name: str,
        payload: Any,
        *,
        id: str | None = None,
        run_at_ms: int | None = None,
        delay_s: float | None = None,
        origin: str | None = None,
        expires_at_ms: int | None = None,
    ) -> EnqueueResult:
        request = EnqueueRequest(
            name=name, payload=payload, id=id, run_at_ms=run_at_ms, delay_s=delay_s,
            origin=origin, expires_at_ms=expires_at_ms,
        )  # fmt: skip
        return (await self.enqueue_many([request]))[0]

    def prepare(
        self, req: EnqueueRequest, now_ms: int, trace: Mapping[str, str]
    ) -> tuple[PartitionKeys, NewJob, EnqueueResult]:
        """Validate one request and build its partition, job and (pending) result."""
        c = self._check(req, now_ms)
        _, proc, _, _, job_id, _, key, due, _ = c
        pk = self.layout.partition_for(proc, key if key is not None else job_id)
        result = EnqueueResult(id=job_id, queue=proc.queue, run_at=due or now_ms, created=False)
        return pk, self._job(c, now_ms, trace), result

    def _check(self, req: EnqueueRequest, now_ms: int) -> _Checked:
        """Everything about one request that can refuse it, and every call into job code."""
        jt = self.registry.job_type(req.name)
        proc = self.registry.processor_of[jt.name]
        raw, value = encode_payload(jt, req.payload, max_bytes=self.settings.max_payload_bytes)
        job_id = req.id or (jt.job_id(value) if jt.job_id else None)
        if job_id is not None and not job_id.strip():
            raise InputError(f"{jt.name}: job id must not be empty")
        auto = job_id is None
        job_id = job_id or new_job_id()
        key = jt.partition_key(value) if jt.partition_key else None
        due = _due_ms(jt.name, req, now_ms)
        expires = deadline_ms(jt, req, now_ms, due)
        return jt, proc, req.origin, raw, job_id, auto, key, due, expires

    @staticmethod
    def _job(c: _Checked, now_ms: int, trace: Mapping[str, str]) -> NewJob:
        """A checked request's job for the script: nothing here refuses."""
        jt, _, origin, raw, job_id, auto, key, due, expires = c
        env = Envelope(
            id=job_id, name=jt.name, payload=raw, enqueued_ms=now_ms, key=key, origin=origin,
            traceparent=trace.get("traceparent"), tracestate=trace.get("tracestate"),
            auto_id=auto, expires_ms=expires,
        )  # fmt: skip
        return NewJob(id=job_id, due_ms=due, fields_json=fields_json(to_fields(env)))

    async def _enqueue_through_refusals(
        self, pk: PartitionKeys, jobs: list[NewJob], ttl_ms: int
    ) -> list[bool]:
        """One enqueue call, sent again while a Redis Cluster refuses it without running it.

        During a slot migration or a failover the owning node can answer MOVED, ASK or
        TRYAGAIN until redis-py gives up ("TTL exhausted"), or CLUSTERDOWN; none of those
        ran the script, so sending it again cannot enqueue a job twice. Anything else
        (a reply lost with its connection) is raised to the caller, who knows the ids.
        """
        deadline = time.monotonic() + REFUSAL_RETRY_S
        delay = 0.05
        while True:
            try:
                return await self.scripts.enqueue(pk, jobs, dedupe_ttl_ms=ttl_ms)
            except CLUSTER_REFUSALS:
                if time.monotonic() + delay > deadline:
                    raise
                await anyio.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - jitter
                delay = min(delay * 2, 1.0)

    async def enqueue_many(self, requests: Iterable[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue a batch inside a `send <queue>` span whose context each job carries."""
        batch = list(requests)
        jobs: dict[tuple[str, str], int] = defaultdict(int)
        for r in batch:
            jt = self.registry.job_types.get(r.name)
            if jt is not None:  # an unknown name fails in `prepare`, naming it
                jobs[(self.registry.processor_of[jt.name].queue, jt.name)] += 1
        with active_telemetry().send_span((q for q, _ in jobs), jobs):
            return await self._enqueue_many(batch)

    async def _enqueue_many(self, requests: Iterable[EnqueueRequest]) -> list[EnqueueResult]:
        """Enqueue a batch: checked first (all or nothing), then one call per chunk.

        Each chunk's call goes out as soon as its jobs are built, and the next chunk is
        built while Redis runs it: built first and sent all at once, Redis sat idle while
        the producer built and the producer while Redis ran (bulk enqueue was the sum of
        the two, ~12 + ~5 us per job; now closer to the larger).
        """
        now_ms = int(time.time() * 1000)
        trace: dict[str, str] = {}
        propagate.inject(trace)
        if not trace:  # inside a run that records no span: the job's carried context
            trace = carried_trace_headers()
        checked = [self._check(r, now_ms) for r in requests]  # all or nothing (promise 7)
        single: dict[str, PartitionKeys | None] = {}  # per queue: its one partition, if one
        for queue in {proc.queue for _, proc, *_ in checked}:  # promise 12: counts agree
            await self.partition_records.check_producer(self.registry.queue(queue))
        pks: list[PartitionKeys] = []
        jobs: list[NewJob] = []
        created: list[bool] = [False] * len(checked)
        ttl_ms = self.settings.dedupe_ttl_s * 1000

        async def send(pk: PartitionKeys, idx: list[int]) -> None:
            flags = await self._enqueue_through_refusals(pk, [jobs[i] for i in idx], ttl_ms)
            for i, flag in zip(idx, flags, strict=True):
                created[i] = flag

        if len(checked) == 1:  # `enqueue`: one call, awaited here (a task is a loop hop)
            pks.append(self._partition(checked[0], single))
            jobs.append(self._job(checked[0], now_ms, trace))
            await send(pks[0], [0])
            return await self._existing_due(pks, jobs, self._results(checked, created, now_ms))
        groups: dict[PartitionKeys, list[int]] = defaultdict(list)
        async with anyio.create_task_group() as tg:
            for i, c in enumerate(checked):
                pk = self._partition(c, single)
                pks.append(pk)
                jobs.append(self._job(c, now_ms, trace))
                group = groups[pk]
                group.append(i)
                if len(group) == CHUNK:
                    tg.start_soon(send, pk, groups.pop(pk))
                    await anyio.lowlevel.checkpoint()  # the call goes out; build the next
            for pk, idx in groups.items():
                tg.start_soon(send, pk, idx)
        return await self._existing_due(pks, jobs, self._results(checked, created, now_ms))

    @staticmethod
    def _results(checked: list[_Checked], created: list[bool], now_ms: int) -> list[EnqueueResult]:
        results = []
        for (_, proc, _, _, job_id, _, _, due, _), flag in zip(checked, created, strict=True):
            results.append(EnqueueResult(id=job_id, queue=proc.queue, run_at=due or now_ms,
                                         created=flag))  # fmt: skip
        return results

    def _partition(self, c: _Checked, single: dict[str, PartitionKeys | None]) -> PartitionKeys:
        """The job's partition; a queue of one partition is looked up once per batch."""
        _, proc, _, _, job_id, _, key, _, _ = c
        pk = single.get(proc.queue)
        if pk is None:
            pk = self.layout.partition_for(proc, key if key is not None else job_id)
            if proc.queue not in single:
                single[proc.queue] = pk if self.layout.partition_count(proc) == 1 else None
        return pk

    async def _existing_due(
        self, pks: list[PartitionKeys], jobs: list[NewJob], results: list[EnqueueResult]
    ) -> list[EnqueueResult]:
        """A duplicate answers the existing job's due time, not the one just asked for.

        One pipelined read for the duplicates only (a new job's time is already known):
        a delayed job's score, else the time its ready or dead entry was written, else
        when it finished (inside the dedupe window).
        """
        dupes = [i for i, r in enumerate(results) if not r.created]
        if not dupes:
            return results
        pipe: Any = self.redis.pipeline(transaction=False)  # queued calls are not awaitables
        for i in dupes:
            pk, job = pks[i], jobs[i]
            pipe.zscore(pk.delayed, job.id)
            pipe.hget(pk.jobs, job.id)
            pipe.zscore(pk.done, job.id)
        replies: list[Any] = await pipe.execute()
        for n, i in enumerate(dupes):
            due = _due_of(*replies[3 * n : 3 * n + 3])
            if due is not None:
                results[i] = msgspec.structs.replace(results[i], run_at=due)
        return results

    async def state(self, name: str, job_id: str, payload: Any = None) -> str | None:
        """Where a job is: `ready` (or running), `delayed`, `dead-lettered`, `done`, or None.

        `payload` is needed only for job types whose partition key comes from it.
        """
        jt = self.registry.job_type(name)
        proc = self.registry.processor_of[jt.name]
        key = job_id
        if jt.partition_key is not None and payload is not None:
            _, value = encode_payload(jt, payload, max_bytes=self.settings.max_payload_bytes)
            key = jt.partition_key(value)
        pk = self.layout.partition_for(proc, key)
        raw: Any = await self.redis.hget(pk.jobs, job_id)
        if raw is not None:
            return {b"r": "ready", b"d": "delayed", b"x": "dead-lettered"}.get(raw[:1], "ready")
        if await self.redis.zscore(pk.done, job_id) is not None:
            return "done"
        return None


_Checked = tuple[JobType[Any], Processor, str | None, bytes, str, bool, str | None, int, int | None]
"""One checked request: job type, processor, origin, payload JSON, job id, auto id,
partition key, due ms, expires ms (a plain tuple: a NamedTuple's constructor is Python
code, and a bulk enqueue makes one per job)."""


def _due_ms(name: str, req: EnqueueRequest, now_ms: int) -> int:
    """The due time in Unix ms (0 = now), refused as the enqueue script would refuse it."""
    if req.delay_s is not None and not (math.isfinite(req.delay_s) and req.delay_s >= 0):
        raise InputError(f"{name}: delay {req.delay_s} s: expected a finite number >= 0")
    due = req.run_at_ms or (now_ms + int(req.delay_s * 1000) if req.delay_s else 0)
    if not 0 <= due <= MAX_DUE_MS:
        raise InputError(f"{name}: run at {due} ms: expected Unix ms from 0 to {MAX_DUE_MS}")
    return due
