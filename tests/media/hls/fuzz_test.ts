/**
 * Bounded, seeded random frame sequences through the packager: keyframes at random,
 * discontinuities, timestamps going back or jumping, config changes, late tracks. The
 * packager must end each run with consistent playlists.
 */

import assert from "node:assert/strict";
import { HlsPackager, type HlsPackagerOptions, MemoryStorage } from "../../../media/hls/mod.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { prng } from "../../_util/fuzz.ts";
import { parsePlaylist } from "./_hls.ts";
import { audio, audioConfig, text, video, videoConfig } from "./_synthetic.ts";

/**
 * A random but plausible stream: 25 fps video and 48 kHz AAC interleaved by time,
 * timestamps in whole milliseconds, random keyframes, and rare oddities.
 */
function randomFrames(rand: () => number, count: number): MediaFrame[] {
  const frames: MediaFrame[] = [];
  const start = Math.floor(rand() * 1e6);
  let video_ = start;
  let audio_ = start;
  const jitter = () => Math.floor(rand() * 181) - 90;
  if (rand() < 0.9) frames.push(videoConfig());
  if (rand() < 0.9) frames.push(audioConfig());
  for (let i = 0; i < count; i++) {
    const r = rand();
    if (r < 0.01) { // the clock goes back
      const back = Math.floor(rand() * 900000);
      video_ -= back;
      audio_ -= back;
    } else if (r < 0.02) { // the clock jumps
      video_ += 20 * 90000;
      audio_ += 20 * 90000;
    } else if (r < 0.03) {
      frames.push(audioConfig(1, rand() < 0.5 ? [0x11, 0x90] : [0x12, 0x10]));
    }
    const flags = rand() < 0.01 ? FrameFlags.DISCONTINUITY : 0;
    if (video_ <= audio_) {
      frames.push(video(video_, rand() < 0.05, 0, flags));
      video_ += 3600;
    } else {
      frames.push({ ...audio(audio_ + jitter()), flags });
      audio_ += 1920;
    }
  }
  return frames;
}

const variants: Omit<HlsPackagerOptions, "storage">[] = [
  { segmentType: "ts", playlistType: "vod", targetDuration: 1 },
  { segmentType: "fmp4", playlistType: "event", targetDuration: 1.5 },
  { segmentType: "ts", windowSize: 3, targetDuration: 1 },
  { segmentType: "fmp4", windowSize: 2, targetDuration: 1, partDuration: 0.3 },
];

Deno.test("fuzz: random frame sequences end in consistent playlists", async () => {
  const rand = prng(0x41c);
  for (let run = 0; run < 100; run++) {
    const options = variants[run % variants.length];
    const storage = new MemoryStorage();
    const packager = new HlsPackager({ storage, ...options });
    const frames = randomFrames(rand, 800);
    // Whatever the order, nothing stops the packager: what it cannot use is skipped.
    await ReadableStream.from(frames).pipeTo(packager);
    const body = text(storage, "stream.m3u8");
    if (body === "") {
      assert.equal(packager.stats.segments, 0, `run ${run}: segments without a playlist`);
      continue;
    }
    const playlist = parsePlaylist(body);
    assert.ok(playlist.ended, `run ${run}: finished`);
    for (const s of playlist.segments) {
      assert.ok(storage.read(s.uri), `run ${run}: ${s.uri} listed but not stored`);
      if (s.map) assert.ok(storage.read(s.map), `run ${run}: ${s.map} listed but not stored`);
      // no gap inside a segment: a jump or a step back makes a discontinuity instead
      assert.ok(s.duration >= 0 && s.duration < 10, `run ${run}: ${s.uri} lasts ${s.duration} s`);
    }
    const sequence = Number(playlist.tags.get("EXT-X-MEDIA-SEQUENCE"));
    assert.equal(sequence + playlist.segments.length, packager.stats.segments, `run ${run}`);
    if (options.windowSize) assert.ok(playlist.segments.length <= options.windowSize);
  }
});
