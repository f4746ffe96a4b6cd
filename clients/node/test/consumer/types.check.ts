// Compiled by test/package.test.mjs inside a project that installed the packed tarball:
// the types ship and resolve through the package's "exports".
import { TgworkersClient, WIRE_FORMAT_VERSION, type JobPayloads } from "@tgworkers/client";

const payload: JobPayloads["cfb.settle"] = { betId: "b_1" };
const version: 1 = WIRE_FORMAT_VERSION;
export async function enqueue(client: TgworkersClient): Promise<boolean> {
  // @ts-expect-error: an unknown field does not compile
  await client.enqueue("cfb.settle", { betid: "b_1" });
  return (await client.enqueue("cfb.settle", payload)).created && version === 1;
}
