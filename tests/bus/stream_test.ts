import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, type Observer, StreamHandle } from "../../mod.ts";
import { audioFrame, configFrame, readAll, videoFrame } from "../_util/frames.ts";

function handle(capacity = 64, gopCapacity = 64, observer?: Observer, clock?: () => number) {
  return new StreamHandle({ app: "live", stream: "t", capacity, gopCapacity, observer, clock });
}

Deno.test("close ends a subscriber while another reference to the handle is held", async () => {
  const h = handle();
  const sub = h.subscribe();
  const retained = h; // an egress that keeps the handle must not keep the stream open
  h.publish(videoFrame(0, true));
  retained.close();
  const frames = await readAll(sub);
  assert.deepEqual(frames.map((f) => f.pts), [0], "buffered frames drain, then the stream ends");
  assert.equal(retained.publish(videoFrame(1)), 0, "publishing after close is a no-op");
  assert.equal(h.subscriberCount, 0);
  assert.equal(h.state, "ended");
  assert.equal(h.signal.aborted, true);
});

Deno.test("publish returns the live subscriber count and 0 after close", () => {
  const h = handle();
  assert.equal(h.publish(videoFrame(0, true)), 0);
  const a = h.subscribe();
  h.subscribe();
  assert.equal(h.publish(videoFrame(1)), 2);
  a.cancel();
  assert.equal(h.publish(videoFrame(2)), 1, "cancelling frees the cursor");
  h.close();
  assert.equal(h.publish(videoFrame(3)), 0);
  assert.equal(h.qos().totalFrames, 3, "frames after close are not counted");
});

Deno.test("a subscription holds no queue: frames it did not pull are only in the ring", async () => {
  const h = handle(8, 0);
  const sub = h.subscribe();
  for (let i = 0; i < 20; i++) h.publish(videoFrame(i, i % 10 === 0));
  h.close();
  const frames = await readAll(sub);
  assert.deepEqual(frames.map((f) => f.pts), [12, 13, 14, 15, 16, 17, 18, 19]);
  assert.equal(sub.dropped, 12);
});

Deno.test("packageTo replays a config published before it subscribed", async () => {
  const h = handle();
  h.publish(configFrame("video"));
  const seen: number[] = [];
  let finished = false;
  const packager = new WritableStream<MediaFrame>({
    write: (frame) => void seen.push(frame.flags),
    close: () => void (finished = true),
  });
  const done = h.packageTo(packager);
  h.publish(videoFrame(1, true));
  h.close();
  await done;
  assert.deepEqual(seen, [FrameFlags.CONFIG, FrameFlags.KEYFRAME]);
  assert.equal(finished, true, "the packager is closed so it can finish");
});

Deno.test("packageTo closes the packager when its signal aborts", async () => {
  const h = handle();
  h.publish(videoFrame(0, true));
  let finished = false;
  const seen: number[] = [];
  const controller = new AbortController();
  const packager = new WritableStream<MediaFrame>({
    write: (frame) => {
      seen.push(frame.pts);
      if (seen.length === 2) controller.abort();
    },
    close: () => void (finished = true),
  });
  const done = h.packageTo({ writable: packager }, { signal: controller.signal });
  h.publish(videoFrame(1));
  await done;
  assert.deepEqual(seen, [0, 1]);
  assert.equal(finished, true);
  assert.equal(h.subscriberCount, 0, "the aborted drive released its subscription");
});

Deno.test("driveTo delivers replay then live, rejects on sink failure, resolves on abort", async () => {
  const h = handle();
  h.publish(configFrame("video"));
  h.publish(videoFrame(0, true));
  const seen: number[] = [];
  let closed = false;
  const sink = new WritableStream<MediaFrame>({
    write: (f) => void seen.push(f.pts),
    close: () => void (closed = true),
  });
  const drive = h.driveTo(sink);
  h.publish(videoFrame(3000));
  h.close();
  await drive;
  assert.deepEqual(seen, [0, 0, 3000]);
  assert.equal(closed, true);

  const h2 = handle();
  h2.publish(videoFrame(0, true));
  const failing = new WritableStream<MediaFrame>({
    write: () => Promise.reject(new Error("peer gone")),
  });
  await assert.rejects(h2.driveTo(failing), /peer gone/);
  assert.equal(h2.subscriberCount, 0);

  const controller = new AbortController();
  let aborted = false;
  const drive3 = h2.driveTo(new WritableStream({ abort: () => void (aborted = true) }), {
    signal: controller.signal,
  });
  controller.abort();
  await drive3;
  assert.equal(aborted, true);
});

Deno.test("GOP truncation signals once per GOP, re-armed by the next keyframe", () => {
  let truncations = 0;
  const h = handle(64, 2, { onGopTruncated: (_key, capacity) => (truncations += capacity / 2) });
  h.publish(videoFrame(0, true));
  h.publish(videoFrame(1));
  h.publish(videoFrame(2)); // first overflow
  h.publish(videoFrame(3)); // still overflowing: silent
  assert.equal(truncations, 1);
  h.publish(videoFrame(4, true));
  h.publish(videoFrame(5));
  h.publish(videoFrame(6));
  h.publish(videoFrame(7));
  assert.equal(truncations, 2);
  assert.deepEqual(h.replayBuffer().map((f) => f.pts), [4, 5], "the replay keeps the GOP prefix");
});

Deno.test("the injected monotonic clock drives lastFrameMs", () => {
  let now = 1000;
  const h = handle(8, 0, undefined, () => now);
  assert.equal(h.lastFrameMs, 1000, "creation counts as activity");
  now = 1500;
  h.publish(videoFrame(0, true));
  assert.equal(h.lastFrameMs, 1500);
  now = 1200; // a clock that never goes back is the caller's contract; we record what it says
  h.publish(videoFrame(1));
  assert.equal(h.lastFrameMs, 1200);
});

Deno.test("a slow subscriber lags and is evicted; the fast one and the publisher see every frame", async () => {
  const lagged: number[] = [];
  let evictions = 0;
  const h = handle(16, 0, {
    onSubscriberLagged: (_key, skipped) => lagged.push(skipped),
    onSubscriberEvicted: () => evictions++,
  });
  const fast = h.subscribe().getReader();
  const slow = h.subscribe({ maxLag: 10 });
  const fastSeen: number[] = [];
  const counts: number[] = [];
  for (let burst = 0; burst < 10; burst++) {
    for (let i = 0; i < 8; i++) counts.push(h.publish(videoFrame(burst * 8 + i, i === 0)));
    for (let i = 0; i < 8; i++) fastSeen.push((await fast.read()).value!.pts);
  }
  assert.deepEqual(fastSeen, Array.from({ length: 80 }, (_, i) => i));
  assert.deepEqual(new Set(counts), new Set([2]), "the publisher always reached both");
  const slowFrames = await readAll(slow);
  assert.deepEqual(slowFrames, [], "the slow subscriber was evicted on its first read");
  assert.equal(slow.evicted, true);
  assert.equal(evictions, 1);
  assert.equal(lagged.length, 1);
  assert.equal(slow.dropped, 64, "it resynced to the oldest buffered keyframe (pts 64)");
  assert.equal(h.subscriberCount, 1);
  h.close();
  assert.equal((await fast.read()).done, true);
});

Deno.test("a lagging subscriber under its maxLag resumes at the oldest buffered keyframe", async () => {
  const h = handle(10, 0);
  const sub = h.subscribe({ maxLag: 100 });
  for (let i = 0; i < 25; i++) h.publish(videoFrame(i, i % 8 === 0));
  h.close();
  const frames = await readAll(sub);
  assert.equal(frames[0].pts, 16, "oldest buffered is 15; the next keyframe is 16");
  assert.equal(frames.at(-1)!.pts, 24);
  assert.equal(sub.dropped, 16);
  assert.equal(sub.evicted, false);
});

Deno.test("replay: video config, audio config, then the GOP from its keyframe, no duplicates", async () => {
  const h = handle();
  h.publish(videoFrame(-1)); // before any keyframe: not cached
  const vcfg = configFrame("video");
  const acfg = configFrame("audio");
  h.publish(acfg);
  h.publish(vcfg);
  h.publish(videoFrame(0, true));
  h.publish(audioFrame(1));
  h.publish(videoFrame(2));
  const expected = [vcfg, acfg, 0, 1, 2];
  const replay = h.replayBuffer();
  assert.equal(replay[0], vcfg);
  assert.equal(replay[1], acfg);
  assert.deepEqual(replay.slice(2).map((f) => f.pts), expected.slice(2));

  const sub = h.subscribe({ replay: true });
  h.publish(videoFrame(3));
  h.close();
  const got = await readAll(sub);
  assert.equal(got[0], vcfg);
  assert.equal(got[1], acfg);
  assert.deepEqual(got.slice(2).map((f) => f.pts), [0, 1, 2, 3], "replay then live, once each");
  assert.equal(new Set(got).size, got.length);
});

Deno.test("a keyframe restarts the GOP; audio keyframes anchor only audio-only streams", () => {
  const h = handle();
  h.publish(videoFrame(0, true));
  h.publish({ ...audioFrame(1), flags: FrameFlags.KEYFRAME });
  h.publish(videoFrame(2, true));
  h.publish(videoFrame(3));
  assert.deepEqual(h.replayBuffer().map((f) => f.pts), [2, 3]);

  const audioOnly = handle();
  audioOnly.publish({ ...audioFrame(0), flags: FrameFlags.KEYFRAME });
  audioOnly.publish({ ...audioFrame(1), flags: FrameFlags.KEYFRAME });
  assert.deepEqual(audioOnly.replayBuffer().map((f) => f.pts), [1]);
});

Deno.test("QoS: one-second windows on the monotonic clock from a known frame pattern", () => {
  let now = 0;
  const h = handle(64, 0, undefined, () => now);
  // 25 fps video of 1000 bytes and 50 audio frames/s of 100 bytes, for 2 seconds.
  for (let t = 0; t <= 2000; t += 20) {
    now = t;
    if (t % 40 === 0) h.publish(videoFrame(t * 90, t % 1000 === 0, 1000));
    h.publish(audioFrame(t * 90, 100));
  }
  const qos = h.qos();
  assert.equal(qos.fps, 25);
  assert.equal(qos.videoBitrateBps, 25 * 1000 * 8);
  assert.equal(qos.audioBitrateBps, 50 * 100 * 8);
  assert.equal(qos.totalFrames, 51 + 101);
  assert.equal(qos.totalBytes, 51 * 1000 + 101 * 100);
  const meta = h.metadata();
  assert.equal(meta.fps, 25);
  assert.equal(meta.videoBitrateBps, 200_000);
  now = 5000;
  assert.equal(h.qos().fps, 0, "a publisher that went quiet has no current rate");
});

Deno.test("metadata: updates persist, snapshots are copies, state follows the lifecycle", () => {
  const h = handle();
  assert.equal(h.state, "idle");
  h.setState("publishing");
  assert.equal(h.state, "publishing");
  h.updateMetadata((m) => {
    m.width = 1280;
    m.height = 720;
    m.ingestProtocol = "rtmp";
  });
  const snap = h.metadata();
  snap.width = 1;
  assert.equal(h.metadata().width, 1280);
  assert.equal(h.metadata().ingestProtocol, "rtmp");
  assert.equal(h.metadata().startedAtMs, 0);
  h.publish(videoFrame(0, true));
  assert.ok(h.metadata().startedAtMs > 0);
  h.close();
  h.setState("publishing");
  assert.equal(h.state, "ended");
});

Deno.test("recording: a publishing stream is recorded without leaving publishing, recorders overlap", () => {
  const h = handle();
  h.setState("publishing");
  assert.equal(h.recording, false);
  const first = h.beginRecording();
  const second = h.beginRecording();
  assert.equal(h.state, "publishing", "recording does not replace the publishing state");
  assert.equal(h.recording, true);
  first[Symbol.dispose]();
  first[Symbol.dispose]();
  assert.equal(h.recording, true, "one recorder is still writing; a second dispose counts once");
  second[Symbol.dispose]();
  assert.equal(h.recording, false);
  assert.equal(h.state, "publishing");
});

Deno.test("10,000 subscribers on one stream each receive every frame", async () => {
  const h = handle(256, 0);
  const subs = Array.from({ length: 10_000 }, () => h.subscribe());
  const frames = 50;
  const sums = subs.map(async (sub) => {
    let sum = 0;
    let count = 0;
    for await (const frame of sub) {
      sum += frame.pts;
      count++;
    }
    return { sum, count, dropped: sub.dropped };
  });
  for (let i = 0; i < frames; i++) {
    assert.equal(h.publish(videoFrame(i, i === 0)), 10_000);
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 0));
  }
  h.close();
  const results = await Promise.all(sums);
  const expectedSum = (frames * (frames - 1)) / 2;
  assert.ok(results.every((r) => r.count === frames && r.sum === expectedSum && r.dropped === 0));
  assert.equal(h.subscriberCount, 0);
});

Deno.test("describeConfig fills codec and picture metadata from CONFIG frames; failures are ignored", () => {
  const h = new StreamHandle({
    app: "live",
    stream: "d",
    capacity: 8,
    describeConfig: (frame) => {
      if (frame.data[0] === 0xff) throw new RangeError("bad config");
      return frame.kind === "video"
        ? { codec: "avc1.64001f", width: 1280, height: 720, frameRate: 30 }
        : { codec: "mp4a.40.2" };
    },
  });
  h.publish({ ...configFrame("video"), data: new Uint8Array([0xff]) });
  assert.equal(
    h.metadata().videoCodec,
    undefined,
    "a config the describer rejects changes nothing",
  );
  h.publish(configFrame("video"));
  h.publish(configFrame("audio"));
  const m = h.metadata();
  assert.deepEqual([m.videoCodec, m.audioCodec, m.width, m.height, m.fps], [
    "avc1.64001f",
    "mp4a.40.2",
    1280,
    720,
    30,
  ]);
});

Deno.test("readerCount counts viewers, not background readers; lastReadMs is when the last left", async () => {
  let now = 1000;
  const h = handle(64, 64, undefined, () => now);
  assert.equal(h.readerCount, 0);
  assert.equal(h.lastReadMs, 1000, "the handle's creation before any reader");
  const packager = h.subscribe({ replay: true, background: true });
  assert.equal(h.readerCount, 0, "a background reader is no viewer");
  assert.equal(h.subscriberCount, 1);
  const viewer = h.subscribe({ replay: true });
  const player = h.play({ write: () => {} });
  assert.equal(h.readerCount, 2);
  now = 2000;
  assert.equal(h.lastReadMs, 2000, "now, while anyone reads");
  await viewer.cancel();
  now = 3000;
  assert.equal(h.readerCount, 1);
  assert.equal(h.lastReadMs, 3000);
  const stop = new AbortController();
  const played = h.play({ write: () => {} }, { signal: stop.signal });
  assert.equal(h.readerCount, 2);
  stop.abort();
  assert.equal((await played).end, "aborted");
  now = 3500;
  h.close();
  assert.equal((await player).end, "ended");
  now = 4000;
  assert.equal(h.readerCount, 0);
  assert.equal(h.lastReadMs, 3500, "when the last viewer left");
  h.noteRead();
  assert.equal(h.lastReadMs, 4000, "a polling reader counts as a read");
  await packager.cancel();
  now = 5000;
  assert.equal(h.subscriberCount, 0);
  assert.equal(h.lastReadMs, 4000, "a background reader leaving is no read");
});
