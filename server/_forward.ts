/**
 * HTTP requests a worker forwards to the primary (worker 0), whose state must stay in one
 * place: live HLS (segment names and sequence numbers), WHIP/WHEP sessions, the streams
 * API, the metrics and the player pages. The worker checks access with the client's real
 * address first and sends the request on to a loopback listener of the primary that only
 * answers requests carrying the cluster's secret, with the client's address in a header.
 */

import { type HttpRoute, textResponse } from "../ingest/http/mod.ts";

/** The header that proves a request comes from a worker of this process. */
const SECRET_HEADER = "x-arcly-worker-secret";
/** The header that carries the client's address (`HOST:PORT`, `[V6]:PORT`). */
const PEER_HEADER = "x-arcly-worker-peer";

/** Where a worker forwards to: the primary's loopback listener and the cluster's secret. */
export interface ForwardTarget {
  /** `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** Random per process; requests without it are refused. */
  readonly secret: string;
}

/** A fresh secret for a cluster's forwarded requests. */
export function newForwardSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The route that sends every request it gets to `target` and answers with its response. */
export function forwardRoute(target: ForwardTarget): HttpRoute {
  return async (request, url, info) => {
    const headers = new Headers(request.headers);
    headers.delete("host");
    headers.set(SECRET_HEADER, target.secret);
    const { hostname, port } = info.remoteAddr;
    headers.set(
      PEER_HEADER,
      hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`,
    );
    // The forward ends when the client's response does (done, or the client went away).
    const gone = new AbortController();
    const abort = () => gone.abort();
    info.completed.then(abort, abort);
    try {
      return await fetch(new URL(url.pathname + url.search, target.origin), {
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
        signal: gone.signal,
        duplex: "half",
      } as RequestInit);
    } catch (error) {
      if (gone.signal.aborted) return textResponse(499, "client went away");
      const why = error instanceof Error ? error.message : String(error);
      return textResponse(502, `the primary worker did not answer: ${why}`);
    }
  };
}

/**
 * The primary's side: requests with the secret go to `routes` as if they came from the
 * client named in the peer header (access was checked by the worker); others get a 403.
 */
export function forwardedRoute(secret: string, routes: readonly HttpRoute[]): HttpRoute {
  return async (request, url, info) => {
    const peer = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(request.headers.get(PEER_HEADER) ?? "");
    if (request.headers.get(SECRET_HEADER) !== secret || !peer) {
      return textResponse(403, "not a request from a worker of this server");
    }
    const remoteAddr: Deno.NetAddr = { transport: "tcp", hostname: peer[1], port: Number(peer[2]) };
    const forwarded = { ...info, remoteAddr };
    for (const route of routes) {
      const response = await route(request, url, forwarded);
      if (response) return response;
    }
    return undefined;
  };
}
