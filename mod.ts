/**
 * arcly-stream's kernel: a zero-copy fan-out bus for live media.
 *
 * One publisher per stream writes {@linkcode MediaFrame}s into a shared ring
 * ({@linkcode StreamHandle.publish}); every subscriber reads that ring as a
 * `ReadableStream` at its own cursor ({@linkcode StreamHandle.subscribe}). Late joiners
 * start at once from the cached configs and GOP; slow readers skip ahead and are evicted
 * without slowing anyone else. A {@linkcode Registry} allows one publisher per stream key.
 *
 * The kernel loads no muxer and no protocol: those live behind their own entry points
 * (`@arcly/stream/ts`, `/fmp4`, `/hls`, `/flv`, `/rtmp`, …).
 *
 * @example Publish and subscribe
 * ```ts
 * import { FrameFlags, Registry } from "@arcly/stream";
 *
 * const registry = new Registry();
 * const handle = registry.startPublish("live", "cam", { protocol: "example" });
 * const player = handle.subscribe({ replay: true });
 *
 * handle.publish({
 *   track: 0, kind: "video", codec: "h264", pts: 0, dts: 0,
 *   flags: FrameFlags.KEYFRAME, data: new Uint8Array([0, 0, 0, 1, 0x65]),
 * });
 * registry.endPublish(handle);
 *
 * for await (const frame of player) console.log(frame.codec, frame.pts); // h264 0
 * ```
 *
 * @module
 */

export * from "./bus/frame.ts";
export * from "./bus/config_gate.ts";
export * from "./bus/ring.ts";
export * from "./bus/observe.ts";
export * from "./bus/log.ts";
export * from "./bus/stream.ts";
export * from "./bus/play.ts";
export * from "./bus/derived.ts";
export * from "./bus/registry.ts";
