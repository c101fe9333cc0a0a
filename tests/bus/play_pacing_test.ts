/**
 * The play line's pacing, on an injected clock and timers: `catchUpSpeed` (the replay and
 * what came meanwhile at a multiple of real time, until the player is live) and `realTime`
 * (no media frame before its time on the stream's clock).
 */

import assert from "node:assert/strict";
import {
  FrameFlags,
  type MediaFrame,
  PACING_STEP_MS,
  type PlayOptions,
  Registry,
  StreamHandle,
} from "../../mod.ts";
import { configFrame, videoFrame } from "../_util/frames.ts";
import { ManualTime } from "../_util/manual_time.ts";
import { RecordingSink } from "./_recording_sink.ts";

/** 30 fps on the 90 kHz clock. */
const FRAME_TICKS = 3000;
const FRAME_MS = FRAME_TICKS / 90;

function stream(time: ManualTime, capacity = 256): StreamHandle {
  return new StreamHandle({
    app: "live",
    stream: "p",
    capacity,
    gopCapacity: capacity,
    timers: time.timers,
  });
}

/** Play `handle` into a sink recording hand-over times on `time`. */
function play(handle: StreamHandle, time: ManualTime, options: PlayOptions) {
  const sink = new RecordingSink(time.clock);
  return { sink, playing: handle.play(sink, options) };
}

/** When `sink` was handed `frame`. */
function handedAt(sink: RecordingSink, frame: MediaFrame): number {
  const at = sink.frames.indexOf(frame);
  assert.ok(at >= 0, `frame ${frame.dts} was handed over`);
  return sink.at[at];
}

Deno.test("catchUpSpeed: the replay and what came meanwhile go no sooner than their schedule, in order, each once; once live, frames go as they come", async () => {
  const time = new ManualTime(1000);
  const registry = new Registry({ timers: time.timers });
  const h = registry.startPublish("live", "p");
  const published: MediaFrame[] = [configFrame("video")];
  const publishedAt: number[] = [1000];
  const publish = (frame: MediaFrame) => {
    h.publish(frame);
    published.push(frame);
    publishedAt.push(time.now);
  };
  h.publish(published[0]);
  for (let i = 0; i < 30; i++) publish(videoFrame(i * FRAME_TICKS, i === 0)); // a 1 s GOP
  const { sink, playing } = play(h, time, { catchUpSpeed: 2 });
  assert.deepEqual(sink.batches.map((b) => b.length), [2], "the config and the keyframe at once");
  // The live edge moves on in real time while the player catches up at twice that.
  for (let k = 30; k < 120; k++) {
    await time.advanceTo(1000 + (k - 29) * FRAME_MS);
    publish(videoFrame(k * FRAME_TICKS));
  }
  await time.advanceTo(time.now + 1000);
  assert.deepEqual(sink.frames, published, "every frame once, in order");
  for (let k = 1; k < 120; k++) {
    const due = 1000 + (k * FRAME_MS) / 2;
    const at = handedAt(sink, published[k + 1]);
    assert.ok(at >= due - PACING_STEP_MS, `frame ${k} at ${at}, due at ${due}`);
    assert.ok(at >= publishedAt[k + 1]);
  }
  assert.ok(sink.batches.length > 30, "the replay went out in steps, not in one burst");
  for (let k = 70; k < 120; k++) {
    assert.equal(handedAt(sink, published[k + 1]), publishedAt[k + 1], `live frame ${k}`);
  }
  // Caught up, the player is paced no more: a burst goes at once.
  const before = sink.batches.length;
  const burst = Array.from({ length: 30 }, (_, i) => videoFrame((120 + i) * FRAME_TICKS));
  for (const frame of burst) h.publish(frame);
  await time.advanceTo(time.now);
  assert.deepEqual(sink.batches.slice(before), [burst]);
  registry.endPublish(h);
  assert.deepEqual(await playing, { end: "ended", dropped: 0 });
  assert.equal(time.pending, 0);
});

Deno.test("catchUpSpeed: frames handed over late by the player's own wait go at once, and the catch-up goes on", async () => {
  const time = new ManualTime(0);
  const h = stream(time);
  const gop = Array.from({ length: 30 }, (_, i) => videoFrame(i * FRAME_TICKS, i === 0));
  for (const frame of gop) h.publish(frame);
  const { sink, playing } = play(h, time, { catchUpSpeed: 2 });
  // The wake-up for frame 1 (due at 16.7 ms) comes 300 ms late: frames 1 to 18 are due by
  // then (and within a step), frame 19 (316.7 ms) is not.
  await time.jumpTo(300);
  assert.deepEqual(sink.batches.map((b) => b.length), [1, 18]);
  await time.advanceTo(2000);
  assert.deepEqual(sink.frames, gop);
  for (let i = 19; i < 30; i++) {
    const due = (i * FRAME_MS) / 2;
    assert.ok(handedAt(sink, gop[i]) >= due - PACING_STEP_MS, `frame ${i} still paced`);
  }
  h.close();
  assert.equal((await playing).end, "ended");
});

Deno.test("realTime: the replay goes at once, a publisher faster than real time reaches the player at the stream's pace, a DISCONTINUITY restarts the clock", async () => {
  const time = new ManualTime(0);
  const h = stream(time);
  const replay = [configFrame("video"), videoFrame(0, true), videoFrame(FRAME_TICKS)];
  for (const frame of replay) h.publish(frame);
  time.now = 5000;
  const { sink, playing } = play(h, time, { realTime: true });
  assert.deepEqual(sink.batches, [replay]);
  // Two seconds of media published at once.
  const fast = Array.from({ length: 60 }, (_, i) => videoFrame((i + 2) * FRAME_TICKS));
  for (const frame of fast) h.publish(frame);
  await time.advanceTo(8000);
  assert.deepEqual(sink.frames, [...replay, ...fast], "every frame once, in order");
  for (const frame of fast) {
    const due = 5000 + (frame.dts - FRAME_TICKS) / 90;
    const at = handedAt(sink, frame);
    assert.ok(at >= due - PACING_STEP_MS && at <= Math.ceil(due), `${frame.dts} at ${at}`);
  }
  const restarted: MediaFrame = { ...videoFrame(0, true), flags: FrameFlags.DISCONTINUITY };
  const next = videoFrame(FRAME_TICKS);
  h.publish(restarted);
  h.publish(next);
  await time.advanceTo(9000);
  assert.equal(handedAt(sink, restarted), 8000, "anchored anew, at once");
  assert.equal(handedAt(sink, next), Math.ceil(8000 + FRAME_MS));
  h.close();
  assert.equal((await playing).end, "ended");
});

Deno.test("realTime: a CONFIG frame goes at once and does not move the clock's anchor", async () => {
  const time = new ManualTime(0);
  const h = stream(time);
  h.publish(videoFrame(900_000, true)); // 10 s into the stream
  const { sink, playing } = play(h, time, { realTime: true });
  const oldConfig = configFrame("video"); // re-sent with the time it was first made with
  const media = videoFrame(900_000 + FRAME_TICKS);
  h.publish(oldConfig);
  h.publish(media);
  await time.advanceTo(100);
  assert.equal(handedAt(sink, oldConfig), 0, "at once");
  assert.equal(handedAt(sink, media), Math.ceil(FRAME_MS), "on the replay's clock");
  h.close();
  assert.equal((await playing).end, "ended");
});

Deno.test("catchUpSpeed: a CONFIG frame is not paced and does not move the schedule", async () => {
  const time = new ManualTime(0);
  const h = stream(time);
  h.publish(videoFrame(0, true));
  h.publish(videoFrame(FRAME_TICKS));
  const { sink, playing } = play(h, time, { catchUpSpeed: 2 });
  const ahead: MediaFrame = { ...configFrame("video"), dts: 45_000, pts: 45_000 }; // 500 ms
  const after = videoFrame(2 * FRAME_TICKS);
  h.publish(ahead);
  h.publish(after);
  await time.advanceTo(100);
  assert.equal(handedAt(sink, ahead), Math.ceil(FRAME_MS / 2), "with the frame before it");
  assert.equal(handedAt(sink, after), Math.ceil(FRAME_MS), "on the schedule it left alone");
  h.close();
  assert.equal((await playing).end, "ended");
});

Deno.test("pacing: a paced player a ring behind skips to a keyframe, and past maxLag is evicted", async () => {
  const time = new ManualTime(0);
  const h = stream(time, 8);
  const { sink, playing } = play(h, time, { realTime: true, maxLag: 20 });
  h.publish(videoFrame(0, true));
  await time.advanceTo(0);
  // 100 ms apart, published at once: the player holds frame 1 in the ring, which overwrites it.
  for (let i = 1; i <= 12; i++) h.publish(videoFrame(i * 9000, i % 4 === 0));
  await time.advanceTo(1200);
  assert.deepEqual(sink.pts, [0, 72_000, 81_000, 90_000, 99_000, 108_000]);
  assert.equal(handedAt(sink, sink.frames[1]), 800, "the keyframe it skipped to, at its time");
  for (let i = 13; i <= 60; i++) h.publish(videoFrame(i * 9000, i % 4 === 0));
  await time.advanceTo(2000);
  assert.deepEqual(await playing, { end: "evicted", dropped: 7 + 43 });
  assert.equal(h.subscriberCount, 0);
  assert.equal(time.pending, 0);
});

Deno.test("pacing: an abort while held ends the play at once and hands nothing more", async () => {
  const time = new ManualTime(0);
  const h = stream(time);
  h.publish(videoFrame(0, true));
  const stop = new AbortController();
  const { sink, playing } = play(h, time, { realTime: true, catchUpSpeed: 2, signal: stop.signal });
  h.publish(videoFrame(FRAME_TICKS));
  await time.advanceTo(0);
  assert.equal(time.pending, 1, "held until its time");
  stop.abort();
  assert.deepEqual(await playing, { end: "aborted", dropped: 0 });
  assert.equal(time.pending, 0, "its wake-up taken back");
  await time.advanceTo(1000);
  assert.deepEqual(sink.pts, [0]);
});

Deno.test("replayAfter: a resuming player is handed the configs and only the media after it, and its catch-up starts there", async () => {
  const time = new ManualTime(1000);
  const h = stream(time);
  const config = configFrame("video");
  h.publish(config);
  const gop = Array.from({ length: 30 }, (_, i) => videoFrame(i * FRAME_TICKS, i === 0));
  for (const frame of gop) h.publish(frame);
  const { sink, playing } = play(h, time, { replayAfter: 19 * FRAME_TICKS, catchUpSpeed: 2 });
  // The frame after the one it had goes at once: the 20 frames it had neither go nor pace.
  assert.deepEqual(sink.batches[0], [config, gop[20]]);
  await time.advanceTo(1000 + 10 * FRAME_MS);
  assert.deepEqual(sink.frames, [config, ...gop.slice(20)], "each frame after it, once");
  assert.ok(handedAt(sink, gop[29]) >= 1000 + (9 * FRAME_MS) / 2 - PACING_STEP_MS, "paced");
  const live = videoFrame(30 * FRAME_TICKS);
  h.publish(live);
  await time.advanceTo(time.now + 1000);
  assert.equal(sink.frames.at(-1), live);
  h.close();
  assert.equal((await playing).end, "ended");
});
