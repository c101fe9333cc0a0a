/**
 * Helpers for the MPEG-TS tests: ffmpeg fixtures, running the decoder and
 * encoder over whole inputs, walking TS packets, and timelines to compare
 * with ffprobe.
 */

import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import {
  TS_PACKET_SIZE,
  TsDecoder,
  type TsDecoderOptions,
  type TsDecoderStats,
  TsEncoder,
  type TsEncoderOptions,
} from "../../../media/ts/mod.ts";
import assert from "node:assert/strict";
import {
  decodeCheck,
  fixtureDir,
  makeFixture,
  type ProbeStream,
  sine,
  testsrc,
  to90k,
} from "../../_util/ffmpeg.ts";
import { concat } from "../../_util/bytes.ts";

/** Re-exported for the fMP4 and HLS tests that import it from here; new code: tests/_util/bytes.ts. */
export { concat } from "../../_util/bytes.ts";

/** The ffmpeg-made transport streams the tests share (a few seconds each). */
export const fixtures = {
  /** H.264 with B-frames + AAC 44.1 kHz. */
  h264Aac44: () =>
    makeFixture("ts-h264-aac44.ts", [
      ...testsrc({ rate: 25, duration: 2 }),
      ...sine({ sampleRate: 44100, duration: 2 }),
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "25"],
      ...["-c:a", "aac", "-f", "mpegts"],
    ]),
  /** H.265 + AAC 48 kHz. */
  h265Aac48: () =>
    makeFixture("ts-h265-aac48.ts", [
      ...testsrc({ rate: 25, duration: 2 }),
      ...sine({ sampleRate: 48000, duration: 2 }),
      ...["-c:v", "libx265", "-pix_fmt", "yuv420p", "-x265-params", "log-level=error"],
      ...["-g", "25", "-c:a", "aac", "-f", "mpegts"],
    ]),
  /** AAC only, 44.1 kHz. */
  aac44: () =>
    makeFixture("ts-aac44.ts", [
      ...sine({ sampleRate: 44100, duration: 2 }),
      ...["-c:a", "aac", "-f", "mpegts"],
    ]),
  /** H.264 only (with B-frames). */
  h264: () =>
    makeFixture("ts-h264.ts", [
      ...testsrc({ rate: 30, duration: 2 }),
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30", "-f", "mpegts"],
    ]),
  /** Opus stereo, 48 kHz. */
  opus: () =>
    makeFixture("ts-opus.ts", [
      ...sine({ sampleRate: 48000, duration: 2 }),
      ...["-ac", "2", "-c:a", "libopus", "-f", "mpegts"],
    ]),
  /** A tiny H.264 + AAC stream (64x48, 0.4 s, about 40 packets) for exhaustive fuzzing. */
  small: () =>
    makeFixture("ts-small.ts", [
      ...testsrc({ size: "64x48", rate: 5, duration: 0.4 }),
      ...sine({ duration: 0.4 }),
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts"],
    ]),
  /** FLV: H.264 with B-frames + AAC 44.1 kHz. */
  flvH264Aac44: () =>
    makeFixture("ts-h264-aac44.flv", [
      ...testsrc({ rate: 25, duration: 2 }),
      ...sine({ sampleRate: 44100, duration: 2 }),
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "25", "-c:a", "aac"],
    ]),
  /** FLV: H.264 (30 fps, B-frames) + AAC 48 kHz. */
  flvH264Aac48: () =>
    makeFixture("ts-h264-aac48.flv", [
      ...testsrc({ rate: 30, duration: 2 }),
      ...sine({ sampleRate: 48000, duration: 2 }),
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac"],
    ]),
  /** FLV: AAC 48 kHz only. */
  flvAac48: () =>
    makeFixture("ts-aac48.flv", [...sine({ sampleRate: 48000, duration: 2 }), "-c:a", "aac"]),
  /** FLV: H.264 only. */
  flvH264: () =>
    makeFixture("ts-h264.flv", [
      ...testsrc({ rate: 25, duration: 2 }),
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "50"],
    ]),
  /** H.264 + AAC whose 33-bit timestamps wrap about 0.7 s in. */
  wrap: () =>
    makeFixture("ts-wrap.ts", [
      ...testsrc({ rate: 25, duration: 3 }),
      ...sine({ sampleRate: 48000, duration: 3 }),
      ...["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "25", "-c:a", "aac"],
      ...["-muxdelay", "0", "-muxpreload", "0", "-output_ts_offset", "95443", "-f", "mpegts"],
    ]),
};

/**
 * Runs a {@linkcode TsDecoder} over `bytes`, cut into chunks whose sizes come
 * from `chunkSize` (the whole input at once when omitted).
 */
export function demux(
  bytes: Uint8Array,
  { chunkSize, options }: { chunkSize?: () => number; options?: TsDecoderOptions } = {},
): { frames: MediaFrame[]; stats: TsDecoderStats } {
  const dec = new TsDecoder(options);
  const frames: MediaFrame[] = [];
  const push = (f: MediaFrame) => frames.push(f);
  if (!chunkSize) {
    dec.decode(bytes, push);
  } else {
    for (let pos = 0; pos < bytes.length;) {
      const n = Math.max(1, chunkSize());
      dec.decode(bytes.subarray(pos, pos + n), push);
      pos += n;
    }
  }
  dec.flush(push);
  return { frames, stats: { ...dec.stats } };
}

/** Runs a {@linkcode TsEncoder} over `frames`; returns the chunks it wrote. */
export function muxChunks(frames: readonly MediaFrame[], options?: TsEncoderOptions): Uint8Array[] {
  const enc = new TsEncoder(options);
  const chunks: Uint8Array[] = [];
  for (const f of frames) {
    const out = enc.encode(f);
    if (out) chunks.push(out);
  }
  const out = enc.flush();
  if (out) chunks.push(out);
  return chunks;
}

/**
 * Muxes `frames` with a {@linkcode TsEncoder} into `<name>.ts` in the fixture dir and asserts
 * that `ffmpeg -v warning -xerror` decodes it without a word; returns the file's path.
 */
export async function assertTsDecodes(
  frames: readonly MediaFrame[],
  name: string,
): Promise<string> {
  const path = `${await fixtureDir()}/${name}.ts`;
  await Deno.writeFile(path, concat(muxChunks(frames)));
  const decoded = await decodeCheck(path);
  assert.equal(decoded.stderr, "", `${name}: ffmpeg warned`);
  assert.equal(decoded.code, 0);
  return path;
}

/** One transport packet, decoded for assertions. */
export interface PacketInfo {
  /** Index of the packet in the stream. */
  index: number;
  pid: number;
  unitStart: boolean;
  cc: number;
  hasPayload: boolean;
  /** The PCR base (90 kHz) when the packet carries one. */
  pcr?: number;
  randomAccess: boolean;
  discontinuity: boolean;
  /** Offset of the payload within the packet. */
  payloadOffset: number;
}

/** Walks the 188-byte packets of `bytes` (which must be aligned and complete). */
export function packets(bytes: Uint8Array): PacketInfo[] {
  if (bytes.length % TS_PACKET_SIZE !== 0) throw new Error(`${bytes.length} is not 188·n bytes`);
  const out: PacketInfo[] = [];
  for (let off = 0, index = 0; off < bytes.length; off += TS_PACKET_SIZE, index++) {
    const p = bytes.subarray(off, off + TS_PACKET_SIZE);
    if (p[0] !== 0x47) throw new Error(`packet ${index} has no sync byte`);
    const control = (p[3] >> 4) & 3;
    let payloadOffset = 4;
    let pcr: number | undefined;
    let flags = 0;
    if (control & 2) {
      const len = p[4];
      if (len > 0) flags = p[5];
      if (flags & 0x10) {
        pcr = p[6] * 2 ** 25 + p[7] * 2 ** 17 + p[8] * 2 ** 9 + p[9] * 2 + (p[10] >> 7);
      }
      payloadOffset = 5 + len;
    }
    out.push({
      index,
      pid: ((p[1] & 0x1f) << 8) | p[2],
      unitStart: (p[1] & 0x40) !== 0,
      cc: p[3] & 15,
      hasPayload: (control & 1) !== 0,
      pcr,
      randomAccess: (flags & 0x40) !== 0,
      discontinuity: (flags & 0x80) !== 0,
      payloadOffset,
    });
  }
  return out;
}

/** One access unit's timing, comparable between our frames and ffprobe. */
export interface Timing {
  pts: number;
  dts: number;
  key: boolean;
}

/** The media frames (not CONFIG) of `track` as timings. */
export function frameTimings(frames: readonly MediaFrame[], track: number): Timing[] {
  return frames
    .filter((f) => f.track === track && !(f.flags & FrameFlags.CONFIG))
    .map((f) => ({ pts: f.pts, dts: f.dts, key: (f.flags & FrameFlags.KEYFRAME) !== 0 }));
}

/** ffprobe's packets of `stream` as timings on the 90 kHz clock. */
export function probeTimings(stream: ProbeStream): Timing[] {
  return stream.packets.map((p) => ({
    pts: to90k(p.pts ?? Number.NaN, stream.timeBase),
    dts: to90k(p.dts ?? p.pts ?? Number.NaN, stream.timeBase),
    key: p.keyframe,
  }));
}

/**
 * The largest |difference| of pts and dts between two timing lists of equal
 * length; keyframe flags must match when `keys` is set.
 */
export function maxTimingError(a: readonly Timing[], b: readonly Timing[], keys: boolean): number {
  if (a.length !== b.length) throw new Error(`${a.length} timings vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    if (keys && a[i].key !== b[i].key) {
      throw new Error(`keyframe flag differs at ${i}: ${a[i].key} vs ${b[i].key}`);
    }
    max = Math.max(max, Math.abs(a[i].pts - b[i].pts), Math.abs(a[i].dts - b[i].dts));
  }
  if (Number.isNaN(max)) throw new Error("timing is NaN");
  return max;
}

/**
 * `ts` as a receiver joining it mid-GOP gets it: its PAT and PMT (the first two packets),
 * then everything from the second start of a video PES (PID 0x100, as ffmpeg writes it) on,
 * so the first video frames come without SPS/PPS.
 */
export function joinedMidGop(ts: Uint8Array): Uint8Array<ArrayBuffer> {
  const pid = (at: number) => ((ts[at + 1] & 0x1f) << 8) | ts[at + 2];
  const starts = (at: number) => (ts[at + 1] & 0x40) !== 0;
  let videoStarts = 0;
  for (let at = 0; at < ts.length; at += TS_PACKET_SIZE) {
    if (pid(at) !== 0x100 || !starts(at) || ++videoStarts < 2) continue;
    return new Uint8Array([...ts.subarray(0, 2 * TS_PACKET_SIZE), ...ts.subarray(at)]);
  }
  throw new Error("no second video PES");
}
