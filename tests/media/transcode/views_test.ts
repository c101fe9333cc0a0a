/**
 * TranscodedViews over a real H.264 + AAC stream: a late viewer's view starts on the
 * source's GOP, video frames are the source's own objects, the audio is Opus on the
 * video's timeline, viewers share one view, and views end with the source or their last
 * viewer.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, StreamHandle } from "../../../mod.ts";
import { FlvDecoder } from "../../../media/flv/mod.ts";
import { TranscodedViews } from "../../../media/transcode/mod.ts";
import { makeFixture, sine, testsrc, x264 } from "../../_util/ffmpeg.ts";
import { LogLines } from "../../_util/log.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

async function avFrames(): Promise<MediaFrame[]> {
  const file = await makeFixture("av-aac-3s.flv", [
    ...testsrc({ duration: 3 }),
    ...sine({ duration: 3 }),
    ...x264({ gop: 25 }),
    ..."-c:a aac -ac 2 -f flv".split(" "),
  ]);
  const frames: MediaFrame[] = [];
  const decoder = new FlvDecoder();
  decoder.decode(await Deno.readFile(file), (f) => frames.push(f));
  decoder.flush();
  return frames;
}

async function collect(handle: StreamHandle): Promise<MediaFrame[]> {
  const frames: MediaFrame[] = [];
  for await (const frame of handle.subscribe({ replay: true })) frames.push(frame);
  return frames;
}

test.ffmpeg("transcoded views: a late viewer of an AAC stream gets its video and Opus audio", async () => {
  const source = new StreamHandle({ app: "live", stream: "av", capacity: 4096, gopCapacity: 1024 });
  const frames = await avFrames();
  const log = new LogLines();
  const views = new TranscodedViews({ logger: log, lingerMs: 0 });
  assert.equal(views.needed(source, "opus"), false, "no audio config yet");
  const half = Math.floor(frames.length / 2);
  for (const frame of frames.slice(0, half)) source.publish(frame);
  assert.equal(views.needed(source, "opus"), true);
  assert.equal(views.needed(source, "aac"), false);
  const lease = views.acquire(source, "opus");
  const second = views.acquire(source, "opus");
  assert.equal(second.handle, lease.handle, "viewers share one view");
  assert.equal(views.size, 1);
  const got = collect(lease.handle);
  for (const frame of frames.slice(half)) source.publish(frame);
  source.close();
  const view = await got;
  assert.ok(lease.handle.closed, "the view ended with the source");
  assert.equal(views.size, 0);

  const video = view.filter((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG));
  const audio = view.filter((f) => f.kind === "audio" && !(f.flags & FrameFlags.CONFIG));
  assert.ok(video[0].flags & FrameFlags.KEYFRAME, "starts on a keyframe");
  const start = frames.indexOf(video[0]);
  assert.ok(start >= 0 && start < half, "the first video frame is the source's own, from its GOP");
  const sourceVideo = frames.filter((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG));
  assert.deepEqual(
    video,
    sourceVideo.slice(sourceVideo.indexOf(video[0])),
    "every video frame after, by reference",
  );
  assert.ok(
    view.some((f) => f.kind === "audio" && f.flags & FrameFlags.CONFIG && f.codec === "opus"),
  );
  assert.ok(
    audio.length > 0 && audio.every((f) => f.codec === "opus"),
    `audio:\n${log.lines.join("\n")}`,
  );
  // A/V: the audio covers the video's time from the join to the end, within a frame or two
  const offset = audio[0].pts - video[0].pts;
  const sourceAudio = frames.filter((f) => f.kind === "audio" && !(f.flags & FrameFlags.CONFIG));
  // the first audio frame the view was given: the first published after its keyframe
  const joinedAudio = frames.slice(start).find((f) =>
    f.kind === "audio" && !(f.flags & FrameFlags.CONFIG)
  )!;
  assert.ok(
    Math.abs(audio[0].pts - joinedAudio.pts) <= 1920,
    `audio starts ${offset} ticks off the video`,
  );
  assert.ok(
    Math.abs(audio.at(-1)!.pts - sourceAudio.at(-1)!.pts) <= 2 * 1920,
    "audio runs to the end",
  );
});

test.ffmpeg("transcoded views: the last viewer's release ends the view", async () => {
  const source = new StreamHandle({
    app: "live",
    stream: "av2",
    capacity: 4096,
    gopCapacity: 1024,
  });
  for (const frame of (await avFrames()).slice(0, 60)) source.publish(frame);
  const views = new TranscodedViews({ lingerMs: 0 });
  const a = views.acquire(source, "opus");
  const b = views.acquire(source, "opus");
  a.release();
  a.release(); // twice counts once
  assert.equal(a.handle.closed, false, "one viewer still holds it");
  b.release();
  const ended = collect(a.handle);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(a.handle.closed, "ended after the last release");
  assert.equal(views.size, 0);
  await ended;
  const c = views.acquire(source, "opus");
  assert.notEqual(c.handle, a.handle, "a new viewer gets a new view");
  views.close();
  assert.ok(c.handle.closed);
  source.close();
});
