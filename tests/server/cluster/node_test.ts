import assert from "node:assert/strict";
import { type AuthRequest, FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import type { PullClient } from "../../../ingest/pull.ts";
import { ClusterNode, pullUrl } from "../../../server/cluster/mod.ts";
import { Sources } from "../../../server/sources.ts";
import { configFrame, videoFrame } from "../../_util/frames.ts";
import { within } from "../../_util/within.ts";
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

test.redis("a publish that skipped authorize (a path's source) is claimed as it starts", async () => {
  const redis = await startRedis();
  const a = await node(redis, "a"), b = await node(redis, "b");
  try {
    const handle = a.registry.startPublish("live", "camera", { protocol: "pull" });
    for (let i = 0; i < 50 && !(await b.cluster.locate("live", "camera")); i++) await sleep(20);
    assert.equal((await b.cluster.locate("live", "camera"))?.hostname, "127.0.0.1");
    assert.deepEqual(a.cluster.claims, ["live/camera"]);
    assert.equal(await b.registry.authorize(publish("camera")), false);
    a.registry.endPublish(handle);
    assert.deepEqual(a.cluster.claims, []);
    for (let i = 0; i < 50 && await b.cluster.locate("live", "camera"); i++) await sleep(20);
    assert.equal(await b.cluster.locate("live", "camera"), undefined);
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

/**
 * A pull client that plays, in this process, the stream of `origin` that an
 * `rtmp://HOST:PORT/APP/NAME` URL names (as an RTMP play of it would): the replay buffer,
 * then live frames, until that stream ends. Each connection's URL is noted in `connections`.
 */
function playFrom(origin: Registry, connections: string[]): PullClient {
  return async (url, options) => {
    connections.push(url.href);
    const [, app, stream] = url.pathname.split("/");
    const handle = origin.get(app, stream);
    if (!handle) throw new Error(`${app}/${stream} is not live there`);
    const frames = handle.subscribe({ replay: true, background: true });
    const stop = () => void frames.cancel().catch(() => {});
    options.signal?.addEventListener("abort", stop, { once: true });
    try {
      for await (const frame of frames) options.onFrame(frame);
    } finally {
      options.signal?.removeEventListener("abort", stop);
    }
  };
}

/** Publish a GOP (configs, a keyframe, two more frames) at `t` into the live `handle`. */
function gop(publish: (frame: MediaFrame) => void, t: number): void {
  publish({ ...configFrame("video"), pts: t, dts: t });
  publish(videoFrame(t, true));
  publish(videoFrame(t + 3600));
  publish(videoFrame(t + 7200));
}

test.redis("a reader of a stream another node has gets an edge copy: one upstream, never claimed", async () => {
  const redis = await startRedis();
  const a = await node(redis, "a", 600), b = await node(redis, "b", 600);
  const connections: string[] = [];
  const sources = new Sources(b.registry, {
    clientFor: () => Promise.resolve(playFrom(a.registry, connections)),
    logger: b.log,
  });
  b.registry.configure({ demand: b.cluster.demand(sources) });
  try {
    assert.equal(
      await b.registry.acquire("live", "x", { timeoutMs: 500 }),
      undefined,
      "no one has it",
    );
    assert.equal(await a.registry.authorize(publish("x")), true);
    const origin = a.registry.startPublish("live", "x", { protocol: "rtmp" });
    gop((frame) => origin.publish(frame), 0);

    // Two readers at once: one edge copy, one connection to the origin.
    const [first, second] = await Promise.all([
      b.registry.acquire("live", "x", { timeoutMs: 5000 }),
      b.registry.acquire("live", "x", { timeoutMs: 5000 }),
    ]);
    assert.ok(first && first === second, "both readers get the one edge copy");
    assert.deepEqual(connections, ["rtmp://127.0.0.1:1935/live/x"]);
    await b.log.waitFor(
      /^info cluster: "live\/x" is pulled from rtmp:\/\/127\.0\.0\.1:1935\/live\/x$/,
    );
    const edge = first.metadata().ingestProtocol;
    assert.equal(edge, "cluster");
    assert.deepEqual(b.cluster.claims, [], "an edge copy is never claimed");
    assert.equal((await b.cluster.locate("live", "x"))?.hostname, "127.0.0.1", "still a's");

    // A late joiner on the edge starts on a keyframe (the edge's own GOP cache).
    const reader = first.subscribe({ replay: true });
    const frames: MediaFrame[] = [];
    const reading = (async () => {
      for await (const frame of reader) frames.push(frame);
    })();
    gop((frame) => origin.publish(frame), 90_000);
    await within(
      (async () => {
        while (frames.filter((f) => f.flags & FrameFlags.KEYFRAME).length < 2) await sleep(10);
      })(),
      5000,
      "two keyframes through the edge",
    );
    const media = frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
    assert.ok(media[0].flags & FrameFlags.KEYFRAME, "the edge's first frame is a keyframe");
    assert.ok(frames[0].flags & FrameFlags.CONFIG, "after the configs");

    // The origin's stream ends: its claim goes, the copy finds no owner and ends, and so
    // does its reader.
    a.registry.endPublish(origin);
    await within(reading, 10_000, "the edge reader's end");
    assert.ok(first.closed, "the edge copy ended");
    assert.equal(b.registry.get("live", "x"), undefined);
    assert.equal(connections.length, 1, "no reconnect to an owner that is gone");
  } finally {
    await sources.close();
    await a.cluster.close();
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
