/**
 * RTMP ingest and playback: the handshake, the chunk stream, protocol control and
 * command messages, and {@linkcode serveRtmp}, a server that publishes into and
 * plays from a kernel `Registry`.
 *
 * @example Serve RTMP
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveRtmp } from "@arcly/stream/rtmp";
 *
 * const registry = new Registry();
 * const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, logger: console });
 * // ffmpeg -re -i in.mp4 -c copy -f flv rtmp://127.0.0.1:PORT/live/cam
 * // ffmpeg -i rtmp://127.0.0.1:PORT/live/cam -c copy out.flv
 * await server.close();
 * ```
 *
 * @module
 */

export type * from "../../mod.ts";
export type { Amf0Object, Amf0Value } from "../../media/flv/amf0.ts";
export * from "./error.ts";
export * from "./message.ts";
export * from "./chunk.ts";
export * from "./control.ts";
export * from "./command.ts";
export {
  HANDSHAKE_SIZE,
  type HandshakeOptions,
  RTMP_VERSION,
  serverHandshake,
} from "./handshake.ts";
export * from "./server.ts";
export * from "./client.ts";
export type { PullClient, PullOptions } from "../pull.ts";
export type { TlsListenOptions } from "../tls.ts";
export type {
  TranscodedLease,
  TranscodedViews,
  TranscodeTarget,
} from "../../media/transcode/mod.ts";
