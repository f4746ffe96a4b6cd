// Compile-time checks of the generated payload types (`npm run check-types`, run by
// scripts/test-node): each `@ts-expect-error` line must fail to type-check, so a
// payload type that got too loose breaks the build.
import { TgworkersClient, type JobPayloads, type SettleBet } from "../src/index.js";

declare const client: TgworkersClient;

export async function accepted(): Promise<void> {
  await client.enqueue("cfb.settle", { betId: "b_1" }, { runAt: new Date(), id: "x" });
  await client.enqueue("escrow.adjudicate", { escrowId: "e", decision: "split", splitBps: 10, moderatorId: "m" });
  await client.enqueueMany([{ name: "cfb.settle", payload: { betId: "b" } }, { name: "tgworkers.noop", payload: {} }]);
  const bet: SettleBet = { betId: "b" };
  const p: JobPayloads["dlq.replay"] = { queue: "escrow", all: true };
  void bet;
  void p;
}

export async function refused(): Promise<void> {
  // @ts-expect-error a misspelt field
  await client.enqueue("cfb.settle", { betid: "b_1" });
  // @ts-expect-error a field of the wrong type
  await client.enqueue("cfb.settle", { betId: 7 });
  // @ts-expect-error a value outside the enum
  await client.enqueue("escrow.adjudicate", { escrowId: "e", decision: "maybe", moderatorId: "m" });
  // @ts-expect-error an unknown job type
  await client.enqueue("cfb.settel", { betId: "b" });
  // @ts-expect-error a bulk item whose payload belongs to another job type
  await client.enqueueMany([{ name: "cfb.settle", payload: { escrowId: "e" } }]);
}
