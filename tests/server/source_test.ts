import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry, type UnpublishReason } from "../../mod.ts";
import type { PullClient, PullOptions } from "../../ingest/pull.ts";
import { PullSource, type PullSourceOptions } from "../../server/source.ts";
import { audioFrame, configFrame, videoFrame } from "../_util/frames.ts";
import { within } from "../_util/within.ts";

/** One connection the source made to the scripted remote. */
interface Connection {
  readonly url: URL;
  readonly options: PullOptions;
  /** End it: cleanly, or failing with `error`. */
  end(error?: Error): void;
  /** Aborted by the source. */
  readonly aborted: Promise<void>;
}

/** A remote whose connections the test drives frame by frame. */
class ScriptedRemote {
  readonly connections: Connection[] = [];
  #arrived = Promise.withResolvers<void>();

  readonly client: PullClient = (url, options) =>
    new Promise<void>((resolve, reject) => {
      const aborted = Promise.withResolvers<void>();
      options.signal?.addEventListener("abort", () => {
        aborted.resolve();
        resolve();
      });
      this.connections.push({
        url,
        options,
        end: (error) => error ? reject(error) : resolve(),
        aborted: aborted.promise,
      });
      this.#arrived.resolve();
      this.#arrived = Promise.withResolvers();
    });

  /** The `n`th connection (from 0), once made. */
  async connection(n: number): Promise<Connection> {
    while (this.connections.length <= n) {
      await within(this.#arrived.promise, 5000, `connection ${n}`);
    }
    return this.connections[n];
  }
}

/** Frames of one connection: the configs, a keyframe, a delta frame and audio, from `t`. */
function send(connection: Connection, t: number): void {
  for (const frame of [configFrame("video"), configFrame("audio")]) {
    connection.options.onFrame({ ...frame, pts: t, dts: t });
  }
  connection.options.onFrame(videoFrame(t, true));
  connection.options.onFrame(audioFrame(t));
  connection.options.onFrame(videoFrame(t + 3000));
}

function setup(options: Partial<PullSourceOptions> = {}) {
  const registry = new Registry();
  const remote = new ScriptedRemote();
  const events: string[] = [];
  registry.on(
    "publish",
    (h, info) => events.push(`publish ${h.key} ${info.protocol} ${info.peer}`),
  );
  registry.on(
    "unpublish",
    (h, reason: UnpublishReason) => events.push(`unpublish ${h.key} ${reason}`),
  );
  const source = new PullSource({
    registry,
    app: "live",
    stream: "cam",
    url: "rtsp://user:secret@camera.example:554/stream1?token=abc",
    clientFor: () => remote.client,
    backoffMs: 10,
    maxBackoffMs: 20,
    retryWindowMs: 300,
    ...options,
  });
  return { registry, remote, events, source };
}

/** The frames a replaying reader of `live/cam` gets right now. */
function replayed(registry: Registry): MediaFrame[] {
  return registry.get("live", "cam")?.replayBuffer() ?? [];
}

Deno.test("pull source: the publish starts at the first media frame with every config before it", async () => {
  const { registry, remote, events, source } = setup();
  const first = await remote.connection(0);
  assert.equal(first.url.href, "rtsp://user:secret@camera.example:554/stream1?token=abc");
  first.options.onFrame(configFrame("video"));
  first.options.onFrame(configFrame("audio"));
  assert.equal(registry.get("live", "cam"), undefined, "configs alone publish nothing");
  first.options.onFrame(videoFrame(90_000, true));
  const replay = replayed(registry);
  assert.deepEqual(replay.map((f) => [f.kind, f.flags]), [
    ["video", FrameFlags.CONFIG],
    ["audio", FrameFlags.CONFIG],
    ["video", FrameFlags.KEYFRAME],
  ]);
  assert.deepEqual(events, ["publish live/cam pull rtsp://camera.example:554/stream1"]);
  const status = source.status();
  assert.equal(status.state, "live");
  assert.equal(status.url, "rtsp://camera.example:554/stream1", "no credentials, no query");
  assert.equal(status.connections, 1);
  await source.stop();
  await first.aborted;
  assert.deepEqual(events.at(-1), "unpublish live/cam ended");
  assert.equal(source.status().state, "stopped");
});

Deno.test("pull source: a remote back within the retry window continues the stream, marked DISCONTINUITY", async () => {
  const { registry, remote, events, source } = setup();
  const first = await remote.connection(0);
  send(first, 900_000);
  const handle = registry.get("live", "cam")!;
  const reader = handle.subscribe({ replay: true }).getReader(); // the 5 frames sent so far
  first.end(new Error("connection reset"));
  const second = await remote.connection(1);
  assert.equal(source.status().lastError, "connection reset");
  send(second, 0); // a restarted remote: its clock starts over
  assert.equal(registry.get("live", "cam"), handle, "the same publish");
  assert.deepEqual(events, ["publish live/cam pull rtsp://camera.example:554/stream1"]);
  const got: MediaFrame[] = [];
  for (let i = 0; i < 10; i++) got.push((await reader.read()).value!);
  const after = got.slice(5);
  assert.deepEqual(after.map((f) => f.flags), [
    FrameFlags.CONFIG | FrameFlags.DISCONTINUITY,
    FrameFlags.CONFIG | FrameFlags.DISCONTINUITY,
    FrameFlags.KEYFRAME | FrameFlags.DISCONTINUITY,
    FrameFlags.DISCONTINUITY, // the first audio frame
    FrameFlags.NONE,
  ]);
  const lastBefore = Math.max(...got.slice(0, 5).map((f) => f.dts));
  assert.ok(after.every((f) => f.dts > lastBefore), "timestamps go on from the first connection");
  assert.equal(after[3].dts - after[2].dts, 0, "the new connection's own spacing is kept");
  assert.equal(after[4].dts - after[2].dts, 3000);
  reader.releaseLock();
  await source.stop();
});

Deno.test("pull source: past the retry window the stream ends; a kept source publishes again when the remote returns", async () => {
  const { registry, remote, events, source } = setup();
  send(await remote.connection(0), 0);
  const firstHandle = registry.get("live", "cam")!;
  remote.connections[0].end(new Error("gone"));
  // Every attempt fails until the window has passed.
  for (let n = 1; !firstHandle.closed; n++) (await remote.connection(n)).end(new Error("refused"));
  assert.equal(registry.get("live", "cam"), undefined);
  assert.deepEqual(events.slice(0, 2), [
    "publish live/cam pull rtsp://camera.example:554/stream1",
    "unpublish live/cam error",
  ]);
  const back = await remote.connection(remote.connections.length);
  send(back, 0);
  const again = registry.get("live", "cam")!;
  assert.notEqual(again, firstHandle, "a new publish");
  assert.ok(
    again.replayBuffer().every((f) => (f.flags & FrameFlags.DISCONTINUITY) === 0),
    "a new publish starts clean",
  );
  await source.stop();
});

Deno.test("pull source: on demand, it stops once nobody has read for closeAfterMs", async () => {
  const { registry, remote, events, source } = setup({ onDemand: true, closeAfterMs: 50 });
  const connection = await remote.connection(0);
  send(connection, 0);
  const handle = registry.get("live", "cam")!;
  const viewer = handle.subscribe({ replay: true });
  const packager = handle.subscribe({ replay: true, background: true });
  // Held while a viewer reads: the idle check runs every closeAfterMs.
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.equal(handle.closed, false, "a viewer keeps it up");
  await viewer.cancel();
  await within(source.finished, 5000, "the source to stop");
  await connection.aborted;
  assert.equal(handle.closed, true);
  assert.deepEqual(events.at(-1), "unpublish live/cam ended");
  await packager.cancel();
});

Deno.test("pull source: a key someone else publishes is not taken; a source with no client stops", async () => {
  const { registry, remote, source } = setup();
  const other = registry.startPublish("live", "cam", { protocol: "rtmp" });
  const connection = await remote.connection(0);
  send(connection, 0);
  await connection.aborted;
  assert.equal(registry.get("live", "cam"), other, "the other publisher is undisturbed");
  assert.equal(source.status().lastError, "the stream cannot be published: busy");
  registry.endPublish(other);
  send(await remote.connection(1), 0);
  assert.equal(registry.get("live", "cam")?.metadata().ingestProtocol, "pull");
  await source.stop();

  const none = setup({ onDemand: true, clientFor: () => undefined, retryWindowMs: 0 });
  await within(none.source.finished, 5000, "a source without a client to stop");
  assert.equal(none.source.status().lastError, "no client for rtsp: sources");
  assert.equal(none.remote.connections.length, 0);
});

Deno.test("pull source: the URL is asked before each connection; an on-demand source whose URL is gone stops", async () => {
  const urls = ["srt://origin-a:8890?streamid=read:live/cam", undefined];
  const { remote, source } = setup({ onDemand: true, url: () => urls.shift() });
  const first = await remote.connection(0);
  assert.equal(first.url.host, "origin-a:8890");
  send(first, 0);
  first.end();
  await within(source.finished, 5000, "the source to stop");
  assert.equal(source.status().lastError, "the source is gone");
  assert.equal(source.handle, undefined);
});
