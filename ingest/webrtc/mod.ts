/**
 * WebRTC ingest and playback on `npm:werift`: WHIP (RFC 9725) publishes H.264 and Opus
 * from browsers and OBS into the kernel, WHEP plays any live H.264 stream (RTMP, RTSP,
 * SRT, WHIP) to browsers with the cached configs and GOP first, and two pages publish a
 * camera and play a stream (falling back to HLS through hls.js).
 *
 * werift reads the network interfaces: run with `--allow-sys=networkInterfaces` (and
 * `--allow-net`).
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveHttp } from "@arcly/stream/http";
 * import { WebRtcServer } from "@arcly/stream/webrtc";
 *
 * const registry = new Registry();
 * const webrtc = new WebRtcServer({ registry });
 * const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 8888 });
 * // camera: http://127.0.0.1:8888/live/cam/publish, player: http://127.0.0.1:8888/live/cam/
 * await webrtc.close();
 * await http.close();
 * ```
 *
 * @module
 */

export type * from "../../mod.ts";
export type { HttpRoute } from "../http/server.ts";
export type {
  TranscodedLease,
  TranscodedViews,
  TranscodeTarget,
} from "../../media/transcode/mod.ts";
export * from "./error.ts";
export * from "./server.ts";
export * from "./client.ts";
export type { PullClient, PullOptions } from "../pull.ts";
export * from "./port_range.ts";
