/**
 * MPEG-TS (ISO/IEC 13818-1) constants shared by the muxer and the demuxer.
 *
 * @module
 */

/** Bytes in one transport stream packet. */
export const TS_PACKET_SIZE = 188;

/**
 * The packet identifiers {@linkcode TsMuxer} writes (the same as ffmpeg's
 * defaults).
 *
 * @example
 * ```ts
 * import { TsPid } from "./constants.ts";
 *
 * TsPid.VIDEO; // 0x100
 * ```
 */
export const TsPid = {
  /** The program association table. */
  PAT: 0x0000,
  /** The program map table of the single program. */
  PMT: 0x1000,
  /** The video elementary stream (also the PCR PID when there is video). */
  VIDEO: 0x0100,
  /** The audio elementary stream (the PCR PID when there is no video). */
  AUDIO: 0x0101,
  /** Null packets. */
  NULL: 0x1fff,
} as const;

/**
 * PMT `stream_type` values for the codecs this package carries.
 *
 * @example
 * ```ts
 * import { TsStreamType } from "./constants.ts";
 *
 * TsStreamType.H264; // 0x1b
 * ```
 */
export const TsStreamType = {
  /** ISO/IEC 13818-7 AAC with ADTS framing. */
  AAC: 0x0f,
  /** ITU-T H.264 (Annex-B byte stream). */
  H264: 0x1b,
  /** ITU-T H.265 (Annex-B byte stream). */
  H265: 0x24,
  /** PES private data; Opus when the registration descriptor says `Opus`. */
  PRIVATE_DATA: 0x06,
} as const;
