/**
 * HTTP-FLV playback: `GET /APP/NAME.flv` streams the live stream as FLV, starting from the
 * cached configs and GOP like an RTMP player.
 *
 * @module
 */

import type { Registry } from "../../mod.ts";
import { FlvWriter } from "../../media/flv/mod.ts";
import { isSafeName, parseStreamPath } from "./paths.ts";
import { type HttpRoute, textResponse } from "./server.ts";

/** Options for {@linkcode httpFlv}. */
export interface HttpFlvOptions {
  /** A player that skips more than this many frames in all is disconnected (default 512). */
  maxLag?: number;
}

/**
 * The HTTP-FLV route. The response ends when the publisher leaves; a player that cannot
 * keep up skips ahead and is disconnected past `maxLag`.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { httpFlv, serveHttp } from "@arcly/stream/http";
 *
 * const server = serveHttp({ routes: [httpFlv(new Registry())], hostname: "127.0.0.1", port: 0 });
 * await server.close();
 * ```
 */
export function httpFlv(registry: Registry, options: HttpFlvOptions = {}): HttpRoute {
  return (request, url) => {
    const path = parseStreamPath(url.pathname);
    if (!path || path.rest !== "" || !path.stream.endsWith(".flv")) return undefined;
    const stream = path.stream.slice(0, -".flv".length);
    if (!isSafeName(stream)) return undefined;
    if (request.method !== "GET") return textResponse(405, "method not allowed", { allow: "GET" });
    const handle = registry.get(path.app, stream);
    if (!handle) return textResponse(404, `no such stream: ${path.app}/${stream}`);
    const { video, audio } = handle.cachedConfigs();
    const body = handle.subscribe({ replay: true, maxLag: options.maxLag ?? 512 })
      .pipeThrough(new FlvWriter({ hasVideo: !!video || !audio, hasAudio: !!audio }));
    return new Response(body, {
      headers: {
        "content-type": "video/x-flv",
        "cache-control": "no-store",
        "access-control-allow-origin": "*",
      },
    });
  };
}
