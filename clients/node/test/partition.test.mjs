// The partition formula agrees with tgworkers/engine/keys.py on its vectors (generated
// from Python; tests/unit/test_node_client_drift.py checks they are still Python's).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { ENQUEUE_LUA, partitionKeys, partitionOf, render } from "@tgworkers/client";

const vectors = JSON.parse(readFileSync(new URL("./partition-vectors.json", import.meta.url), "utf8"));

test("partitionOf matches the Python formula on every vector", () => {
  assert.ok(vectors.length > 400);
  for (const [key, n, expected] of vectors) assert.equal(partitionOf(key, n), expected, `${key} mod ${n}`);
});

test("keys of a partition share one hash tag", () => {
  const pk = partitionKeys("tgw", "cfb.settle", 3);
  assert.equal(pk.ready, "{tgw:cfb.settle:3}:ready");
  assert.equal(pk.dlq, "{tgw:cfb.settle:3}:dlq");
  assert.equal(pk.wake, "{tgw:cfb.settle:3}:wake");
});

test("templates fill from camelCase payload fields and refuse a missing one", () => {
  assert.equal(render("cfb.settle:{betId}", { betId: "b_1" }), "cfb.settle:b_1");
  assert.throws(() => render("cfb.settle:{betId}", {}), /betId/);
  assert.match(ENQUEUE_LUA, /^-- enqueue:/);
});
