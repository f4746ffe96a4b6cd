// The client as another service installs it: `npm pack`, then `npm install` of the
// tarball in a new project outside this repository (dependencies from npm's cache once it
// holds them), its types compiled there, and the README's enqueue run against a real
// worker: the job is settled.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { startStack, waitUntil } from "./stack.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const PREFIX = "pkg";
let stack;
let project;

const npm = (args, cwd) => execFileSync("npm", [...args, "--loglevel=error", "--no-audit", "--no-fund"],
  { cwd, encoding: "utf8" });

before(async () => {
  project = mkdtempSync(join(tmpdir(), "tgw-node-consumer-"));
  // dist/ is built by the caller (scripts/test-node, `npm test`'s pretest): packing without
  // prepack keeps tsc from rewriting it under the other test files running meanwhile
  const tarball = npm(["pack", "--ignore-scripts", "--pack-destination", project], root).trim().split("\n").pop();
  assert.equal(tarball, `tgworkers-client-${pkg.version}.tgz`);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  // a TypeScript service has @types/node (ioredis's types use it): the version we build with
  const typesNode = JSON.parse(readFileSync(join(root, "node_modules", "@types", "node", "package.json"), "utf8"));
  npm(["install", "--prefer-offline", `./${tarball}`, `@types/node@${typesNode.version}`], project);
  stack = await startStack(["--processors", "cfb.settle", "--prefix", PREFIX]);
});

after(async () => {
  await stack?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

test("the installed package holds the build and its types, and nothing else", () => {
  const installed = join(project, "node_modules", "@tgworkers", "client");
  const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
  assert.equal(manifest.version, pkg.version);
  const files = npm(["pack", "--ignore-scripts", "--dry-run", "--json"], root);
  const paths = JSON.parse(files)[0].files.map((f) => f.path);
  assert.ok(paths.includes("dist/index.js") && paths.includes("dist/index.d.ts"), paths.join(" "));
  assert.deepEqual(paths.filter((p) => !p.startsWith("dist/") && !["package.json", "README.md"].includes(p)), []);
});

test("a TypeScript service compiles against the installed types", () => {
  copyFileSync(join(root, "test", "consumer", "types.check.ts"), join(project, "check.ts"));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const args = [tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
    "--target", "es2022", "check.ts"];
  try {
    execFileSync(process.execPath, args, { cwd: project, encoding: "utf8" });
  } catch (err) {
    assert.fail(`tsc in the consumer project failed:\n${String(err.stdout).slice(0, 3000)}`);
  }
});

test("the README's enqueue, run in the new project, is settled by a real worker", async () => {
  const script = readFileSync(join(root, "test", "consumer", "enqueue.mjs"), "utf8");
  assert.ok(readFileSync(join(root, "README.md"), "utf8").includes(script.trim()), "README shows test/consumer/enqueue.mjs");
  writeFileSync(join(project, "enqueue.mjs"), script);
  await stack.command({ op: "seed", kind: "bet", id: "b_1", tEndMs: 0 });
  const out = execFileSync(process.execPath, ["enqueue.mjs"], {
    cwd: project, encoding: "utf8", env: { ...process.env, REDIS_URL: stack.redisUrl, QUEUE_PREFIX: PREFIX },
  });
  const result = JSON.parse(out);
  assert.deepEqual([result.id, result.created], ["cfb.settle:b_1", true]);
  await waitUntil(async () => {
    const calls = await stack.command({ op: "requests", peer: "playhub", path: "/internal/v1/cfb/settle" });
    return calls.some((r) => r.idempotencyKey === "cfb.settle:b_1");
  }, { what: "PlayHub settles b_1" });
});
