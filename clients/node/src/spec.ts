/** What a producer needs to know about one job type (an item of `tgworkers jobs --json`). */
export interface JobSpec {
  /** The queue (named after the processor). */
  readonly queue: string;
  /** `PARTITIONS_<PROCESSOR>` the workers run with, unless the client is told otherwise. */
  readonly partitions: number;
  /** Template of the job id, e.g. `cfb.settle:{betId}`; null: a random id unless given. */
  readonly jobId: string | null;
  /** The id derives from the payload in code no template describes: pass `id` yourself. */
  readonly jobIdFromPayload: boolean;
  /** Template of the partition key, e.g. `{betId}`; null: the job id is the key. */
  readonly partitionKey: string | null;
  readonly partitionKeyFromPayload: boolean;
}

/** Fills `{field}` placeholders from a payload's (wire, camelCase) fields. */
export function render(template: string, payload: Record<string, unknown>): string {
  return template.replace(/\{(\w+)\}/g, (_, field: string) => {
    const value = payload[field];
    if (value === undefined || value === null) {
      throw new TypeError(`payload field ${JSON.stringify(field)} is missing (needed by ${template})`);
    }
    return String(value);
  });
}
