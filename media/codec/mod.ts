/**
 * Bitstream facts per codec: H.264 and H.265 parameter sets and decoder
 * configuration records, NAL unit framing, AAC AudioSpecificConfig and ADTS,
 * and the Opus identification header.
 *
 * @example
 * ```ts
 * import { aacCodecString, parseAudioSpecificConfig } from "./mod.ts";
 *
 * aacCodecString(parseAudioSpecificConfig(new Uint8Array([0x12, 0x10]))); // "mp4a.40.2"
 * ```
 *
 * @module
 */

export type { CodecId, MediaFrame, TrackKind } from "../../bus/frame.ts";
export * from "./nal.ts";
export * from "./h264.ts";
export * from "./h265.ts";
export * from "./aac.ts";
export * from "./opus.ts";
export * from "./describe.ts";
