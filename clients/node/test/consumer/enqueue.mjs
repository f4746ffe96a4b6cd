// A service's enqueue, as the README shows it: REDIS_URL and QUEUE_PREFIX as the workers'.
import { TgworkersClient } from "@tgworkers/client";

const jobs = new TgworkersClient({
  redis: process.env.REDIS_URL,
  prefix: process.env.QUEUE_PREFIX ?? "tgw",
  origin: "playhub",
});
const result = await jobs.enqueue("cfb.settle", { betId: "b_1" });
console.log(JSON.stringify(result)); // {"id":"cfb.settle:b_1","queue":"cfb.settle","runAt":…,"created":true}
await jobs.close();
