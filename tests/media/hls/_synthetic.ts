/** Synthetic frames for the packager's rule tests: tiny payloads, real H.264 and AAC configs. */

import { buildAvcConfig } from "../../../media/codec/h264.ts";
import type { MemoryStorage } from "../../../media/hls/mod.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";

// Baseline 3.0, 320x240
const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);

/** An H.264 CONFIG frame (Baseline 3.0, 320x240). */
export const videoConfig = (track = 0): MediaFrame => ({
  track,
  kind: "video",
  codec: "h264",
  pts: 0,
  dts: 0,
  flags: FrameFlags.CONFIG,
  data: buildAvcConfig({ sps: [SPS], pps: [PPS] }),
});
/** An AAC CONFIG frame (LC, 48 kHz, stereo by default). */
export const audioConfig = (track = 1, asc = [0x11, 0x90]): MediaFrame => ({
  track,
  kind: "audio",
  codec: "aac",
  pts: 0,
  dts: 0,
  flags: FrameFlags.CONFIG,
  data: new Uint8Array(asc),
});
/** A video frame at `dts` (pts = dts): one IDR or non-IDR slice NAL unit. */
export const video = (dts: number, key: boolean, track = 0, flags = 0): MediaFrame => ({
  track,
  kind: "video",
  codec: "h264",
  pts: dts,
  dts,
  flags: (key ? FrameFlags.KEYFRAME : 0) | flags,
  data: new Uint8Array([0, 0, 0, 2, key ? 0x65 : 0x41, 0x88]),
});
/** An AAC frame at `dts`. */
export const audio = (dts: number, track = 1): MediaFrame => ({
  track,
  kind: "audio",
  codec: "aac",
  pts: dts,
  dts,
  flags: 0,
  data: new Uint8Array([0x21, 0x10, 0x04]),
});

/** `seconds` of 25 fps video with a keyframe every `gop` frames, starting at `start` (90 kHz). */
export function videoFrames(seconds: number, gop: number, start = 0, track = 0): MediaFrame[] {
  return Array.from(
    { length: seconds * 25 },
    (_, i) => video(start + i * 3600, i % gop === 0, track),
  );
}

/** A stored file as text (empty when missing). */
export const text = (storage: MemoryStorage, name: string) =>
  new TextDecoder().decode(storage.read(name) ?? new Uint8Array());
