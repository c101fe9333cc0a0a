/**
 * A small HTTP server made of routes: each plug-in (the streams API, metrics, HLS,
 * HTTP-FLV, WHIP/WHEP) contributes a function that answers the requests it knows.
 *
 * @module
 */

import { type Logger, silentLogger } from "../../mod.ts";
import type { TlsListenOptions } from "../tls.ts";
import { HttpGuard } from "./_guard.ts";
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
   * it (see {@linkcode HttpServer.tlsAddr}); the same routes answer both. The request
   * deadlines and the per-address limit apply to plain HTTP; HTTPS has the TLS handshake
   * deadline.
   */
  tls?: TlsListenOptions;
  /**
   * Share the plain port with other listeners that set it too (`SO_REUSEPORT`: the kernel
   * spreads new connections over them), e.g. one HTTP server per worker (default false).
   * Needs Deno's `net` unstable flag (`"unstable": ["net"]` in deno.json).
   */
  reusePort?: boolean;
  /** Where errors, refusals and deadline closes are reported (default: silent). */
  logger?: Logger;
  /**
   * A request head must be complete this long after its first byte (a new connection's
   * first head this long after the accept), and a request body this long after its head;
   * the connection is closed otherwise (default 10,000 ms). This cuts off clients that
   * dribble a header or a body.
   */
  requestTimeoutMs?: number;
  /**
   * A connection with no request in flight and no byte of a next request is closed after
   * this long (default 30,000 ms). A response that is being sent (a live HTTP-FLV stream,
   * a held LL-HLS reload) is in flight however long it takes.
   */
  keepAliveTimeoutMs?: number;
  /**
   * Connections from one client address beyond this many are answered 503 and closed,
   * with one warning per episode (default 128; 0 for no limit). Viewers behind one NAT
   * share an address: raise it for large audiences there.
   */
  maxConnectionsPerIp?: number;
  /**
   * Plain-HTTP requests the connection guard answers itself on the client's connection
   * instead of relaying them to `Deno.serve`: meant for long-lived streams, whose bytes then
   * cost one write each (default: `GET` and `HEAD` of a path ending in `.flv`, HTTP-FLV). The same
   * routes answer them, with the same deadlines and limits.
   */
  direct?: (method: string, pathname: string) => boolean;
}

/** The requests the guard answers itself by default: HTTP-FLV plays. */
const DIRECT_FLV = (method: string, pathname: string): boolean =>
  (method === "GET" || method === "HEAD") && pathname.endsWith(".flv");

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
 * Connections are accepted by a guard that enforces the request deadline, the idle timeout
 * and the per-address limit (`Deno.serve` has none of them) and relays the bytes to
 * `Deno.serve` on a loopback port, which parses HTTP; the requests `direct` picks (HTTP-FLV)
 * the guard answers itself, on the client's socket. Routes see the client's address in
 * `info.remoteAddr`. Requests made straight to that loopback port are refused with 403.
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
  const { port, tls } = options;
  if (port === null && !tls) throw new TypeError("http: neither a port nor TLS");
  const plain = port === null ? undefined : serveGuarded(options, hostname, port, logger);
  let secure: HttpsListener | undefined;
  try {
    secure = tls &&
      serveHttps(
        tls,
        hostname,
        logger,
        (request, info) => answer(options.routes, request, info, logger),
      );
  } catch (error) {
    void plain?.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const closed = Promise.withResolvers<void>();
  const close = () =>
    closing ??= Promise.all([plain?.close(), secure?.close()]).then(() => closed.resolve());
  return {
    addr: plain?.addr ?? secure!.addr,
    tlsAddr: secure?.addr,
    finished: plain ? plain.finished.then(close) : closed.promise,
    close,
  };
}

/** Plain HTTP: the guard in front of `Deno.serve` on a loopback port. */
function serveGuarded(
  options: HttpServerOptions,
  hostname: string,
  port: number,
  logger: Logger,
): { addr: Deno.NetAddr; finished: Promise<void>; close(): Promise<void> } {
  const listener = Deno.listen({ hostname, port, reusePort: options.reusePort });
  const inner: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, (request, innerInfo): Promise<Response> | Response => {
    // The guard exists by then: serveHttp returns before any request can be handled.
    const connection = guard.connectionOf(innerInfo.remoteAddr.port);
    if (!connection) return textResponse(403, "connect through the server's public address");
    connection.requestStarted(request.body !== null);
    const done = () => connection.requestDone();
    innerInfo.completed.then(done, done);
    const info = { remoteAddr: connection.remoteAddr, completed: innerInfo.completed };
    const watched = request.body
      ? withBodyEnd(request, innerInfo.completed, () => connection.bodyDone())
      : request;
    return answer(options.routes, watched, info, logger);
  });
  const guard: HttpGuard = new HttpGuard(listener, inner.addr.port, {
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 30_000,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? 128,
  }, {
    direct: options.direct ?? DIRECT_FLV,
    handler: (request, info) => answer(options.routes, request, info, logger),
  }, logger);
  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      await guard.stopAccepting();
      await inner.shutdown();
      await guard.close();
    })();
  return { addr: guard.addr, finished: inner.finished.then(close), close };
}

/**
 * `request` with a body that calls `end` once read to its end. Its signal aborts when
 * the response is done or the client went away (`completed` settles); it is made anew,
 * as copying the request's own would have Deno warn about its legacy abort.
 */
function withBodyEnd(request: Request, completed: Promise<void>, end: () => void): Request {
  const body = request.body!.pipeThrough(new TransformStream({ flush: end }));
  const aborted = new AbortController();
  const abort = () => aborted.abort();
  completed.then(abort, abort);
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body,
    duplex: "half",
    signal: aborted.signal,
  } as RequestInit);
}

/** The first route's answer, a 404 when none answers, a 500 when one throws. */
async function answer(
  routes: readonly HttpRoute[],
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  logger: Logger,
): Promise<Response> {
  const url = new URL(request.url);
  try {
    for (const route of routes) {
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
