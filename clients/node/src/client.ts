import { randomBytes } from "node:crypto";
import type { Context } from "@opentelemetry/api";
import { type Cluster, Redis } from "ioredis";

import { JOB_SPECS, type JobPayloads } from "./generated/jobs.js";
import { ENQUEUE_LUA, FIELD } from "./generated/wire.js";
import { partitionKeys, partitionOf } from "./partition.js";
import { type JobSpec, render } from "./spec.js";
import { traceFields } from "./trace.js";

/**
 * The enqueue.lua (sha256) and the entry fields this file was written and reviewed
 * against: KEYS/ARGV layout in `enqueueMany`, fields in `prepare`. The drift test
 * (tests/unit/test_node_client_drift.py) fails when the Python package moves on, so
 * a change to the script or the fields cannot ship without a look at this client.
 */
export const WRITTEN_FOR = {
  enqueueLuaSha256: "aa8ab063e8070feb1c8325ebbfa6a85716d58f46c1d0ea1a70aded48366db469",
  // snoozes, waits, moved_deliveries, errors, due_ms, reason, failed_ms: the engine's own;
  // a producer never sets them. expires_ms: a job's deadline, written when `expiresAt` is given
  fields: ["id", "name", "payload", "attempt", "enqueued_ms", "due_ms", "key", "origin",
    "traceparent", "tracestate", "errors", "auto_id", "expires_ms", "snoozes", "waits",
    "moved_deliveries", "reason", "failed_ms"],
} as const;

/** Jobs of one partition go in one script call per chunk of this many. */
export const CHUNK = 500;

/** A queue's recorded partition count is re-read at most this often (as the Python producer). */
export const RECHECK_MS = 1000;

/**
 * The partition count recorded in Redis for a queue is not this client's (docs/wire-format.md,
 * "The partition of a job"): enqueueing would put jobs where the workers do not look for them.
 * Nothing of the call was written.
 */
export class PartitionCountError extends Error {
  constructor(readonly queue: string, readonly mine: number, readonly recorded: string) {
    const moving = recorded.includes(">");
    super(moving
      ? `queue ${queue} is still being repartitioned (${recorded.replace(">", " -> ")}); nothing was enqueued`
      : `queue ${queue}: this client has ${mine} partitions but Redis records ${recorded}; ` +
        `set partitions: {${JSON.stringify(queue)}: ${recorded}} (PARTITIONS_<P> of the workers)`);
    this.name = "PartitionCountError";
  }
}

export interface ClientOptions<Specs = Record<string, JobSpec>> {
  /** An ioredis client (Redis or Cluster) or a `redis://` URL (the client then owns it). */
  redis: Redis | Cluster | string;
  /** `QUEUE_PREFIX` of the workers (default `tgw`). */
  prefix?: string;
  /** `DLQ_SUFFIX` of the workers (default `:dlq`). */
  dlqSuffix?: string;
  /** `DEDUPE_TTL_S` of the workers (default 86400): how long a finished id stays taken. */
  dedupeTtlS?: number;
  /** `MAX_PAYLOAD_BYTES` of the workers (default 65536). */
  maxPayloadBytes?: number;
  /** Partition count per queue when it differs from the generated specs (`PARTITIONS_<P>`). */
  partitions?: Record<string, number>;
  /** Who enqueues (`playhub`, `game-server-7`): kept on the job, shown in the DLQ. */
  origin?: string;
  /** How long an enqueue waits while `tgworkers repartition` moves the queue (default 60000). */
  moveWaitMs?: number;
  /** The job types; default: the ones generated from `tgworkers jobs --json`. */
  jobs?: Specs;
}

export interface EnqueueOptions {
  /** An explicit job id (default: derived from the payload, else random). */
  id?: string;
  /** Run at this time (a Date or Unix ms). */
  runAt?: Date | number;
  /** Run after this many milliseconds. */
  delayMs?: number;
  /**
   * The job's deadline (a Date or Unix ms): delivered at or after it, the job is
   * dead-lettered with reason `expired` instead of run (wire field `expires_ms`). Must be
   * after `runAt`. A job type's own default (`JobType(expires_after_s=…)`) is applied
   * by the Python producers only: none of the platform's job types sets one.
   */
  expiresAt?: Date | number;
  origin?: string;
  /** The OpenTelemetry context whose trace the job joins (default: the active one). */
  context?: Context;
}

export interface EnqueueResult {
  id: string;
  queue: string;
  /** When it runs (Unix ms). */
  runAt: number;
  /** False when a job with this id was already ready, delayed, running, dead or recently done. */
  created: boolean;
}

/** One job of `enqueueMany`: its name decides its payload's type (a discriminated union). */
export type Job<P> = { [N in keyof P]: { name: N; payload: P[N] } & EnqueueOptions }[keyof P];

interface Prepared {
  keys: string[];
  partitions: number;
  id: string;
  due: number;
  fields: string;
  result: EnqueueResult;
}

type ScriptRunner = (...args: (string | number)[]) => Promise<number[]>;

/**
 * Enqueues tgworkers jobs with the engine's own `enqueue.lua` (unique ids, delayed jobs,
 * bulk): the same keys, partitions and fields as the Python producer.
 */
export class TgworkersClient<P extends object = JobPayloads> {
  readonly redis: Redis | Cluster;
  private readonly owns: boolean;
  private readonly prefix: string;
  private readonly dlqSuffix: string;
  private readonly ttlMs: number;
  private readonly maxPayloadBytes: number;
  private readonly specs: Record<string, JobSpec>;
  private readonly checked = new Map<string, number>();

  constructor(private readonly options: ClientOptions) {
    this.owns = typeof options.redis === "string";
    this.redis = typeof options.redis === "string" ? new Redis(options.redis) : options.redis;
    this.prefix = options.prefix ?? "tgw";
    this.dlqSuffix = options.dlqSuffix ?? ":dlq";
    this.ttlMs = (options.dedupeTtlS ?? 86_400) * 1000;
    this.maxPayloadBytes = options.maxPayloadBytes ?? 65_536;
    this.specs = options.jobs ?? JOB_SPECS;
    this.redis.defineCommand("tgworkersEnqueue", { numberOfKeys: 6, lua: ENQUEUE_LUA });
  }

  /** Enqueue one job; `created` is false when its id already existed. */
  async enqueue<N extends keyof P & string>(
    name: N,
    payload: P[N],
    options: EnqueueOptions = {},
  ): Promise<EnqueueResult> {
    const [result] = await this.enqueueMany([{ name, payload, ...options } as Job<P>]);
    return result as EnqueueResult;
  }

  /** Enqueue a batch: all prepared first (a bad one throws, nothing is sent), one call per partition chunk. */
  async enqueueMany(jobs: Array<Job<P>>): Promise<EnqueueResult[]> {
    const now = Date.now();
    const prepared = jobs.map((job) => this.prepare(job, now));
    for (const [queue, count] of new Map(prepared.map((p) => [p.result.queue, p.partitions]))) {
      await this.checkPartitions(queue, count);
    }
    const groups = new Map<string, Prepared[]>();
    for (const p of prepared) {
      const key = p.keys[0] as string;
      groups.set(key, [...(groups.get(key) ?? []), p]);
    }
    const run = (this.redis as unknown as { tgworkersEnqueue: ScriptRunner }).tgworkersEnqueue.bind(this.redis);
    const calls: Promise<void>[] = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += CHUNK) {
        const chunk = group.slice(i, i + CHUNK);
        const args: (string | number)[] = [...(chunk[0] as Prepared).keys.slice(0, 6), this.ttlMs,
          (chunk[0] as Prepared).keys[6] as string, chunk.length];
        for (const p of chunk) args.push(p.id, p.due, p.fields);
        calls.push(run(...args).then((flags) => {
          chunk.forEach((p, j) => { p.result.created = flags[j] === 1; });
        }));
      }
    }
    await Promise.all(calls);
    return prepared.map((p) => p.result);
  }

  private prepare(job: Job<P>, now: number): Prepared {
    const name = String(job.name);
    const spec = this.specs[name];
    if (!spec) throw new Error(`unknown job type ${JSON.stringify(name)}; known: ${Object.keys(this.specs).sort().join(", ")}`);
    const payload = job.payload as unknown as Record<string, unknown>;
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      throw new TypeError(`${name}: payload must be a JSON object`);
    }
    const text = JSON.stringify(payload);
    const size = Buffer.byteLength(text, "utf8");
    if (size > this.maxPayloadBytes) {
      throw new RangeError(`${name}: payload is ${size} bytes, over MAX_PAYLOAD_BYTES (${this.maxPayloadBytes})`);
    }
    const derived = derive(spec, "jobId", payload, name);
    const id = job.id ?? derived ?? randomBytes(12).toString("hex");
    if (!id.trim()) throw new Error(`${name}: job id must not be empty`);
    const key = derive(spec, "partitionKey", payload, name);
    const due = dueMs(job, now);
    const partitions = this.options.partitions?.[spec.queue] ?? spec.partitions;
    const pk = partitionKeys(this.prefix, spec.queue, partitionOf(key ?? id, partitions), this.dlqSuffix);
    const fields: string[] = [FIELD.ID, id, FIELD.NAME, name, FIELD.PAYLOAD, text, FIELD.ATTEMPT, "1",
      FIELD.ENQUEUED_MS, String(now)];
    const trace = traceFields(job.context);
    const origin = job.origin ?? this.options.origin;
    for (const [field, value] of [[FIELD.KEY, key], [FIELD.ORIGIN, origin],
      [FIELD.TRACEPARENT, trace.traceparent], [FIELD.TRACESTATE, trace.tracestate]] as const) {
      if (value !== undefined && value !== null) fields.push(field, value);
    }
    if (job.id === undefined && derived === undefined) fields.push(FIELD.AUTO_ID, "1");
    const expires = expiresMs(job, due, name);
    if (expires !== undefined) fields.push(FIELD.EXPIRES_MS, String(expires));
    return {
      keys: [pk.ready, pk.delayed, pk.delayedJobs, pk.jobs, pk.done, pk.dlq, pk.wake],
      partitions,
      id,
      due,
      fields: JSON.stringify(fields),
      result: { id, queue: spec.queue, runAt: due || now, created: false },
    };
  }

  /**
   * The queue's recorded partition count is ours (re-read at most every RECHECK_MS): the
   * field `queue` of `{prefix}:partitions`, claimed with HSETNX when absent. While it reads
   * `<old>><new>` a repartition is moving the queue: wait (up to `moveWaitMs`) for its end.
   */
  private async checkPartitions(queue: string, mine: number): Promise<void> {
    const started = Date.now();
    if (started - (this.checked.get(queue) ?? -Infinity) < RECHECK_MS) return;
    const key = `{${this.prefix}}:partitions`;
    const deadline = started + (this.options.moveWaitMs ?? 60_000);
    for (;;) {
      if (await this.redis.hsetnx(key, queue, String(mine))) break;
      const record = (await this.redis.hget(key, queue)) ?? String(mine);
      if (record === String(mine)) break;
      if (!record.includes(">") || Date.now() > deadline) {
        throw new PartitionCountError(queue, mine, record);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.checked.set(queue, Date.now());
  }

  /** Closes the Redis connection when the client opened it (from a URL). */
  async close(): Promise<void> {
    if (this.owns) await this.redis.quit();
  }
}

function derive(spec: JobSpec, what: "jobId" | "partitionKey", payload: Record<string, unknown>, name: string): string | undefined {
  const template = spec[what];
  if (template !== null) return render(template, payload);
  if (spec[`${what}FromPayload`]) {
    throw new Error(`${name}: its ${what} is derived in code that \`jobs --json\` cannot publish; pass it explicitly`);
  }
  return undefined;
}

function expiresMs(job: EnqueueOptions, due: number, name: string): number | undefined {
  if (job.expiresAt === undefined) return undefined;
  const at = job.expiresAt instanceof Date ? job.expiresAt.getTime() : Math.trunc(job.expiresAt);
  if (!Number.isFinite(at) || at <= 0) throw new RangeError(`${name}: expiresAt: expected Unix ms, got ${at}`);
  if (due && at <= due) throw new RangeError(`${name}: expiresAt is not after runAt: the job could never run`);
  return at;
}

function dueMs(job: EnqueueOptions, now: number): number {
  if (job.runAt !== undefined && job.delayMs !== undefined) throw new Error("give runAt or delayMs, not both");
  if (job.runAt !== undefined) return job.runAt instanceof Date ? job.runAt.getTime() : Math.trunc(job.runAt);
  if (job.delayMs !== undefined) {
    if (job.delayMs < 0) throw new RangeError(`delayMs: expected >= 0, got ${job.delayMs}`);
    return job.delayMs ? now + Math.trunc(job.delayMs) : 0;
  }
  return 0;
}
