// The Node client against a real redis-server and a real tgworkers worker subprocess
// running cfb.settle against the fake PlayHub: same partition, same dedupe, same DLQ
// behaviour as the Python producer.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { AsyncLocalStorage } from "node:async_hooks";

import { ROOT_CONTEXT, TraceFlags, context as otelContext, trace } from "@opentelemetry/api";
import { Redis } from "ioredis";

import { TgworkersClient, partitionOf } from "@tgworkers/client";
import { python, startStack, waitUntil } from "./stack.mjs";

const PREFIX = "tsn";
const PARTITIONS = 4;
const SETTLE = "/internal/v1/cfb/settle";
let stack;
let redis;
let client;

before(async () => {
  stack = await startStack(["--processors", "cfb.settle", "--prefix", PREFIX,
    "--env", `PARTITIONS_CFB_SETTLE=${PARTITIONS}`]);
  redis = new Redis(stack.redisUrl);
  client = new TgworkersClient({ redis, prefix: PREFIX, partitions: { "cfb.settle": PARTITIONS }, origin: "node-test" });
});

after(async () => {
  await redis?.quit();
  await stack?.stop();
});

const tag = (key) => `{${PREFIX}:cfb.settle:${partitionOf(key, PARTITIONS)}}`;
/** PlayHub's settle calls for one bet, or null while there are none (waitUntil polls on it). */
const settled = async (betId) => {
  const calls = (await stack.command({ op: "requests", peer: "playhub", path: SETTLE }))
    .filter((r) => r.idempotencyKey === `cfb.settle:${betId}`);
  return calls.length ? calls : null;
};

test("the worker runs what Node enqueued, from the partition Python computes", async () => {
  await stack.command({ op: "seed", kind: "bet", id: "n_1", tEndMs: 0 });
  const result = await client.enqueue("cfb.settle", { betId: "n_1" });
  assert.deepEqual({ ...result, runAt: 0 }, { id: "cfb.settle:n_1", queue: "cfb.settle", runAt: 0, created: true });
  const [call] = await waitUntil(() => settled("n_1"), { what: "PlayHub settles n_1" });
  assert.deepEqual(call.body, { betId: "n_1" });
  assert.equal(call.requestId, "cfb.settle:n_1:1");
  await waitUntil(() => redis.zscore(`${tag("n_1")}:done`, "cfb.settle:n_1"), { what: "done in its partition" });
});

test("the same id twice is one job (created, then existing)", async () => {
  const first = await client.enqueue("cfb.settle", { betId: "n_2" }, { delayMs: 60_000 });
  const again = await client.enqueue("cfb.settle", { betId: "n_2" }, { delayMs: 60_000 });
  assert.deepEqual([first.created, again.created], [true, false]);
  assert.equal(await redis.zcard(`${tag("n_2")}:delayed`), 1);
  const score = Number(await redis.zscore(`${tag("n_2")}:delayed`, "cfb.settle:n_2"));
  assert.equal(score, first.runAt);
});

test("a Python producer and a Node producer enqueueing the same id create one job", async () => {
  const node = await client.enqueue("cfb.settle", { betId: "n_3" }, { delayMs: 60_000 });
  const py = await python(`
import asyncio, json, tgworkers
async def main():
    async with tgworkers.Producer.from_url("${stack.redisUrl}", prefix="${PREFIX}", partitions={"cfb.settle": ${PARTITIONS}}) as p:
        first = await p.enqueue("cfb.settle", {"betId": "n_3"}, delay=60)
        other = await p.enqueue("cfb.settle", {"betId": "n_4"}, delay=60)
    print(json.dumps([first.created, other.created]))
asyncio.run(main())
`);
  const later = await client.enqueue("cfb.settle", { betId: "n_4" }, { delayMs: 60_000 });
  assert.deepEqual([node.created, ...py, later.created], [true, false, true, false]);
  for (const bet of ["n_3", "n_4"]) {
    assert.equal(await redis.hget(`${tag(bet)}:jobs`, `cfb.settle:${bet}`), "d");
  }
});

test("a bad payload is dead-lettered naming the field, as Python refuses it", async () => {
  const refused = await python(`
import asyncio, json, tgworkers
async def main():
    async with tgworkers.Producer.from_url("${stack.redisUrl}", prefix="${PREFIX}") as p:
        try:
            await p.enqueue("cfb.settle", {"betid": "n_5"}, id="bad-1")
        except Exception as exc:
            print(json.dumps(str(exc)))
asyncio.run(main())
`);
  assert.match(refused, /unknown field `betid`/);
  await client.enqueue("cfb.settle", /** @type {any} */ ({ betid: "n_5" }), { id: "bad-1" }).catch(() => {});
  const result = await client.enqueue("cfb.settle", { betid: "n_5", betId: "n_5" }, { id: "bad-2" });
  assert.equal(result.created, true);
  const dead = await waitUntil(async () => {
    const entries = [];
    for (let p = 0; p < PARTITIONS; p++) entries.push(...await redis.xrange(`{${PREFIX}:cfb.settle:${p}}:dlq`, "-", "+"));
    return entries.length ? entries : null;
  }, { what: "the bad job in the DLQ" });
  const fields = Object.fromEntries(dead[0][1].reduce((acc, v, i, a) => (i % 2 ? acc : [...acc, [v, a[i + 1]]]), []));
  assert.equal(fields.id, "bad-2");
  assert.match(fields.reason, /invalid payload for cfb.settle: Object contains unknown field `betid`/);
});

test("a job past its deadline is dead-lettered as expired, never run", async () => {
  await stack.command({ op: "seed", kind: "bet", id: "n_exp", tEndMs: 0 });
  await assert.rejects(client.enqueue("cfb.settle", { betId: "n_x" }, { runAt: 2_000_000_000_000, expiresAt: 1_999_999_999_999 }),
    /expiresAt is not after runAt/);
  const result = await client.enqueue("cfb.settle", { betId: "n_exp" }, { expiresAt: new Date(Date.now() - 1) });
  assert.equal(result.created, true);
  const dead = await waitUntil(async () => {
    const entries = await redis.xrange(`${tag("n_exp")}:dlq`, "-", "+");
    return entries.find((e) => e[1].includes("cfb.settle:n_exp")) ?? null;
  }, { what: "n_exp dead-lettered" });
  const fields = Object.fromEntries(dead[1].reduce((acc, v, i, a) => (i % 2 ? acc : [...acc, [v, a[i + 1]]]), []));
  assert.match(fields.reason, /^expired/);
  assert.ok(Number(fields.expires_ms) > 0);
  assert.equal(await settled("n_exp"), null, "an expired job never calls the peer");
});

test("a payload the templates cannot fill is refused before Redis", async () => {
  await assert.rejects(client.enqueue("cfb.settle", /** @type {any} */ ({})), /betId/);
  await assert.rejects(client.enqueue("nope", {}), /unknown job type "nope"/);
});

test("bulk enqueue: one call per partition, every job runs", async () => {
  const bets = Array.from({ length: 40 }, (_, i) => `bulk_${i}`);
  for (const id of bets) await stack.command({ op: "seed", kind: "bet", id, tEndMs: 0 });
  const results = await client.enqueueMany(bets.map((betId) => ({ name: "cfb.settle", payload: { betId } })));
  assert.equal(results.filter((r) => r.created).length, 40);
  assert.ok(new Set(bets.map((b) => partitionOf(b, PARTITIONS))).size > 1);
  await waitUntil(async () => {
    const calls = await stack.command({ op: "requests", peer: "playhub", path: SETTLE });
    return new Set(calls.map((c) => c.idempotencyKey).filter((k) => k.startsWith("cfb.settle:bulk_"))).size === 40;
  }, { what: "40 bulk bets settled" });
});

test("a delayed job waits for its time, then runs", async () => {
  await stack.command({ op: "seed", kind: "bet", id: "n_6", tEndMs: 0 });
  const runAt = new Date(Date.now() + 400);
  const result = await client.enqueue("cfb.settle", { betId: "n_6" }, { runAt });
  assert.equal(result.runAt, runAt.getTime());
  const [call] = await waitUntil(() => settled("n_6"), { what: "n_6 settled after its time" });
  assert.ok(call);
  assert.ok(Date.now() >= runAt.getTime());
});

test("traceparent comes from the caller's OpenTelemetry context", async () => {
  const span = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED };
  const context = trace.setSpanContext(ROOT_CONTEXT, span);
  await client.enqueue("cfb.settle", { betId: "n_7" }, { delayMs: 60_000, context });
  const fields = JSON.parse(await redis.hget(`${tag("n_7")}:delayed:jobs`, "cfb.settle:n_7"));
  const at = fields.indexOf("traceparent");
  assert.equal(fields[at + 1], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  assert.equal(fields[fields.indexOf("origin") + 1], "node-test");
  assert.equal(fields[fields.indexOf("key") + 1], "n_7");
});

/** The smallest context manager an app's OpenTelemetry SDK would register (AsyncLocalStorage). */
class LocalContextManager {
  #storage = new AsyncLocalStorage();
  active() { return this.#storage.getStore() ?? ROOT_CONTEXT; }
  with(ctx, fn, thisArg, ...args) { return this.#storage.run(ctx, () => fn.call(thisArg, ...args)); }
  bind(_ctx, target) { return target; }
  enable() { return this; }
  disable() { return this; }
}

test("without an explicit context, the active span's trace is carried", async () => {
  otelContext.setGlobalContextManager(new LocalContextManager());
  try {
    const span = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.NONE };
    await otelContext.with(trace.setSpanContext(ROOT_CONTEXT, span), () =>
      client.enqueue("cfb.settle", { betId: "n_8" }, { delayMs: 60_000 }));
    const fields = JSON.parse(await redis.hget(`${tag("n_8")}:delayed:jobs`, "cfb.settle:n_8"));
    assert.equal(fields[fields.indexOf("traceparent") + 1], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
    await client.enqueue("cfb.settle", { betId: "n_9" }, { delayMs: 60_000 });  // no active span
    const plain = JSON.parse(await redis.hget(`${tag("n_9")}:delayed:jobs`, "cfb.settle:n_9"));
    assert.equal(plain.indexOf("traceparent"), -1);
  } finally {
    otelContext.disable();
  }
});
