import { createHash } from "node:crypto";

/**
 * The partition of a job: `uint32_be(sha256(utf8(key))[0:4]) mod partitions`,
 * exactly as tgworkers/engine/keys.py `partition_of` (checked against its vectors).
 */
export function partitionOf(key: string, partitions: number): number {
  if (partitions <= 1) return 0;
  return createHash("sha256").update(key, "utf8").digest().readUInt32BE(0) % partitions;
}

/** The keys of one queue partition, all under one hash tag (docs/wire-format.md). */
export interface PartitionKeys {
  readonly ready: string;
  readonly delayed: string;
  readonly delayedJobs: string;
  readonly jobs: string;
  readonly done: string;
  readonly dlq: string;
  readonly wake: string;
}

export function partitionKeys(
  prefix: string,
  queue: string,
  partition: number,
  dlqSuffix = ":dlq",
): PartitionKeys {
  const tag = `{${prefix}:${queue}:${partition}}`;
  return {
    ready: `${tag}:ready`,
    delayed: `${tag}:delayed`,
    delayedJobs: `${tag}:delayed:jobs`,
    jobs: `${tag}:jobs`,
    done: `${tag}:done`,
    dlq: `${tag}${dlqSuffix}`,
    wake: `${tag}:wake`,
  };
}
