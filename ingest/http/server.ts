/**
 * A small HTTP server made of routes: each plug-in (the streams API, metrics, HLS,
 * HTTP-FLV, WHIP/WHEP) contributes a function that answers the requests it knows.
 *
 * @module
 */

import { type Logger, silentLogger } from "../../mod.ts";
import type { TlsListenOptions } from "../tls.ts";
import { type HttpsListener, serveHttps } from "./_https.ts";

/**
 * Answers a request it knows, or returns `undefined` to let the next route try.
 *
 * @example
 * ```ts
 * import type { HttpRoute } from "@arcly/stream/http";
 *
 * const hello: HttpRoute = (_request, url) =>
 *   url.pathname === "/hello" ? new Response("hi") : undefined;
 * ```
 */
export type HttpRoute = (
  request: Request,
  url: URL,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | undefined | Promise<Response | undefined>;

/** Options for {@linkcode serveHttp}. */
export interface HttpServerOptions {
  /** Tried in order; the first answer wins, none gives a 404. */
  routes: HttpRoute[];
  /** The address to listen on (default `"0.0.0.0"`). */
  hostname?: string;
  /** The TCP port; 0 picks a free one; `null` for no plain HTTP (HTTPS only). */
  port: number | null;
  /**
   * HTTPS with this certificate and key, on its own port next to plain HTTP or instead of
   * it (see {@linkcode HttpServer.tlsAddr}); the same routes answer both.
   */
  tls?: TlsListenOptions;
  /** Where errors are reported (default: silent). */
  logger?: Logger;
}

/**
 * A running HTTP server.
 *
 * @example
 * ```ts
 * import { serveHttp } from "@arcly/stream/http";
 *
 * const server = serveHttp({ routes: [], hostname: "127.0.0.1", port: 0 });
 * console.log(server.addr.port);
 * await server.close();
 * ```
 */
export interface HttpServer {
  /** The address the server listens on (the HTTPS one if there is no plain HTTP). */
  readonly addr: Deno.NetAddr;
  /** The HTTPS listener's address, if there is one. */
  readonly tlsAddr: Deno.NetAddr | undefined;
  /** Stop accepting and end open responses; resolves when done. */
  close(): Promise<void>;
  /** Resolves once the server has closed. */
  readonly finished: Promise<void>;
}

/**
 * Serve `routes` over HTTP/1.1. A route that throws gets a 500 with the error logged; no
 * route gives a plain 404.
 *
 * @example
 * ```ts
 * import { serveHttp } from "@arcly/stream/http";
 *
 * const server = serveHttp({
 *   routes: [(_req, url) => url.pathname === "/" ? new Response("ok") : undefined],
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * await server.close();
 * ```
 */
export function serveHttp(options: HttpServerOptions): HttpServer {
  const logger = options.logger ?? silentLogger;
  const hostname = options.hostname ?? "0.0.0.0";
  const handler: Deno.ServeHandler<Deno.NetAddr> = async (request, info) => {
    const url = new URL(request.url);
    try {
      for (const route of options.routes) {
        const response = await route(request, url, info);
        if (response) return response;
      }
      return textResponse(404, `not found: ${url.pathname}`);
    } catch (error) {
      logger.error(
        `http ${info.remoteAddr.hostname}:${info.remoteAddr.port} ${request.method} ${url.pathname}: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
      return textResponse(500, "internal error");
    }
  };
  const { port, tls } = options;
  if (port === null && !tls) throw new TypeError("http: neither a port nor TLS");
  const plain = port === null
    ? undefined
    : Deno.serve({ hostname, port, onListen: () => {} }, handler);
  let secure: HttpsListener | undefined;
  try {
    secure = tls && serveHttps(tls, hostname, logger, handler);
  } catch (error) {
    void plain?.shutdown();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const closed = Promise.withResolvers<void>();
  const close = () =>
    closing ??= Promise.all([plain?.shutdown(), secure?.close()]).then(() => closed.resolve());
  return {
    addr: (plain ?? secure)!.addr,
    tlsAddr: secure?.addr,
    finished: plain ? plain.finished.then(close) : closed.promise,
    close,
  };
}

/**
 * A plain-text response with a trailing newline.
 *
 * @example
 * ```ts
 * import { textResponse } from "@arcly/stream/http";
 *
 * const response = textResponse(404, "no such stream: live/x");
 * ```
 */
export function textResponse(status: number, text: string, headers?: HeadersInit): Response {
  const response = new Response(`${text}\n`, { status, headers });
  response.headers.set("content-type", "text/plain; charset=utf-8");
  return response;
}
