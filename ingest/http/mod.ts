/**
 * HTTP delivery: a route-based server, the `/v1/streams` JSON API, Prometheus `/metrics`,
 * HTTP-FLV and live HLS playback, pulling another server's HLS as a source ({@linkcode pullHls}),
 * and the stream-name rules every HTTP route shares (WHIP/WHEP add their own routes from
 * `@arcly/stream/webrtc`).
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { httpFlv, Metrics, metricsRoute, serveHttp, streamsApi } from "@arcly/stream/http";
 *
 * const metrics = new Metrics();
 * const registry = new Registry({ observer: metrics });
 * const server = serveHttp({
 *   routes: [streamsApi(registry), metricsRoute(metrics, registry), httpFlv(registry)],
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * await server.close();
 * ```
 *
 * @module
 */

export type * from "../../mod.ts";
export type { HlsSegmentType } from "../../media/hls/mod.ts";
export * from "./server.ts";
export type { TlsListenOptions } from "../tls.ts";
export * from "./api.ts";
export * from "./metrics.ts";
export * from "./flv.ts";
export * from "./hls.ts";
export * from "./hls_pull.ts";
export type { PullClient, PullOptions } from "../pull.ts";
export type {
  TranscodedLease,
  TranscodedViews,
  TranscodeTarget,
} from "../../media/transcode/mod.ts";
export * from "./paths.ts";
export * from "./body.ts";
export * from "./access.ts";
