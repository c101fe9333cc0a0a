import assert from "node:assert/strict";
import { ClusterDirectory, type ClusterDirectoryOptions } from "../../../server/cluster/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { startRedis, type TestRedis } from "../../_util/redis.ts";
import { testsWith } from "../../_util/tools.ts";
import { Redis } from "ioredis";

const test = await testsWith({ redis: ["redis-server"] });

async function directory(
  redis: TestRedis,
  node: string,
  options: Partial<ClusterDirectoryOptions> = {},
): Promise<ClusterDirectory> {
  const made = new ClusterDirectory({
    redis: redis.url,
    node,
    advertise: `srt://10.0.0.${node.length}:8890`,
    timeoutMs: 500,
    ...options,
  });
  assert.ok(await made.connected(5000), `${node} connected`);
  return made;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test.redis("a claim is one node's: others are refused, cannot refresh or delete it", async () => {
  const redis = await startRedis();
  const a = await directory(redis, "a"), b = await directory(redis, "bb");
  try {
    assert.deepEqual(await a.claim("live/x"), { status: "claimed" });
    assert.deepEqual(await a.claim("live/x"), { status: "claimed" }, "a claim of one's own key");
    assert.deepEqual(await b.claim("live/x"), {
      status: "taken",
      holder: { node: "a", advertise: "srt://10.0.0.1:8890" },
    });
    assert.deepEqual(await b.lookup("live/x"), { node: "a", advertise: "srt://10.0.0.1:8890" });
    assert.equal(await b.refresh("live/x"), false);
    assert.equal(await b.release("live/x"), false);
    assert.equal((await b.lookup("live/x"))?.node, "a", "b's release left a's claim");
    assert.equal(await a.release("live/x"), true);
    assert.equal(await a.lookup("live/x"), undefined);
    assert.deepEqual(await b.claim("live/x"), { status: "claimed" });
    assert.equal(await a.release("live/x"), false, "a cannot delete b's claim");
    assert.equal((await a.lookup("live/x"))?.node, "bb");
  } finally {
    await a.close();
    await b.close();
    await redis.stop();
  }
});

test.redis("a claim expires after its TTL unless refreshed", async () => {
  const redis = await startRedis();
  const a = await directory(redis, "a", { ttlMs: 400 });
  try {
    await a.claim("live/kept");
    await a.claim("live/dropped");
    for (let i = 0; i < 6; i++) {
      await sleep(150);
      assert.equal(await a.refresh("live/kept"), true);
    }
    // 900 ms after the claims, more than twice the TTL: only the refreshed one is there.
    assert.equal((await a.lookup("live/kept"))?.node, "a");
    assert.equal(await a.lookup("live/dropped"), undefined);
    assert.equal(await a.refresh("live/dropped"), false);
  } finally {
    await a.close();
    await redis.stop();
  }
});

test.redis("Redis down: every call answers at once, one log line per outage, then recovery", async () => {
  const redis = await startRedis();
  const log = new LogLines();
  const b = await directory(redis, "b", { logger: log });
  try {
    assert.deepEqual(await b.claim("live/x"), { status: "claimed" });
    await redis.stop();
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(await b.claim("live/y"), { status: "unreachable" });
      assert.equal(await b.lookup("live/x"), undefined);
      assert.equal(await b.refresh("live/x"), false);
      assert.equal(await b.release("live/x"), false);
    }
    await sleep(300); // reconnect attempts fail meanwhile
    assert.equal(b.reachable, false);
    const outages = log.lines.filter((line) => /unreachable/.test(line));
    assert.equal(outages.length, 1, log.lines.join("\n"));
    assert.match(outages[0], /^warn cluster: Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable/);
    await redis.start();
    assert.ok(await b.connected(5000), "reconnected");
    await log.waitFor(/^info cluster: Redis at .* is reachable again$/);
    assert.deepEqual(await b.claim("live/y"), { status: "claimed" });
    assert.equal(b.reachable, true);
    await redis.stop();
    assert.deepEqual(await b.claim("live/z"), { status: "unreachable" });
    assert.equal(log.lines.filter((line) => /unreachable/.test(line)).length, 2, "a second outage");
  } finally {
    await b.close();
    await redis.stop();
  }
});

test.redis("the password of the Redis URL is left out of the log", async () => {
  const redis = await startRedis();
  await redis.stop(); // nothing answers: the outage is logged with the URL
  const log = new LogLines();
  const a = new ClusterDirectory({
    redis: `redis://:s3cret@127.0.0.1:${redis.port}`,
    node: "a",
    advertise: "rtmp://10.0.0.1:1935",
    timeoutMs: 300,
    logger: log,
  });
  try {
    assert.deepEqual(await a.claim("live/x"), { status: "unreachable" });
    const line = await log.waitFor(/unreachable/);
    assert.doesNotMatch(line, /s3cret/);
    assert.match(line, /redis:\/\/…@127\.0\.0\.1:\d+/);
  } finally {
    await a.close();
  }
});

test.redis("values no node wrote are never taken for a claim (bounded fuzz)", async () => {
  const redis = await startRedis();
  const raw = new Redis(redis.url);
  const a = await directory(redis, "a");
  try {
    const rand = prng(17);
    const values: (string | Uint8Array)[] = [
      "",
      "{}",
      "null",
      '{"node":1,"advertise":"x"}',
      `{"node":"b","advertise":"${"x".repeat(5000)}"}`,
    ];
    for (let i = 0; i < 200; i++) values.push(randomBytes(rand, Math.floor(rand() * 64)));
    for (const value of values) {
      await raw.set("arcly:stream:live/f", value as string);
      const found = await a.lookup("live/f");
      if (found !== undefined) {
        assert.equal(typeof found.node, "string");
        assert.equal(typeof found.advertise, "string");
      }
      const outcome = await a.claim("live/f");
      assert.equal(outcome.status, "taken", "another's value (or garbage) is never a's claim");
      assert.equal(await a.release("live/f"), false);
    }
    await raw.hset("arcly:stream:live/h", "k", "v"); // another program's key of another type
    assert.equal(await a.lookup("live/h"), undefined);
    assert.equal(a.reachable, true, "an error reply is not an outage");
  } finally {
    raw.disconnect();
    await a.close();
    await redis.stop();
  }
});
