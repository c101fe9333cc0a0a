import assert from "node:assert/strict";
import { EncodedFrames, type PlaySink, StreamHandle } from "../../mod.ts";
import { audioFrame, configFrame, videoFrame } from "../_util/frames.ts";
import { within } from "../_util/within.ts";
import { RecordingSink } from "./_recording_sink.ts";

function handle(capacity = 64, gopCapacity = 64) {
  return new StreamHandle({ app: "live", stream: "s", capacity, gopCapacity });
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("play: replays configs and the current GOP, then live frames, and ends with the stream", async () => {
  const h = handle();
  h.publish(configFrame("video"));
  h.publish(videoFrame(0, true));
  h.publish(videoFrame(3000, true));
  h.publish(audioFrame(3100));
  const sink = new RecordingSink();
  const playing = h.play(sink);
  assert.equal(h.subscriberCount, 1);
  // One batch for everything due at once: the config, then the GOP from its keyframe.
  assert.deepEqual(sink.batches.map((b) => b.length), [3]);
  assert.equal(sink.batches[0][0].flags, configFrame("video").flags);
  assert.deepEqual(sink.pts.slice(1), [3000, 3100]);
  h.publish(videoFrame(6000));
  h.publish(videoFrame(9000));
  await tick();
  assert.deepEqual(sink.pts.slice(3), [6000, 9000]);
  h.close();
  assert.deepEqual(await within(playing, 1000, "end"), { end: "ended", dropped: 0 });
  assert.equal(h.subscriberCount, 0);
});

Deno.test("play: replay false starts at the live edge; frames buffered at close are still delivered", async () => {
  const h = handle();
  h.publish(videoFrame(0, true));
  const sink = new RecordingSink();
  const playing = h.play(sink, { replay: false });
  assert.deepEqual(sink.batches, []);
  h.publish(videoFrame(3000));
  h.close();
  assert.equal((await playing).end, "ended");
  assert.deepEqual(sink.pts, [3000]);
});

Deno.test("play: a pending write batches what arrives meanwhile into the next write", async () => {
  const h = handle();
  const sink = new RecordingSink();
  sink.hold = true;
  const playing = h.play(sink);
  h.publish(videoFrame(0, true));
  await tick();
  for (let i = 1; i <= 5; i++) h.publish(videoFrame(i * 3000));
  await tick();
  assert.equal(sink.batches.length, 1, "no write while one is pending");
  sink.release();
  await tick();
  assert.deepEqual(sink.batches.map((b) => b.length), [1, 5]);
  h.close();
  assert.equal((await playing).end, "ended");
});

Deno.test("play: a reader a ring behind skips to a keyframe; past maxLag it is evicted", async () => {
  const h = handle(8, 8);
  const sink = new RecordingSink();
  sink.hold = true;
  const playing = h.play(sink, { maxLag: 20 });
  h.publish(videoFrame(0, true));
  await tick();
  for (let i = 1; i <= 12; i++) h.publish(videoFrame(i, i % 4 === 0));
  sink.release();
  await tick();
  // Frames 1..4 were overwritten; the reader resumed at the oldest buffered keyframe, 8.
  assert.deepEqual(sink.pts, [0, 8, 9, 10, 11, 12]);
  sink.hold = true;
  h.publish(videoFrame(13));
  await tick();
  for (let i = 14; i <= 60; i++) h.publish(videoFrame(i, i % 4 === 0));
  sink.release();
  const result = await within(playing, 1000, "eviction");
  assert.equal(result.end, "evicted");
  assert.ok(result.dropped > 20);
  assert.equal(h.subscriberCount, 0);
});

Deno.test("play: a write pending past stallTimeoutMs ends the play as stalled", async () => {
  const h = handle();
  const sink = new RecordingSink();
  sink.hold = true;
  const playing = h.play(sink, { stallTimeoutMs: 50 });
  h.publish(videoFrame(0, true));
  const result = await within(playing, 2000, "stall");
  assert.deepEqual(result, { end: "stalled", dropped: 0 });
  assert.equal(h.subscriberCount, 0);
  sink.release(); // a late drain changes nothing
  await tick();
  assert.equal(sink.batches.length, 1);
});

Deno.test("play: the signal ends a waiting or a busy play as aborted", async () => {
  const h = handle();
  const idle = new AbortController();
  const waiting = h.play(new RecordingSink(), { signal: idle.signal });
  idle.abort();
  assert.equal((await within(waiting, 1000, "abort")).end, "aborted");
  const busy = new AbortController();
  const sink = new RecordingSink();
  sink.hold = true;
  const writing = h.play(sink, { signal: busy.signal });
  h.publish(videoFrame(0, true));
  busy.abort();
  assert.equal((await within(writing, 1000, "abort")).end, "aborted");
  const before = new AbortController();
  before.abort();
  assert.equal((await h.play(new RecordingSink(), { signal: before.signal })).end, "aborted");
  assert.equal(h.subscriberCount, 0);
});

Deno.test("play: a sink that throws or rejects ends the play as failed with its error", async () => {
  const h = handle();
  const boom = new Error("boom");
  const throwing = h.play({
    write: () => {
      throw boom;
    },
  });
  const rejecting = h.play({ write: () => Promise.reject(boom) });
  h.publish(videoFrame(0, true));
  assert.deepEqual(await throwing, { end: "failed", dropped: 0, error: boom });
  assert.deepEqual(await rejecting, { end: "failed", dropped: 0, error: boom });
  assert.equal(h.subscriberCount, 0);
});

Deno.test("play: maxBatch bounds a batch", async () => {
  const h = handle();
  for (let i = 0; i < 5; i++) h.publish(videoFrame(i, i === 0));
  const sink = new RecordingSink();
  const playing = h.play(sink, { maxBatch: 2 });
  assert.deepEqual(sink.batches.map((b) => b.length), [2, 2, 1]);
  h.close();
  await playing;
});

Deno.test("derive: one value per form while held, made again after the last release", () => {
  const h = handle();
  let made = 0;
  const make = () => {
    made++;
    return new EncodedFrames((f) => f.data.slice());
  };
  const a = h.derive("copy", make);
  const b = h.derive("copy", make);
  const other = h.derive("other", make);
  assert.equal(a.value, b.value);
  assert.notEqual(a.value, other.value);
  const frame = videoFrame(0, true);
  assert.equal(a.value.get(frame), b.value.get(frame), "encoded once, shared");
  a.release();
  a.release(); // idempotent
  const c = h.derive("copy", make);
  assert.equal(c.value, b.value, "still held by b");
  b.release();
  c.release();
  other.release();
  assert.equal(made, 2);
  const again = h.derive("copy", make);
  assert.notEqual(again.value, c.value, "dropped with the last holder, made anew");
  assert.equal(made, 3);
});

Deno.test("play: coalesceMs merges frames that arrive within the delay into one batch; the replay is not delayed", async () => {
  const h = handle();
  h.publish(videoFrame(0, true));
  const sink = new RecordingSink();
  const playing = h.play(sink, { coalesceMs: 30 });
  assert.deepEqual(sink.batches.map((b) => b.length), [1], "replay at once");
  h.publish(videoFrame(3000));
  await tick();
  h.publish(videoFrame(6000));
  await tick();
  h.publish(videoFrame(9000));
  assert.equal(sink.batches.length, 1, "nothing yet within the delay");
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(sink.batches.map((b) => b.length), [1, 3]);
  h.close();
  assert.equal((await within(playing, 1000, "end")).end, "ended");
});

Deno.test("EncodedFrames.concat: players woken together share one joined batch; others get their own", async () => {
  const h = handle();
  h.publish(videoFrame(0, true));
  let encoded = 0;
  const tags = new EncodedFrames((f) => {
    encoded++;
    return new Uint8Array([f.pts / 3000, 0xee]);
  });
  const written: Uint8Array[][] = [[], [], []];
  const sinks = written.map((out): PlaySink => ({
    write: (frames, count) => void out.push(tags.concat(frames, count)),
  }));
  const players = sinks.map((sink) => h.play(sink, { coalesceMs: 20 }));
  // All three are parked on one timer: the frames published meanwhile come in one batch.
  h.publish(videoFrame(3000));
  h.publish(audioFrame(6000));
  h.publish(videoFrame(9000));
  await within(
    (async () => {
      while (written.some((out) => out.length < 2)) await tick();
    })(),
    2000,
    "the live batch",
  );
  const live = written.map((out) => out[1]);
  assert.deepEqual([...live[0]], [1, 0xee, 2, 0xee, 3, 0xee]);
  assert.equal(live[1], live[0], "the same bytes, joined once");
  assert.equal(live[2], live[0]);
  assert.equal(encoded, 4, "each frame encoded once");
  // A single frame is its own bytes, uncopied; another run of frames is joined anew.
  const [a, b, c] = [videoFrame(12000), audioFrame(13000), videoFrame(15000)];
  assert.equal(tags.concat([a], 1), tags.get(a));
  const ab = tags.concat([a, b, c], 2);
  assert.deepEqual([...ab], [4, 0xee, 4, 0xee]); // 13000 / 3000 stored in a byte: 4
  assert.notEqual(tags.concat([a, c], 2), ab);
  assert.equal(tags.concat([a, b], 2), ab, "kept for the next caller");
  h.close();
  await Promise.all(players);
});
