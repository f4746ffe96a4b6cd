// The Python side of the Node tests: `python -m tgworkers.testing.stack` runs a private
// redis-server, the fake peers and a real tgworkers worker subprocess; we talk to it
// in JSON lines. TGW_PYTHON picks the interpreter (default: the repo's .venv).
import { spawn, execFile } from "node:child_process";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
export const PYTHON = process.env.TGW_PYTHON ?? join(here, "..", "..", "..", ".venv", "bin", "python");

export async function startStack(args) {
  const child = spawn(PYTHON, ["-m", "tgworkers.testing.stack", "--quiet", ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error("the tgworkers stack exited before it started");
  const info = JSON.parse(first.value);
  let queue = Promise.resolve();
  const command = (cmd) => {
    const answer = queue.then(async () => {
      child.stdin.write(JSON.stringify(cmd) + "\n");
      const line = await lines.next();
      return JSON.parse(line.value);
    });
    queue = answer.catch(() => {});
    return answer;
  };
  const stop = () => new Promise((resolve) => {
    child.on("exit", resolve);
    child.stdin.end();
  });
  return { ...info, command, stop };
}

/** Polls `condition` until truthy; fails with the last value seen at the deadline. */
export async function waitUntil(condition, { timeoutMs = 15000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await condition();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs a Python snippet (the Python producer) and returns its stdout parsed as JSON. */
export async function python(code, env = {}) {
  const { stdout } = await promisify(execFile)(PYTHON, ["-c", code], { env: { ...process.env, ...env } });
  return JSON.parse(stdout);
}
