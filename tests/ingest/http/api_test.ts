import assert from "node:assert/strict";
import { combineObservers, Registry } from "../../../mod.ts";
import { Metrics, metricsRoute, serveHttp, streamsApi } from "../../../ingest/http/mod.ts";
import { videoFrame } from "../../_util/frames.ts";

async function withServer(
  fn: (base: string, registry: Registry, metrics: Metrics) => Promise<void>,
) {
  const metrics = new Metrics();
  let lagged = 0;
  const registry = new Registry({
    observer: combineObservers(metrics, { onSubscriberLagged: () => lagged++ }),
  });
  const server = serveHttp({
    routes: [streamsApi(registry), metricsRoute(metrics, registry)],
    hostname: "127.0.0.1",
    port: 0,
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, registry, metrics);
  } finally {
    await server.close();
  }
  assert.ok(lagged >= 0);
}

Deno.test("GET /v1/streams lists live streams with their metadata and subscribers", async () => {
  await withServer(async (base, registry) => {
    assert.deepEqual(await (await fetch(`${base}/v1/streams`)).json(), []);
    const handle = registry.startPublish("live", "cam", { protocol: "rtmp", peer: "10.0.0.1:5" });
    handle.updateMetadata((m) => {
      m.width = 640;
      m.height = 360;
      m.videoCodec = "avc1.64001e";
      m.audioCodec = "mp4a.40.2";
    });
    handle.publish(videoFrame(0, true));
    const sub = handle.subscribe();
    const list = await (await fetch(`${base}/v1/streams`)).json();
    assert.equal(list.length, 1);
    const [s] = list;
    assert.equal(s.key, "live/cam");
    assert.equal(s.ingestProtocol, "rtmp");
    assert.equal(s.publisher, "10.0.0.1:5");
    assert.deepEqual(s.codecs, ["avc1.64001e", "mp4a.40.2"]);
    assert.equal(s.width, 640);
    assert.equal(s.subscribers, 1);
    assert.equal(s.state, "publishing");
    assert.equal(s.recording, false);
    assert.ok(Date.parse(s.startedAt) > 0);
    const one = await fetch(`${base}/v1/streams/live/cam`);
    assert.equal((await one.json()).key, "live/cam");
    {
      using _recording = handle.beginRecording();
      const recorded = await (await fetch(`${base}/v1/streams/live/cam`)).json();
      assert.equal(recorded.state, "publishing", "a recorded stream is still publishing");
      assert.equal(recorded.recording, true);
    }
    assert.equal((await (await fetch(`${base}/v1/streams/live/cam`)).json()).recording, false);
    await sub.cancel();
  });
});

Deno.test("unknown streams and paths get clear 404s; other methods 405", async () => {
  await withServer(async (base) => {
    const missing = await fetch(`${base}/v1/streams/live/nope`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /no such stream: live\/nope/);
    const other = await fetch(`${base}/etc/passwd`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const post = await fetch(`${base}/v1/streams`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  });
});

Deno.test("GET /metrics renders counters and per-stream gauges in Prometheus text", async () => {
  await withServer(async (base, registry) => {
    const handle = registry.startPublish("live", "m", { protocol: "srt" });
    const slow = handle.subscribe({ maxLag: 1 });
    for (let i = 0; i < 3000; i++) handle.publish(videoFrame(i * 3000, i === 0, 10));
    await slow.getReader().read(); // falls two rings behind: lag, then eviction
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /^arcly_streams 1$/m);
    assert.match(text, /^arcly_publishes_total\{protocol="srt"\} 1$/m);
    assert.match(text, /^arcly_stream_frames_total\{stream="live\/m"\} 3000$/m);
    assert.match(text, /^arcly_stream_bytes_total\{stream="live\/m"\} 30000$/m);
    assert.match(text, /^arcly_subscriber_evictions_total 1$/m);
    assert.match(text, /^arcly_subscriber_lag_events_total 1$/m);
    assert.match(text, /^# TYPE arcly_stream_fps gauge$/m);
    registry.endPublish(handle);
    const after = await (await fetch(`${base}/metrics`)).text();
    assert.match(after, /^arcly_unpublishes_total\{reason="ended"\} 1$/m);
    assert.match(after, /^arcly_streams 0$/m);
  });
});
