/**
 * The unit of media that flows through the bus: one access unit of one track.
 *
 * @module
 */

/** Bit flags carried by every {@linkcode MediaFrame}. */
export const FrameFlags = {
  /** No flag set. */
  NONE: 0,
  /** A random access point: decoding can start here. */
  KEYFRAME: 1,
  /**
   * The payload is a decoder configuration (AVCDecoderConfigurationRecord,
   * HEVCDecoderConfigurationRecord, AudioSpecificConfig or OpusHead), not media.
   */
  CONFIG: 2,
  /** Timestamps or data do not continue from the previous frame of this track. */
  DISCONTINUITY: 4,
} as const;

/** Which kind of track a frame belongs to. */
export type TrackKind = "video" | "audio";

/**
 * The codecs a {@linkcode MediaFrame} can carry. The set is closed: ingest drops
 * frames of any other codec (FLV/RTMP tags, TS stream types and RTP payload
 * types it does not know), and each muxer documents which of these it writes.
 * Carrying a new codec means adding it here and teaching the packagers its
 * payload and config forms.
 */
export type CodecId = "h264" | "h265" | "av1" | "aac" | "opus" | "mp3";

/** The clock rate of every `pts` and `dts` in the kernel, in ticks per second. */
export const CLOCK_RATE = 90_000;

/**
 * One access unit of one track, shared by reference with every subscriber.
 *
 * Timestamps are integers on the 90 kHz clock ({@linkcode CLOCK_RATE}),
 * unwrapped: ingest removes 32-bit and 33-bit wraps, egress adds them back.
 * Video payloads are NAL units with 4-byte big-endian length prefixes; audio
 * payloads are raw access units (no ADTS). A `CONFIG` frame carries the decoder
 * configuration record instead of media.
 *
 * Ordering contract: an ingest publishes a track's `CONFIG` frame before any media frame
 * of that track, and again (with the new codec) before media of a changed codec; media
 * that arrives before its configuration (parameter sets lost on a lossy link, a stream
 * joined mid-GOP) is dropped, not published. Codecs without a configuration record (MP3)
 * need none. Consumers (packagers, egress) may rely on it; `ConfigGate` enforces it.
 *
 * @example Make a keyframe
 * ```ts
 * import { FrameFlags, type MediaFrame } from "@arcly/stream";
 *
 * const frame: MediaFrame = {
 *   track: 0,
 *   kind: "video",
 *   codec: "h264",
 *   pts: 3000,
 *   dts: 3000,
 *   flags: FrameFlags.KEYFRAME,
 *   data: new Uint8Array([0, 0, 0, 1, 0x65]),
 * };
 * ```
 */
export interface MediaFrame {
  /** Track number within the stream (0 is usually video, 1 audio). */
  readonly track: number;
  /** Whether this is a video or an audio frame. */
  readonly kind: TrackKind;
  /** The codec of the payload. */
  readonly codec: CodecId;
  /** Presentation time on the 90 kHz clock. */
  readonly pts: number;
  /** Decode time on the 90 kHz clock. */
  readonly dts: number;
  /** A combination of {@linkcode FrameFlags}. */
  readonly flags: number;
  /** The payload: a view into the ingest buffer, never copied per subscriber. */
  readonly data: Uint8Array;
}

/**
 * Whether `frame` has every bit of `flag` set.
 *
 * @example
 * ```ts
 * import { FrameFlags, hasFlag } from "@arcly/stream";
 *
 * const isKey = hasFlag({ flags: FrameFlags.KEYFRAME }, FrameFlags.KEYFRAME); // true
 * ```
 */
export function hasFlag(frame: Pick<MediaFrame, "flags">, flag: number): boolean {
  return (frame.flags & flag) === flag;
}
