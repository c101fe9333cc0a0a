/**
 * FLV: a streaming reader (`TransformStream<Uint8Array, MediaFrame>`, its
 * synchronous core `FlvDecoder`) and
 * writer (`TransformStream<MediaFrame, Uint8Array>`) with Enhanced FLV
 * (`hvc1`, `av01`, Opus), the tag body codec shared with RTMP, and AMF0.
 *
 * @example Remux an FLV file
 * ```ts
 * import { FlvReader, FlvWriter } from "@arcly/stream/flv";
 *
 * async function remux(input: string, output: string): Promise<void> {
 *   const src = await Deno.open(input);
 *   const dst = await Deno.create(output);
 *   await src.readable.pipeThrough(new FlvReader()).pipeThrough(new FlvWriter()).pipeTo(dst.writable);
 * }
 * ```
 *
 * @module
 */

export type { CodecId, MediaFrame, TrackKind } from "../../bus/frame.ts";
export * from "./amf0.ts";
export * from "./tag.ts";
export * from "./decoder.ts";
export * from "./reader.ts";
export * from "./writer.ts";
