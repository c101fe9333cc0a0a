/**
 * Conversion between FLV tag bodies and {@linkcode MediaFrame}s. RTMP audio
 * and video messages carry the same bodies, so the RTMP ingest uses this too.
 *
 * Video: legacy AVC (codec id 7) and HEVC (codec id 12, a common extension),
 * and Enhanced RTMP/FLV `ExVideoTagHeader` with FourCC `avc1`, `hvc1`, `av01`.
 * Audio: AAC (sound format 10), MP3 (2), and Enhanced RTMP `ExAudioHeader`
 * (sound format 9) with FourCC `Opus`, `mp4a`, `.mp3`.
 *
 * @module
 */

import { type CodecId, FrameFlags, type MediaFrame } from "../../bus/frame.ts";
import { parseAudioSpecificConfig } from "../codec/aac.ts";
import { parseAvcConfig } from "../codec/h264.ts";
import { parseHevcConfig } from "../codec/h265.ts";
import { toFourByteLengths } from "../codec/nal.ts";
import { parseOpusHead } from "../codec/opus.ts";

/** FLV tag types (the low 5 bits of the first tag header byte). */
export const FlvTagType = {
  /** Audio tag. */
  AUDIO: 8,
  /** Video tag. */
  VIDEO: 9,
  /** Script data tag (`onMetaData`). */
  SCRIPT: 18,
} as const;

const FOURCC_AVC1 = 0x61766331;
const FOURCC_HVC1 = 0x68766331;
const FOURCC_AV01 = 0x61763031;
const FOURCC_OPUS = 0x4f707573;
const FOURCC_MP4A = 0x6d703461;
const FOURCC_MP3 = 0x2e6d7033;

const LEGACY_AVC = 7;
const LEGACY_HEVC = 12;
const SOUND_MP3 = 2;
const SOUND_EX_HEADER = 9;
const SOUND_AAC = 10;

/** Enhanced RTMP packet types shared by video and audio. */
const PacketType = {
  SEQUENCE_START: 0,
  CODED_FRAMES: 1,
  CODED_FRAMES_X: 3,
  MULTITRACK: 6,
  MOD_EX: 7,
} as const;

/** Track numbers {@linkcode FlvTagDecoder} gives its frames. */
export interface FlvTagDecoderOptions {
  /** Track number of video frames (default 0). */
  videoTrack?: number;
  /** Track number of audio frames (default 1). */
  audioTrack?: number;
}

/**
 * Turns FLV tag bodies into frames. Stateful: it remembers the NAL length
 * size from the last video sequence header so that coded frames always come
 * out with 4-byte lengths. Frame payloads are views into the body (copied
 * only when lengths must be widened).
 *
 * Bodies it does not turn into frames (unknown codecs, end-of-sequence,
 * command frames, enhanced metadata, empty AAC sequence headers) give
 * `undefined`. An empty AAC sequence header is what `ffmpeg -c copy -f flv`
 * writes first when the input's AAC is ADTS (MPEG-TS, `.aac`); the real
 * AudioSpecificConfig follows in a second sequence header before the first
 * AAC frame. A stream with only the empty one gives AAC frames without a
 * `CONFIG` frame, which consumers that need one report.
 *
 * @example
 * ```ts
 * import { FlvTagDecoder } from "./tag.ts";
 *
 * const decoder = new FlvTagDecoder();
 * // AAC sequence header: 0xAF 0x00 + AudioSpecificConfig (LC, 44.1 kHz, stereo)
 * const config = decoder.decodeAudio(new Uint8Array([0xaf, 0x00, 0x12, 0x10]), 0);
 * config?.codec; // "aac"
 * ```
 */
export class FlvTagDecoder {
  #videoTrack: number;
  #audioTrack: number;
  #lengthSize = 4;

  /** Makes a decoder with the given track numbers. */
  constructor(options: FlvTagDecoderOptions = {}) {
    this.#videoTrack = options.videoTrack ?? 0;
    this.#audioTrack = options.audioTrack ?? 1;
  }

  /**
   * Decodes a video tag body whose (unwrapped) timestamp is `timestampMs`.
   *
   * @throws {RangeError} on a truncated body, a malformed configuration record,
   * NAL lengths overrunning the body, or an unsupported Enhanced RTMP feature.
   */
  decodeVideo(body: Uint8Array, timestampMs: number): MediaFrame | undefined {
    if (body.length < 1) throw new RangeError("FLV video tag is empty");
    const b0 = body[0];
    if (b0 & 0x80) return this.#decodeExVideo(body, timestampMs);
    const frameType = b0 >> 4;
    const codecId = b0 & 0x0f;
    if (frameType === 5 || (codecId !== LEGACY_AVC && codecId !== LEGACY_HEVC)) return undefined;
    if (body.length < 5) throw new RangeError(`FLV AVC video tag truncated (${body.length} bytes)`);
    const codec = codecId === LEGACY_AVC ? "h264" : "h265";
    const packetType = body[1];
    if (packetType === 0) return this.#config(codec, body.subarray(5), timestampMs);
    if (packetType !== 1) return undefined;
    return this.#coded(codec, frameType, body.subarray(5), timestampMs, si24(body, 2));
  }

  #decodeExVideo(body: Uint8Array, timestampMs: number): MediaFrame | undefined {
    const frameType = (body[0] >> 4) & 7;
    const packetType = body[0] & 0x0f;
    if (frameType === 5) return undefined; // command frame: no payload
    const codec = exCodec(body, packetType, "video");
    if (codec === undefined) return undefined;
    if (packetType === PacketType.SEQUENCE_START) {
      return this.#config(codec, body.subarray(5), timestampMs);
    }
    if (packetType === PacketType.CODED_FRAMES && codec !== "av1") {
      if (body.length < 8) throw new RangeError(`Enhanced FLV coded frame truncated`);
      return this.#coded(codec, frameType, body.subarray(8), timestampMs, si24(body, 5));
    }
    if (packetType === PacketType.CODED_FRAMES || packetType === PacketType.CODED_FRAMES_X) {
      return this.#coded(codec, frameType, body.subarray(5), timestampMs, 0);
    }
    return undefined; // SequenceEnd, Metadata, MPEG2TSSequenceStart
  }

  #config(codec: CodecId, record: Uint8Array, timestampMs: number): MediaFrame {
    if (codec === "h264") this.#lengthSize = parseAvcConfig(record).lengthSize;
    else if (codec === "h265") this.#lengthSize = parseHevcConfig(record).lengthSize;
    else if (record.length === 0) throw new RangeError("empty AV1 sequence header");
    const t = timestampMs * 90;
    return {
      track: this.#videoTrack,
      kind: "video",
      codec,
      pts: t,
      dts: t,
      flags: FrameFlags.CONFIG,
      data: record,
    };
  }

  #coded(
    codec: CodecId,
    frameType: number,
    data: Uint8Array,
    timestampMs: number,
    cts: number,
  ): MediaFrame | undefined {
    if (data.length === 0) return undefined;
    if (codec !== "av1") data = toFourByteLengths(data, this.#lengthSize);
    const dts = timestampMs * 90;
    return {
      track: this.#videoTrack,
      kind: "video",
      codec,
      pts: dts + cts * 90,
      dts,
      flags: frameType === 1 || frameType === 4 ? FrameFlags.KEYFRAME : FrameFlags.NONE,
      data,
    };
  }

  /**
   * Decodes an audio tag body whose (unwrapped) timestamp is `timestampMs`.
   *
   * @throws {RangeError} on a truncated body, a malformed AudioSpecificConfig
   * or OpusHead, or an unsupported Enhanced RTMP feature.
   */
  decodeAudio(body: Uint8Array, timestampMs: number): MediaFrame | undefined {
    if (body.length < 1) throw new RangeError("FLV audio tag is empty");
    const format = body[0] >> 4;
    if (format === SOUND_AAC) {
      if (body.length < 2) throw new RangeError("FLV AAC audio tag truncated");
      if (body[1] === 0) return this.#audio("aac", body.subarray(2), timestampMs, true);
      return body[1] === 1 ? this.#audio("aac", body.subarray(2), timestampMs, false) : undefined;
    }
    if (format === SOUND_MP3) return this.#audio("mp3", body.subarray(1), timestampMs, false);
    if (format !== SOUND_EX_HEADER) return undefined;
    const packetType = body[0] & 0x0f;
    const codec = exCodec(body, packetType, "audio");
    if (codec === undefined) return undefined;
    if (packetType === PacketType.SEQUENCE_START) {
      return this.#audio(codec, body.subarray(5), timestampMs, true);
    }
    if (packetType === PacketType.CODED_FRAMES) {
      return this.#audio(codec, body.subarray(5), timestampMs, false);
    }
    return undefined; // SequenceEnd, MultichannelConfig
  }

  #audio(
    codec: CodecId,
    data: Uint8Array,
    timestampMs: number,
    config: boolean,
  ): MediaFrame | undefined {
    if (config) {
      // An empty AAC sequence header (ffmpeg's `-c copy` from ADTS input writes one before the
      // real one, which it only learns from the first frame) configures nothing: skip it.
      if (codec === "aac" && data.length === 0) return undefined;
      if (codec === "aac") parseAudioSpecificConfig(data);
      else if (codec === "opus") parseOpusHead(data);
      else return undefined; // MP3 has no configuration record
    } else if (data.length === 0) {
      return undefined;
    }
    const t = timestampMs * 90;
    return {
      track: this.#audioTrack,
      kind: "audio",
      codec,
      pts: t,
      dts: t,
      flags: config ? FrameFlags.CONFIG : FrameFlags.KEYFRAME,
      data,
    };
  }
}

/** The codecs of the Enhanced RTMP FourCCs this decoder reads, per track kind. */
const EX_CODECS: Record<"video" | "audio", ReadonlyMap<number, CodecId>> = {
  video: new Map([[FOURCC_AVC1, "h264"], [FOURCC_HVC1, "h265"], [FOURCC_AV01, "av1"]]),
  audio: new Map([[FOURCC_OPUS, "opus"], [FOURCC_MP4A, "aac"], [FOURCC_MP3, "mp3"]]),
};

/**
 * Checks the Enhanced RTMP header of `body` (packet type `packetType`) and
 * returns the codec its FourCC names, or `undefined` for one we do not read.
 */
function exCodec(
  body: Uint8Array,
  packetType: number,
  kind: "video" | "audio",
): CodecId | undefined {
  if (packetType === PacketType.MULTITRACK || packetType === PacketType.MOD_EX) {
    throw new RangeError(`Enhanced FLV ${kind} packet type ${packetType} is not supported`);
  }
  if (body.length < 5) {
    throw new RangeError(`Enhanced FLV ${kind} tag truncated (${body.length} bytes)`);
  }
  return EX_CODECS[kind].get(u32(body, 1));
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function si24(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8)) >> 8;
}

/** The composition time offset of `frame` in whole milliseconds. */
function compositionMs(frame: MediaFrame): number {
  const cts = Math.round(frame.pts / 90) - Math.round(frame.dts / 90);
  if (cts < -0x800000 || cts > 0x7fffff) {
    throw new RangeError(`FLV composition time ${cts} ms does not fit in 24 bits`);
  }
  return cts;
}

/**
 * How a video frame is laid out in a tag body, packed to avoid an allocation
 * per frame: header bytes × 16 + packet type.
 */
function videoLayout(frame: MediaFrame): number {
  const config = (frame.flags & FrameFlags.CONFIG) !== 0;
  switch (frame.codec) {
    case "h264":
      return 5 * 16 + (config ? 0 : 1);
    case "h265":
      if (config) return 5 * 16 + PacketType.SEQUENCE_START;
      return compositionMs(frame) === 0
        ? 5 * 16 + PacketType.CODED_FRAMES_X
        : 8 * 16 + PacketType.CODED_FRAMES;
    case "av1":
      return 5 * 16 + (config ? PacketType.SEQUENCE_START : PacketType.CODED_FRAMES);
    default:
      throw new RangeError(`FLV cannot carry video codec ${frame.codec}`);
  }
}

/**
 * The size of the FLV video tag body for `frame`.
 *
 * @throws {RangeError} when FLV cannot carry the codec.
 * @example
 * ```ts
 * import { FrameFlags } from "../../bus/frame.ts";
 * import { videoTagBodySize } from "./tag.ts";
 *
 * videoTagBodySize({
 *   track: 0, kind: "video", codec: "h264", pts: 0, dts: 0,
 *   flags: FrameFlags.KEYFRAME, data: new Uint8Array(10),
 * }); // 15
 * ```
 */
export function videoTagBodySize(frame: MediaFrame): number {
  return (videoLayout(frame) >> 4) + frame.data.length;
}

/**
 * Writes the FLV video tag body for `frame` into `out` at `offset` and
 * returns its size: legacy AVC for H.264, Enhanced RTMP (`hvc1`, `av01`) for
 * H.265 and AV1. A `CONFIG` frame becomes a sequence header / SequenceStart.
 *
 * @throws {RangeError} when FLV cannot carry the codec, the composition time
 * does not fit, or `out` is too small.
 * @example
 * ```ts
 * import { FrameFlags } from "../../bus/frame.ts";
 * import { videoTagBodySize, writeVideoTagBody } from "./tag.ts";
 *
 * const frame = {
 *   track: 0, kind: "video", codec: "h264", pts: 3600, dts: 0,
 *   flags: FrameFlags.KEYFRAME, data: new Uint8Array([0, 0, 0, 1, 0x65]),
 * } as const;
 * const out = new Uint8Array(videoTagBodySize(frame));
 * writeVideoTagBody(frame, out, 0); // out: [0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65]
 * ```
 */
export function writeVideoTagBody(frame: MediaFrame, out: Uint8Array, offset: number): number {
  const layout = videoLayout(frame);
  const header = layout >> 4;
  const packetType = layout & 0x0f;
  const size = header + frame.data.length;
  if (offset < 0 || offset + size > out.length) {
    throw new RangeError(`FLV video tag body of ${size} bytes does not fit at offset ${offset}`);
  }
  const config = (frame.flags & FrameFlags.CONFIG) !== 0;
  const frameType = config || (frame.flags & FrameFlags.KEYFRAME) !== 0 ? 1 : 2;
  if (frame.codec === "h264") {
    const cts = config ? 0 : compositionMs(frame);
    out[offset] = (frameType << 4) | LEGACY_AVC;
    out[offset + 1] = packetType;
    writeSi24(out, offset + 2, cts);
  } else {
    out[offset] = 0x80 | (frameType << 4) | packetType;
    writeU32(out, offset + 1, frame.codec === "h265" ? FOURCC_HVC1 : FOURCC_AV01);
    if (header === 8) writeSi24(out, offset + 5, compositionMs(frame));
  }
  out.set(frame.data, offset + header);
  return size;
}

/**
 * Encodes the FLV video tag body for `frame` into a new array (see
 * {@linkcode writeVideoTagBody}). The tag timestamp is the caller's
 * `Math.round(frame.dts / 90)`.
 *
 * @example
 * ```ts
 * import { FrameFlags } from "../../bus/frame.ts";
 * import { encodeVideoTag } from "./tag.ts";
 *
 * encodeVideoTag({
 *   track: 0, kind: "video", codec: "h264", pts: 0, dts: 0,
 *   flags: FrameFlags.KEYFRAME, data: new Uint8Array([0, 0, 0, 1, 0x65]),
 * }); // Uint8Array [0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]
 * ```
 */
export function encodeVideoTag(frame: MediaFrame): Uint8Array {
  const out = new Uint8Array(videoTagBodySize(frame));
  writeVideoTagBody(frame, out, 0);
  return out;
}

/** Sample rate and channels for the legacy sound header of formats other than AAC. */
export interface FlvAudioParams {
  /** Sample rate in Hz (selects the 5.5/11/22/44 kHz code). */
  sampleRate?: number;
  /** Channel count (1 = mono, otherwise stereo). */
  channels?: number;
}

function audioHeaderSize(frame: MediaFrame): number {
  switch (frame.codec) {
    case "aac":
      return 2;
    case "mp3":
      if (frame.flags & FrameFlags.CONFIG) throw new RangeError("MP3 has no FLV sequence header");
      return 1;
    case "opus":
      return 5;
    default:
      throw new RangeError(`FLV cannot carry audio codec ${frame.codec}`);
  }
}

/**
 * The size of the FLV audio tag body for `frame`.
 *
 * @throws {RangeError} when FLV cannot carry the codec.
 * @example
 * ```ts
 * import { FrameFlags } from "../../bus/frame.ts";
 * import { audioTagBodySize } from "./tag.ts";
 *
 * audioTagBodySize({
 *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
 *   flags: FrameFlags.KEYFRAME, data: new Uint8Array(10),
 * }); // 12
 * ```
 */
export function audioTagBodySize(frame: MediaFrame): number {
  return audioHeaderSize(frame) + frame.data.length;
}

/**
 * Writes the FLV audio tag body for `frame` into `out` at `offset` and
 * returns its size: AAC (sound format 10, header `0xAF`), MP3 (format 2,
 * rate and channels from `params`), Opus as Enhanced RTMP `ExAudioHeader`.
 *
 * @throws {RangeError} when FLV cannot carry the codec or `out` is too small.
 * @example
 * ```ts
 * import { FrameFlags } from "../../bus/frame.ts";
 * import { writeAudioTagBody } from "./tag.ts";
 *
 * const out = new Uint8Array(4);
 * writeAudioTagBody({
 *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
 *   flags: FrameFlags.CONFIG, data: new Uint8Array([0x12, 0x10]),
 * }, out, 0); // out: [0xaf, 0, 0x12, 0x10]
 * ```
 */
export function writeAudioTagBody(
  frame: MediaFrame,
  out: Uint8Array,
  offset: number,
  params: FlvAudioParams = {},
): number {
  const header = audioHeaderSize(frame);
  const size = header + frame.data.length;
  if (offset < 0 || offset + size > out.length) {
    throw new RangeError(`FLV audio tag body of ${size} bytes does not fit at offset ${offset}`);
  }
  const config = (frame.flags & FrameFlags.CONFIG) !== 0;
  if (frame.codec === "aac") {
    out[offset] = 0xaf; // AAC, 44 kHz, 16-bit, stereo: fixed for AAC
    out[offset + 1] = config ? 0 : 1;
  } else if (frame.codec === "mp3") {
    const rate = params.sampleRate ?? 44100;
    const code = rate >= 44100 ? 3 : rate >= 22050 ? 2 : rate >= 11025 ? 1 : 0;
    out[offset] = (SOUND_MP3 << 4) | (code << 2) | 2 | (params.channels === 1 ? 0 : 1);
  } else {
    out[offset] = (SOUND_EX_HEADER << 4) |
      (config ? PacketType.SEQUENCE_START : PacketType.CODED_FRAMES);
    writeU32(out, offset + 1, FOURCC_OPUS);
  }
  out.set(frame.data, offset + header);
  return size;
}

/**
 * Encodes the FLV audio tag body for `frame` into a new array (see
 * {@linkcode writeAudioTagBody}).
 *
 * @example
 * ```ts
 * import { FrameFlags } from "../../bus/frame.ts";
 * import { encodeAudioTag } from "./tag.ts";
 *
 * encodeAudioTag({
 *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
 *   flags: FrameFlags.KEYFRAME, data: new Uint8Array([0x21]),
 * }); // Uint8Array [0xaf, 1, 0x21]
 * ```
 */
export function encodeAudioTag(frame: MediaFrame, params?: FlvAudioParams): Uint8Array {
  const out = new Uint8Array(audioTagBodySize(frame));
  writeAudioTagBody(frame, out, 0, params);
  return out;
}

function writeU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

function writeSi24(out: Uint8Array, at: number, v: number): void {
  out[at] = (v >> 16) & 0xff;
  out[at + 1] = (v >> 8) & 0xff;
  out[at + 2] = v & 0xff;
}
