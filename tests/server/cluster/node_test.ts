import assert from "node:assert/strict";
import { type AuthRequest, Registry } from "../../../mod.ts";
import { ClusterNode, pullUrl } from "../../../server/cluster/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { startRedis, type TestRedis } from "../../_util/redis.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ redis: ["redis-server"] });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const publish = (stream: string, protocol = "rtmp"): AuthRequest => ({
  action: "publish",
  app: "live",
  stream,
  query: "",
  protocol,
  peer: "127.0.0.1:5000",
});

/** A node: a registry whose publishes the cluster authorizes (after an open policy). */
async function node(redis: TestRedis, id: string, ttlMs = 10_000) {
  const log = new LogLines();
  const registry = new Registry();
  const cluster = new ClusterNode(registry, {
    redis: redis.url,
    node: id,
    advertise: `rtmp://127.0.0.${id.charCodeAt(0) - 96}:1935`,
    ttlMs,
    timeoutMs: 500,
    logger: log,
  });
  registry.configure({ authorize: cluster.authorize(() => true) });
  assert.ok(await cluster.directory.connected(5000));
  return { registry, cluster, log };
}

test.redis("one publisher per key across nodes; the other nodes find where to pull it", async () => {
  const redis = await startRedis();
  const a = await node(redis, "a"), b = await node(redis, "b");
  try {
    assert.equal(await a.registry.authorize(publish("x")), true);
    const handle = a.registry.startPublish("live", "x", { protocol: "rtmp" });
    assert.deepEqual(a.cluster.claims, ["live/x"]);
    assert.equal(await b.registry.authorize(publish("x", "srt")), false);
    assert.match(
      await b.log.waitFor(/refused publish/),
      /^warn cluster: refused publish "live\/x" via srt from "127.0.0.1:5000": node "a" \(rtmp:\/\/127.0.0.1:1935\) publishes it$/,
    );
    assert.equal((await b.cluster.locate("live", "x"))?.href, "rtmp://127.0.0.1:1935/live/x");
    assert.equal(await a.cluster.locate("live", "x"), undefined, "a node never pulls from itself");
    assert.equal(await b.cluster.locate("live", "nothing"), undefined);
    assert.equal(
      await b.registry.authorize({ ...publish("x"), action: "read" }),
      true,
      "reads are the policy's",
    );
    a.registry.endPublish(handle);
    assert.deepEqual(a.cluster.claims, []);
    // The release is queued before b's claim can see the key: b may publish now.
    for (let i = 0; i < 50 && await b.cluster.locate("live", "x"); i++) await sleep(20);
    assert.equal(await b.registry.authorize(publish("x")), true);
    assert.equal((await a.cluster.locate("live", "x"))?.href, "rtmp://127.0.0.2:1935/live/x");
  } finally {
    await a.cluster.close();
    await b.cluster.close();
    await redis.stop();
  }
});

test.redis("the access policy decides first; refused publishes, unknown apps and bad names claim nothing", async () => {
  const redis = await startRedis();
  const a = await node(redis, "a"), b = await node(redis, "b");
  try {
    a.registry.configure({ authorize: a.cluster.authorize(() => false) });
    assert.equal(await a.registry.authorize(publish("x")), false);
    assert.deepEqual(a.cluster.claims, []);
    assert.equal(await b.cluster.locate("live", "x"), undefined);
    // An unknown app or a bad name is the registry's to refuse: nothing is written for it.
    a.registry.configure({ authorize: a.cluster.authorize(() => true) });
    assert.equal(await a.registry.authorize({ ...publish("x"), app: "nope" }), true);
    assert.equal(await a.registry.authorize(publish("bad\nname")), true);
    assert.deepEqual(a.cluster.claims, []);
  } finally {
    await a.cluster.close();
    await b.cluster.close();
    await redis.stop();
  }
});

test.redis("claims live while their stream does, and no longer than a TTL without one", async () => {
  const redis = await startRedis();
  const a = await node(redis, "a", 600), b = await node(redis, "b", 600);
  try {
    assert.equal(await a.registry.authorize(publish("live-one")), true);
    a.registry.startPublish("live", "live-one");
    // Authorized, but the protocol failed before publishing: released after a TTL.
    assert.equal(await a.registry.authorize(publish("never")), true);
    await sleep(1800); // three TTLs: refreshed nine times meanwhile
    assert.equal((await b.cluster.locate("live", "live-one"))?.hostname, "127.0.0.1");
    assert.equal(await b.cluster.locate("live", "never"), undefined);
    assert.deepEqual(a.cluster.claims, ["live/live-one"]);
    // A node that stops refreshing (here: closed without releasing, as in a crash) drops out.
    await a.cluster.directory.close();
    await sleep(900);
    assert.equal(await b.cluster.locate("live", "live-one"), undefined);
    assert.equal(await b.registry.authorize(publish("live-one")), true);
  } finally {
    await a.cluster.close();
    await b.cluster.close();
    await redis.stop();
  }
});

test.redis("Redis down: publishes go on unclaimed, one log line, claimed when Redis is back", async () => {
  const redis = await startRedis();
  const a = await node(redis, "a", 600), b = await node(redis, "b", 600);
  try {
    assert.equal(await a.registry.authorize(publish("before")), true);
    a.registry.startPublish("live", "before");
    await redis.stop();
    assert.equal(await a.registry.authorize(publish("during")), true);
    a.registry.startPublish("live", "during");
    await sleep(700); // two refresh rounds fail
    assert.equal(
      a.log.lines.filter((line) => /unreachable/.test(line)).length,
      1,
      a.log.lines.join("\n"),
    );
    assert.equal(a.registry.list().length, 2, "local streams go on");
    await redis.start(); // empty: every claim was lost with it
    assert.ok(await a.cluster.directory.connected(5000));
    await a.log.waitFor(/reachable again/);
    for (let i = 0; i < 50 && !(await b.cluster.locate("live", "during")); i++) await sleep(50);
    assert.equal((await b.cluster.locate("live", "during"))?.hostname, "127.0.0.1");
    assert.equal((await b.cluster.locate("live", "before"))?.hostname, "127.0.0.1");
    assert.equal(await b.registry.authorize(publish("during")), false);
  } finally {
    await a.cluster.close();
    await b.cluster.close();
    await redis.stop();
  }
});

test.redis("close() releases every claim", async () => {
  const redis = await startRedis();
  const a = await node(redis, "a"), b = await node(redis, "b");
  try {
    await a.registry.authorize(publish("x"));
    a.registry.startPublish("live", "x");
    await a.cluster.close();
    assert.equal(await b.cluster.locate("live", "x"), undefined);
  } finally {
    await b.cluster.close();
    await redis.stop();
  }
});

Deno.test("pullUrl names the stream as RTMP and SRT read it; other schemes give none", () => {
  const claim = (advertise: string) => ({ node: "a", advertise });
  assert.equal(pullUrl(claim("rtmp://h:1935"), "live", "c")?.href, "rtmp://h:1935/live/c");
  assert.equal(pullUrl(claim("rtmp://h:1935/"), "live", "c")?.href, "rtmp://h:1935/live/c");
  const srt = pullUrl(claim("srt://h:8890?latency=200"), "live", "c")!;
  assert.equal(srt.searchParams.get("streamid"), "read:live/c");
  assert.equal(srt.searchParams.get("latency"), "200");
  assert.equal(pullUrl(claim("http://h/x"), "live", "c"), undefined);
  assert.equal(pullUrl(claim("not a url"), "live", "c"), undefined);
});
