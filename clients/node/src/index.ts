export { CHUNK, type ClientOptions, PartitionCountError, RECHECK_MS, type EnqueueOptions, type EnqueueResult, type Job, TgworkersClient } from "./client.js";
export { JOB_SPECS, type JobName, type JobPayloads } from "./generated/jobs.js";
export { ENQUEUE_LUA, FIELD, WIRE_FORMAT_VERSION } from "./generated/wire.js";
export { partitionKeys, partitionOf, type PartitionKeys } from "./partition.js";
export { type JobSpec, render } from "./spec.js";
export { traceFields } from "./trace.js";
export * from "./generated/jobs.js";
