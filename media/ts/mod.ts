/**
 * MPEG transport stream (ISO/IEC 13818-1): a muxer from
 * {@linkcode MediaFrame}s and a demuxer back to them, as Web Streams
 * transforms ({@linkcode TsMuxer}, {@linkcode TsDemuxer}) over synchronous
 * engines ({@linkcode TsEncoder}, {@linkcode TsDecoder}). H.264, H.265, AAC
 * (ADTS) and Opus.
 *
 * @example Remux a file
 * ```ts ignore
 * import { TsDemuxer, TsMuxer } from "@arcly/stream/ts";
 *
 * const input = await Deno.open("in.ts");
 * const output = await Deno.open("out.ts", { write: true, create: true });
 * await input.readable.pipeThrough(new TsDemuxer()).pipeThrough(new TsMuxer())
 *   .pipeTo(output.writable);
 * ```
 *
 * @module
 */

export type { CodecId, MediaFrame, TrackKind } from "../../bus/frame.ts";
export * from "./constants.ts";
export * from "./encoder.ts";
export * from "./muxer.ts";
export * from "./decoder.ts";
export * from "./demuxer.ts";
