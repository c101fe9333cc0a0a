/**
 * Bitstream facts per codec, kept apart from the containers that carry them:
 * H.264 and H.265 parameter sets and decoder configuration records
 * (ISO/IEC 14496-15), NAL unit framing (Annex-B and the kernel's 4-byte length
 * prefixes), AAC AudioSpecificConfig and ADTS, the Opus identification header,
 * RFC 6381 codec strings, and the tools every container and protocol shares: a
 * bit reader and writer with exp-Golomb codes and RBSP escaping, and a 32-bit
 * timestamp unwrapper.
 *
 * {@linkcode describeConfig} turns any `CONFIG` frame into a codec string,
 * picture size or sample rate; pass it to the kernel's `Registry` so that every
 * stream's metadata (and the `/v1/streams` API) names its codecs. This module
 * depends on nothing but the kernel's frame type.
 *
 * @example Let the registry describe the streams' codecs
 * ```ts
 * import { FrameFlags, Registry } from "@arcly/stream";
 * import { describeConfig } from "@arcly/stream/codec";
 *
 * const registry = new Registry({ describeConfig });
 * const handle = registry.startPublish("live", "cam", { protocol: "example" });
 * handle.publish({
 *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
 *   flags: FrameFlags.CONFIG, data: new Uint8Array([0x11, 0x90]), // AAC-LC, 48 kHz, stereo
 * });
 * console.log(handle.metadata().audioCodec); // "mp4a.40.2"
 * ```
 *
 * @example Read an AudioSpecificConfig
 * ```ts
 * import { aacCodecString, parseAudioSpecificConfig } from "@arcly/stream/codec";
 *
 * const config = parseAudioSpecificConfig(new Uint8Array([0x12, 0x10]));
 * console.log(config.sampleRate, aacCodecString(config)); // 44100 "mp4a.40.2"
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
export * from "./bits.ts";
export * from "./timestamp.ts";
export * from "./base64.ts";
