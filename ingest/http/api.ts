/**
 * The JSON streams API (`GET /v1/streams`, `GET /v1/streams/APP/NAME`) and the Prometheus
 * endpoint (`GET /metrics`).
 *
 * @module
 */

import type { Registry, StreamHandle, StreamState } from "../../mod.ts";
import type { Metrics } from "./metrics.ts";
import { type HttpRoute, textResponse } from "./server.ts";

/** One live stream as `GET /v1/streams` reports it. */
export interface StreamSummary {
  /** `"app/stream"`. */
  key: string;
  /** The app name. */
  app: string;
  /** The stream name. */
  stream: string;
  /** The lifecycle state: `"publishing"` while live (see `recording`). */
  state: StreamState;
  /** Whether a recorder is writing the stream (it is still `"publishing"`). */
  recording: boolean;
  /** The ingest protocol, e.g. `"rtmp"`. */
  ingestProtocol: string;
  /** The publisher's address, when known. */
  publisher: string | null;
  /** RFC 6381 codec strings of the tracks, e.g. `["avc1.64001f", "mp4a.40.2"]`. */
  codecs: string[];
  /** Video width in pixels (0 when unknown). */
  width: number;
  /** Video height in pixels (0 when unknown). */
  height: number;
  /** Video frames per second. */
  fps: number;
  /** Video bitrate in bits per second over the last second. */
  videoBitrateBps: number;
  /** Audio bitrate in bits per second over the last second. */
  audioBitrateBps: number;
  /** Open subscriptions. */
  subscribers: number;
  /** When the first frame arrived (ISO 8601), or null before it. */
  startedAt: string | null;
}

/**
 * Describe a live stream for the API.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { summarizeStream } from "@arcly/stream/http";
 *
 * const registry = new Registry();
 * const summary = summarizeStream(registry.startPublish("live", "a", { protocol: "rtmp" }));
 * console.log(summary.ingestProtocol); // "rtmp"
 * ```
 */
export function summarizeStream(
  handle: StreamHandle,
  subscribers: number = handle.subscriberCount,
): StreamSummary {
  const m = handle.metadata();
  return {
    key: handle.key,
    app: handle.app,
    stream: handle.stream,
    state: handle.state,
    recording: handle.recording,
    ingestProtocol: m.ingestProtocol,
    publisher: m.publisherAddr ?? null,
    codecs: [m.videoCodec, m.audioCodec].filter((c): c is string => !!c),
    width: m.width,
    height: m.height,
    fps: Math.round(m.fps * 100) / 100,
    videoBitrateBps: m.videoBitrateBps,
    audioBitrateBps: m.audioBitrateBps,
    subscribers,
    startedAt: m.startedAtMs ? new Date(m.startedAtMs).toISOString() : null,
  };
}

/** Options for {@linkcode streamsApi}. */
export interface StreamsApiOptions {
  /**
   * A stream's subscribers as reported (default its `subscriberCount`); a server of several
   * workers counts every worker's.
   */
  subscribers?: (handle: StreamHandle) => number;
}

/**
 * `GET /v1/streams` (every live stream) and `GET /v1/streams/APP/NAME` (one, or 404).
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveHttp, streamsApi } from "@arcly/stream/http";
 *
 * const server = serveHttp({ routes: [streamsApi(new Registry())], hostname: "127.0.0.1", port: 0 });
 * await server.close();
 * ```
 */
export function streamsApi(registry: Registry, options: StreamsApiOptions = {}): HttpRoute {
  const subscribers = options.subscribers ?? ((handle: StreamHandle) => handle.subscriberCount);
  const summary = (handle: StreamHandle) => summarizeStream(handle, subscribers(handle));
  return (request, url) => {
    const path = url.pathname;
    if (path !== "/v1/streams" && !path.startsWith("/v1/streams/")) return undefined;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return textResponse(405, "method not allowed", { allow: "GET, HEAD" });
    }
    if (path === "/v1/streams") return Response.json(registry.list().map(summary));
    const [app, stream, ...rest] = path.slice("/v1/streams/".length).split("/");
    const handle = rest.length === 0 && stream ? registry.get(app, stream) : undefined;
    if (!handle) return textResponse(404, `no such stream: ${app}/${stream ?? ""}`);
    return Response.json(summary(handle));
  };
}

/**
 * `GET /metrics` in the Prometheus text format.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { Metrics, metricsRoute } from "@arcly/stream/http";
 *
 * const metrics = new Metrics();
 * const route = metricsRoute(metrics, new Registry({ observer: metrics }));
 * ```
 */
export function metricsRoute(metrics: Metrics, registry: Registry): HttpRoute {
  return (request, url) => {
    if (url.pathname !== "/metrics") return undefined;
    if (request.method !== "GET") return textResponse(405, "method not allowed", { allow: "GET" });
    return new Response(metrics.render(registry), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    });
  };
}
