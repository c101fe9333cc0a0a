/** Helpers shared by the FLV tests. */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../bus/frame.ts";
import { type FlvDecoderOptions, FlvReader } from "../../../media/flv/mod.ts";
import { FlvWriter, type FlvWriterOptions } from "../../../media/flv/writer.ts";
import type { ProbeStream } from "../../_util/ffmpeg.ts";
import { sine, testsrc, to90k, x264 } from "../../_util/ffmpeg.ts";
import { concat } from "../../_util/bytes.ts";
import { readAll } from "../../_util/frames.ts";
import { prng } from "../../_util/fuzz.ts";

/** Splits `bytes` into chunks of 1..`max` bytes chosen by a seeded PRNG (one chunk when max is 0). */
export function chunks(bytes: Uint8Array, max = 0, seed = 1): Uint8Array[] {
  if (max <= 0) return [bytes];
  const rand = prng(seed);
  const out: Uint8Array[] = [];
  for (let pos = 0; pos < bytes.length;) {
    const n = 1 + Math.floor(rand() * max);
    out.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}

/** Runs `bytes` through an {@linkcode FlvReader} (fails the test if it does not end within 10 s). */
export function readFlv(
  bytes: Uint8Array | Uint8Array[],
  options?: FlvDecoderOptions,
): Promise<MediaFrame[]> {
  const input = bytes instanceof Uint8Array ? [bytes] : bytes;
  return readAll(ReadableStream.from(input).pipeThrough(new FlvReader(options)), 10_000);
}

/** Runs `frames` through an {@linkcode FlvWriter} and joins the output. */
export async function writeFlv(
  frames: MediaFrame[],
  options?: FlvWriterOptions,
): Promise<Uint8Array> {
  return concat(
    await readAll(ReadableStream.from(frames).pipeThrough(new FlvWriter(options)), 10_000),
  );
}

/** Media (non-CONFIG) frames of one kind. */
export function mediaOf(frames: MediaFrame[], kind: "video" | "audio"): MediaFrame[] {
  return frames.filter((f) => f.kind === kind && !(f.flags & FrameFlags.CONFIG));
}

/** Asserts that `frames` have, per stream kind, the packets ffprobe reported: count, pts, dts, keyframe. */
export function assertMatchesProbe(frames: MediaFrame[], streams: ProbeStream[]): void {
  assert.ok(streams.length > 0, "ffprobe found no streams");
  for (const s of streams) {
    const kind = s.codecType as "video" | "audio";
    const ours = mediaOf(frames, kind);
    const probe = (p: ProbeStream["packets"][number]) => ({
      pts: to90k(p.pts!, s.timeBase),
      dts: to90k(p.dts!, s.timeBase),
      key: p.keyframe,
    });
    assert.equal(ours.length, s.packets.length, `${kind} packet count`);
    assert.deepEqual(
      ours.map((f) => ({ pts: f.pts, dts: f.dts, key: (f.flags & FrameFlags.KEYFRAME) !== 0 })),
      s.packets.map(probe),
      `${kind} pts/dts/keyframe`,
    );
  }
  const kinds = new Set(streams.map((s) => s.codecType));
  for (const f of frames) {
    assert.ok(kinds.has(f.kind), `frame of a ${f.kind} track ffprobe did not see`);
  }
}

/** FLV fixtures made by ffmpeg; names say what they hold. */
export const flvFixtures = {
  "h264-aac-44k.flv": [
    ...testsrc(),
    ...sine({ sampleRate: 44100 }),
    ...x264(),
    "-c:a",
    "aac",
    "-f",
    "flv",
  ],
  "h264-aac-48k.flv": [
    ...testsrc(),
    ...sine({ sampleRate: 48000 }),
    ...x264(),
    "-c:a",
    "aac",
    "-f",
    "flv",
  ],
  "audio-only.flv": [...sine({ sampleRate: 48000 }), "-c:a", "aac", "-f", "flv"],
  "video-only.flv": [...testsrc(), ...x264(), "-f", "flv"],
};
