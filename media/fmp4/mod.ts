/**
 * Fragmented MP4 (CMAF-style): an ISO BMFF box writer, init segments and
 * `moof` + `mdat` fragments for H.264, H.265, AAC and Opus, and a demuxer reading them back.
 *
 * @example Init segment and one fragment
 * ```ts
 * import { Fmp4Fragmenter, trackFromConfig } from "@arcly/stream/fmp4";
 * import { FrameFlags, type MediaFrame } from "@arcly/stream";
 *
 * const config: MediaFrame = {
 *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
 *   flags: FrameFlags.CONFIG, data: new Uint8Array([0x11, 0x90]),
 * };
 * const fragmenter = new Fmp4Fragmenter([trackFromConfig(config)]);
 * const init = fragmenter.initSegment();
 * fragmenter.push({ ...config, flags: 0, data: new Uint8Array(200) });
 * const fragment = fragmenter.flush();
 * ```
 *
 * @module
 */

export type { CodecId, MediaFrame, TrackKind } from "../../bus/frame.ts";
export * from "./box.ts";
export * from "./track.ts";
export * from "./init.ts";
export * from "./fragmenter.ts";
export * from "./demuxer.ts";
