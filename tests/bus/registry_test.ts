import assert from "node:assert/strict";
import { type AuthRequest, type Observer, PublishError, Registry } from "../../mod.ts";
import { readAll, videoFrame } from "../_util/frames.ts";

Deno.test("one publisher per key; a second is refused with a typed error", () => {
  const events: string[] = [];
  const observer: Observer = {
    onPublish: (key, info) => events.push(`publish ${key} ${info.protocol} ${info.peer}`),
    onUnpublish: (key, reason) => events.push(`unpublish ${key} ${reason}`),
  };
  const registry = new Registry({ observer });
  const first = registry.startPublish("live", "a", { protocol: "rtmp", peer: "127.0.0.1:1" });
  assert.equal(first.state, "publishing");
  assert.equal(first.metadata().ingestProtocol, "rtmp");
  assert.throws(
    () => registry.startPublish("live", "a"),
    (e) => e instanceof PublishError && e.code === "busy" && e.key === "live/a",
  );
  assert.equal(registry.get("live", "a"), first, "the first publisher is undisturbed");
  assert.equal(first.closed, false);
  assert.throws(
    () => registry.startPublish("vod", "a"),
    (e) => e instanceof PublishError && e.code === "unknown-app",
  );
  registry.endPublish(first);
  assert.deepEqual(events, ["publish live/a rtmp 127.0.0.1:1", "unpublish live/a ended"]);
});

Deno.test("a republish after end works and gets a fresh handle; the old one cannot end it", async () => {
  const registry = new Registry();
  const first = registry.startPublish("live", "a");
  const player = first.subscribe();
  first.publish(videoFrame(0, true));
  registry.endPublish(first);
  assert.deepEqual((await readAll(player)).map((f) => f.pts), [0], "players of the first end");
  const second = registry.startPublish("live", "a");
  assert.notEqual(second, first);
  registry.endPublish(first); // late cleanup from the old session
  assert.equal(registry.get("live", "a"), second);
  assert.equal(registry.lookup("live/a"), second, "observers' keys find the stream too");
  assert.equal(registry.lookup("live/b"), undefined);
  assert.equal(second.closed, false);
  assert.deepEqual(registry.list(), [second]);
});

Deno.test("apps carry their own ring and GOP settings", () => {
  const registry = new Registry({ apps: { live: {}, tiny: { capacity: 4, gopCapacity: 0 } } });
  assert.deepEqual(registry.apps, ["live", "tiny"]);
  const tiny = registry.startPublish("tiny", "x");
  assert.equal(tiny.capacity, 4);
  assert.equal(tiny.gopCapacity, 0);
  const live = registry.startPublish("live", "x");
  assert.equal(live.capacity, 2048);
  assert.equal(live.gopCapacity, 1024);
});

Deno.test("the idle reaper ends streams with no frames on the monotonic clock", () => {
  let now = 0;
  const reasons: string[] = [];
  const registry = new Registry({
    idleTimeoutMs: 5000,
    clock: () => now,
    observer: { onUnpublish: (key, reason) => reasons.push(`${key} ${reason}`) },
  });
  const quiet = registry.startPublish("live", "quiet");
  const busy = registry.startPublish("live", "busy");
  now = 4000;
  busy.publish(videoFrame(0, true));
  assert.equal(registry.reapIdle(), 0);
  now = 6000;
  assert.equal(registry.reapIdle(), 1);
  assert.equal(quiet.closed, true);
  assert.equal(busy.closed, false);
  assert.deepEqual(reasons, ["live/quiet idle"]);
  const stop = registry.startReaper(10);
  stop();
});

Deno.test("authorize passes the request through; a throwing hook refuses", async () => {
  const seen: AuthRequest[] = [];
  const registry = new Registry({
    authorize: (request) => {
      seen.push(request);
      if (request.stream === "boom") throw new Error("hook failed");
      return request.query === "token=ok";
    },
  });
  const base = { action: "publish", app: "live", protocol: "rtmp" } as const;
  assert.equal(await registry.authorize({ ...base, stream: "a", query: "token=ok" }), true);
  assert.equal(await registry.authorize({ ...base, stream: "a", query: "token=no" }), false);
  assert.equal(await registry.authorize({ ...base, stream: "boom", query: "" }), false);
  assert.equal(seen[0].query, "token=ok");
  assert.equal(await new Registry().authorize({ ...base, stream: "a", query: "" }), true);
});

Deno.test("closeAll ends every stream", () => {
  const registry = new Registry();
  const a = registry.startPublish("live", "a");
  const b = registry.startPublish("live", "b");
  registry.closeAll();
  assert.equal(a.closed && b.closed, true);
  assert.deepEqual(registry.list(), []);
});

Deno.test("publish and unpublish events reach listeners with the handle; a throwing one is skipped", () => {
  const registry = new Registry();
  const events: string[] = [];
  registry.on("publish", () => {
    throw new Error("a broken listener");
  });
  const offPublish = registry.on("publish", (handle, info) => {
    events.push(`publish ${handle.key} ${info.protocol} ${handle.closed}`);
  });
  registry.on("unpublish", (handle, reason) => {
    events.push(`unpublish ${handle.key} ${reason} ${handle.closed}`);
  });
  const a = registry.startPublish("live", "a", { protocol: "srt" });
  assert.equal(registry.get("live", "a"), a, "the publish went on past the broken listener");
  registry.endPublish(a, "idle");
  offPublish();
  registry.endPublish(registry.startPublish("live", "b"));
  assert.deepEqual(events, [
    "publish live/a srt false",
    "unpublish live/a idle true",
    "unpublish live/b ended true",
  ]);
});

Deno.test("configure changes apps, per-stream settings and authorize for what comes next", async () => {
  const registry = new Registry();
  const live = registry.startPublish("live", "old");
  registry.configure({
    apps: { cams: { gopCapacity: 8 } },
    streamOptions: (_app, stream) => stream === "big" ? { gopCapacity: 4096 } : undefined,
    authorize: (request) => request.action === "read",
  });
  assert.deepEqual(registry.apps, ["cams"]);
  assert.equal(registry.get("live", "old"), live, "a live stream of a dropped app goes on");
  assert.equal(live.closed, false);
  assert.throws(() => registry.startPublish("live", "new"), { name: "PublishError" });
  assert.equal(registry.startPublish("cams", "small").gopCapacity, 8);
  assert.equal(registry.startPublish("cams", "big").gopCapacity, 4096);
  const ask = { app: "cams", stream: "x", query: "", protocol: "rtmp" } as const;
  assert.equal(await registry.authorize({ ...ask, action: "publish" }), false);
  assert.equal(await registry.authorize({ ...ask, action: "read" }), true);
  registry.configure({ authorize: undefined });
  assert.equal(await registry.authorize({ ...ask, action: "publish" }), true);
});

Deno.test("acquire: a live stream at once; a demanded one once it publishes; none without a source", async () => {
  const demanded: string[] = [];
  const registry = new Registry({
    apps: { live: {} },
    demand: (app, stream) => {
      demanded.push(`${app}/${stream}`);
      if (stream !== "cam") return false;
      setTimeout(() => registry.startPublish(app, stream, { protocol: "pull" }), 20);
      return true;
    },
  });
  const live = registry.startPublish("live", "a");
  assert.equal(await registry.acquire("live", "a"), live);
  assert.deepEqual(demanded, [], "a live stream asks no demand");
  const cam = await registry.acquire("live", "cam");
  assert.equal(cam?.key, "live/cam");
  assert.equal(cam, registry.get("live", "cam"));
  assert.equal(await registry.acquire("live", "nothing"), undefined);
  assert.equal(await registry.acquire("vod", "cam"), undefined, "unknown app: no demand");
  assert.equal(await registry.acquire("live", "bad\nname"), undefined, "bad name: no demand");
  assert.deepEqual(demanded, ["live/cam", "live/nothing"]);
});

Deno.test("acquire: the wait for a demanded publish is bounded by the timeout and the signal", async () => {
  let hook: () => boolean | Promise<boolean> = () => true; // says it starts, never publishes
  const registry = new Registry({ demand: () => hook() });
  assert.equal(await registry.acquire("live", "late", { timeoutMs: 30 }), undefined);
  const reader = new AbortController();
  const waiting = registry.acquire("live", "late", { timeoutMs: 60_000, signal: reader.signal });
  reader.abort();
  assert.equal(await waiting, undefined);
  hook = () => {
    throw new Error("broken hook");
  };
  assert.equal(await registry.acquire("live", "x"), undefined, "a throwing hook starts nothing");
  hook = () => Promise.reject(new Error("broken hook"));
  assert.equal(await registry.acquire("live", "x"), undefined);
  // A demand answered after its own publish (a hook that awaits the start) still finds it.
  hook = () => {
    registry.startPublish("live", "quick");
    return true;
  };
  assert.equal((await registry.acquire("live", "quick"))?.key, "live/quick");
});

Deno.test("acquire: configure sets and clears the demand hook", async () => {
  const registry = new Registry();
  registry.configure({
    demand: (app, stream) => (queueMicrotask(() => registry.startPublish(app, stream)), true),
  });
  assert.equal((await registry.acquire("live", "d"))?.key, "live/d");
  registry.configure({ demand: undefined });
  assert.equal(await registry.acquire("live", "e"), undefined);
});
