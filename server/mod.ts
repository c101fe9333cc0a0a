/**
 * The whole arcly-stream server as a library: {@linkcode serve} composes RTMP, RTSP, SRT
 * and HTTP (live HLS, HTTP-FLV, WHIP/WHEP, player pages, `/v1/streams`, `/metrics`) and
 * recording from one config object, the same shape a config file holds; it returns a
 * handle to wait for, reload and close. {@linkcode packageFile} is the `package` command.
 *
 * @example Serve on free loopback ports
 * ```ts
 * import { serve } from "@arcly/stream/server";
 *
 * const server = serve({
 *   rtmp: { listen: "127.0.0.1:0" },
 *   http: { listen: "127.0.0.1:0" },
 *   rtsp: { listen: "off" },
 *   srt: { listen: "off" },
 *   paths: { "live/*": { gopCache: 256 } },
 * });
 * await server.ready;
 * console.log(server.addresses.rtmp?.port, server.addresses.http?.port);
 * await server.close();
 * ```
 *
 * @module
 */

export type * from "../mod.ts";
export type * from "../media/hls/mod.ts";
// The types the config names, so that this entry point documents itself.
export type {
  HlsRequestKind,
  HttpFlvOptions,
  HttpRoute,
  HttpServerOptions,
  LiveHlsOptions,
} from "../ingest/http/mod.ts";
export type { RtmpServerOptions, TlsListenOptions } from "../ingest/rtmp/mod.ts";
export type { RtspAuthOptions, RtspReaderLimits, RtspServerOptions } from "../ingest/rtsp/mod.ts";
export type { SrtPassphraseRequest, SrtServerOptions } from "../ingest/srt/mod.ts";
export type { WebRtcServerOptions } from "../ingest/webrtc/mod.ts";
export type { TranscodedLease, TranscodedViews, TranscodeTarget } from "../media/transcode/mod.ts";
export type * from "./access/mod.ts";
export {
  type ReloadResult,
  serve,
  type ServeOptions,
  type Server,
  type ServerAddresses,
} from "./serve.ts";
export * from "./config.ts";
export * from "./error.ts";
export * from "./paths.ts";
export * from "./listen.ts";
export * from "./record.ts";
export * from "./package.ts";
export * from "./config_file.ts";
export * from "./layers.ts";
export * from "./relay.ts";
export * from "./source.ts";
export type { PullClient, PullOptions } from "../ingest/pull.ts";
