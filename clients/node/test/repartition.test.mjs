// The Node client honours the partition record (docs/wire-format.md): it refuses a count
// Redis does not record, and waits out a real `tgworkers repartition` run against a real
// worker, then enqueues where the new count places the job, and the worker (restarted
// with the new count, as a rollout does) runs it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";

import { Redis } from "ioredis";

import { PartitionCountError, TgworkersClient, partitionOf } from "../dist/index.js";
import { PYTHON, startStack, waitUntil } from "./stack.mjs";

const PREFIX = "tsr";
const QUEUE = "cfb.settle";
const RECORD = `{${PREFIX}}:partitions`;
const SETTLE = "/internal/v1/cfb/settle";
let stack;
let redis;

before(async () => {
  stack = await startStack(["--processors", QUEUE, "--prefix", PREFIX, "--env", "PARTITIONS_CFB_SETTLE=4"]);
  redis = new Redis(stack.redisUrl);
  await waitUntil(() => redis.hget(RECORD, QUEUE), { timeoutMs: 30_000, what: "the worker records its count" });
});

after(async () => {
  await redis?.quit();
  await stack?.stop();
});

const client = (partitions, extra = {}) =>
  new TgworkersClient({ redis, prefix: PREFIX, partitions: { [QUEUE]: partitions }, ...extra });
const jobState = (betId, partitions) =>
  redis.hget(`{${PREFIX}:${QUEUE}:${partitionOf(betId, partitions)}}:jobs`, `${QUEUE}:${betId}`);

/** Runs `tgworkers repartition` as an operator would; resolves with its exit status and output. */
function repartition(count) {
  const child = spawn(PYTHON, ["-m", "tgworkers", "repartition", QUEUE, String(count), "--json"], {
    env: { ...process.env, REDIS_URL: stack.redisUrl, QUEUE_PREFIX: PREFIX, PARTITIONS_CFB_SETTLE: "4" },
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { err += d; });
  return new Promise((resolve) => child.on("exit", (rc) => resolve({ rc, out, err })));
}

test("a client whose count Redis does not record refuses, writing nothing", async () => {
  await redis.hset(RECORD, QUEUE, "5");
  try {
    await assert.rejects(client(4).enqueue(QUEUE, { betId: "r_wrong" }),
      (e) => e instanceof PartitionCountError && /has 4 partitions but Redis records 5/.test(e.message));
    for (const n of [4, 5]) assert.equal(await jobState("r_wrong", n), null);
  } finally {
    await redis.hset(RECORD, QUEUE, "4");
  }
});

test("during a real move a client waits, then enqueues by the new count (or refuses the old one)", async () => {
  await stack.command({ op: "seed", kind: "bet", id: "r_1", tEndMs: 0 });
  const old = client(4);
  await old.enqueue(QUEUE, { betId: "r_0" }, { delayMs: 600_000 }); // checked: within RECHECK_MS no re-read
  const move = repartition(5);
  await waitUntil(async () => (await redis.hget(RECORD, QUEUE))?.includes(">"), { what: "the move marked" });
  const fresh = client(5);
  const stale = client(4, { moveWaitMs: 60_000 });
  await new Promise((r) => setTimeout(r, 1100)); // past `old`'s re-check interval: it must re-read
  const [enqueued, refused, again] = await Promise.allSettled([
    fresh.enqueue(QUEUE, { betId: "r_1" }).then(async (r) => ({ ...r, record: await redis.hget(RECORD, QUEUE) })),
    stale.enqueue(QUEUE, { betId: "r_2" }),
    old.enqueue(QUEUE, { betId: "r_3" }),
  ]);
  const done = await move;
  assert.equal(done.rc, 0, done.err);
  assert.equal(JSON.parse(done.out).acked, 1, "the worker acknowledged the pause");
  assert.equal(enqueued.status, "fulfilled", String(enqueued.reason));
  assert.equal(enqueued.value.record, "5", "enqueued only once the move had ended");
  assert.ok(enqueued.value.created);
  assert.match(await jobState("r_1", 5), /^r:/);
  for (const r of [refused, again]) {
    assert.equal(r.status, "rejected");
    assert.match(r.reason.message, /has 4 partitions but Redis records 5/);
  }
  assert.equal(await jobState("r_0", 5), "d", "the delayed job moved to its new partition");
  await stack.command({ op: "restart", env: { PARTITIONS_CFB_SETTLE: "5" } });
  const calls = await waitUntil(async () => {
    const all = await stack.command({ op: "requests", peer: "playhub", path: SETTLE });
    return all.filter((c) => c.idempotencyKey === `${QUEUE}:r_1`).length ? all : null;
  }, { timeoutMs: 30_000, what: "the worker with the new count settles r_1" });
  assert.ok(calls.length >= 1);
});
