/**
 * Responses whose body the guard writes straight to the client's TCP connection: a
 * long-lived stream (HTTP-FLV) that would otherwise pay for `Deno.serve`'s body stream and
 * the relay, byte by byte. The route still returns an ordinary `Response` (HTTPS and the
 * relayed path read its body); the raw form rides beside it.
 *
 * @module
 */

/** How the guard's connection is handed to a raw body. */
export interface RawBodyTarget {
  /** The client's connection. */
  readonly conn: Deno.Conn;
  /** The response head (status line and fields): the body writes it before its first bytes. */
  readonly head: Uint8Array;
  /** Frame the body with chunked transfer coding (HTTP/1.1), else the close ends it. */
  readonly chunked: boolean;
  /** Aborts when the connection closes. */
  readonly signal: AbortSignal;
}

/** A body that writes itself to a connection. */
export interface RawBody {
  /**
   * Write the head and the body to `target.conn`. Resolves (never rejects) with `true` when
   * the body was written to its end (with chunked coding, its last chunk too: the
   * connection may carry the next request), `false` when it was cut short.
   */
  send(target: RawBodyTarget): Promise<boolean>;
}

const rawBodies = new WeakMap<Response, RawBody>();

/** `response`, which the guard may send with `raw` instead of reading its body. */
export function withRawBody(response: Response, raw: RawBody): Response {
  rawBodies.set(response, raw);
  return response;
}

/** The raw form of `response`'s body, if it has one. */
export function rawBodyOf(response: Response): RawBody | undefined {
  return rawBodies.get(response);
}
