/**
 * A small HTTP/1.1 response writer for the requests the guard answers itself: the status
 * line and fields of a `Response`, then its body, raw ({@linkcode RawBody}) or read from its
 * stream, chunked for HTTP/1.1 and close-delimited for HTTP/1.0.
 *
 * @module
 */

import { rawBodyOf } from "./_raw_body.ts";

/** How a response goes out. */
export interface ResponseFraming {
  /** The request's method (`HEAD` gets the head alone). */
  readonly method: string;
  /** HTTP/1.1 (chunked bodies, keep-alive) rather than 1.0 (the close ends the body). */
  readonly http11: boolean;
  /** The connection may carry another request after this one. */
  readonly keepAlive: boolean;
  /** Aborts when the connection closes. */
  readonly signal: AbortSignal;
}

const REASONS: Record<number, string> = {
  200: "OK",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Fields about the connection and the framing, which the writer sets itself. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length"]);

const encoder = new TextEncoder();
const CRLF = encoder.encode("\r\n");
const LAST_CHUNK = encoder.encode("0\r\n\r\n");

/**
 * Write `response` to `conn`. Resolves with whether the connection may carry the next
 * request (the whole response went out and keep-alive holds); never rejects.
 */
export function writeResponse(
  conn: Deno.Conn,
  response: Response,
  framing: ResponseFraming,
): Promise<boolean> {
  const raw = rawBodyOf(response);
  const bodiless = framing.method === "HEAD" || response.status === 204 ||
    response.status === 304 || (response.body === null && raw === undefined);
  const chunked = framing.http11 && !bodiless;
  const keepAlive = framing.keepAlive && (framing.http11 || bodiless);
  let head = `HTTP/1.1 ${response.status} ${
    response.statusText || REASONS[response.status] || ""
  }\r\n`;
  for (const [name, value] of response.headers) {
    if (!HOP_BY_HOP.has(name)) head += `${name}: ${value}\r\n`;
  }
  head += `date: ${new Date().toUTCString()}\r\n`;
  if (bodiless && framing.method !== "HEAD") head += "content-length: 0\r\n";
  if (chunked) head += "transfer-encoding: chunked\r\n";
  if (!keepAlive) head += "connection: close\r\n";
  const headBytes = encoder.encode(`${head}\r\n`);
  // A raw body is sent without holding on to the response (its body stream stays unread:
  // only one of the two forms may start).
  if (raw && !bodiless) {
    return raw.send({ conn, head: headBytes, chunked, signal: framing.signal })
      .then((whole) => whole && keepAlive);
  }
  if (bodiless) void response.body?.cancel().catch(() => {});
  return sendBody(conn, headBytes, bodiless ? null : response.body, chunked, keepAlive);
}

async function sendBody(
  conn: Deno.Conn,
  head: Uint8Array,
  body: ReadableStream<Uint8Array> | null,
  chunked: boolean,
  keepAlive: boolean,
): Promise<boolean> {
  try {
    await writeAll(conn, head);
    if (body === null) return keepAlive;
    for await (const chunk of body) {
      if (chunk.length === 0) continue;
      if (!chunked) {
        await writeAll(conn, chunk);
        continue;
      }
      await writeAll(conn, encoder.encode(`${chunk.length.toString(16)}\r\n`));
      await writeAll(conn, chunk);
      await writeAll(conn, CRLF);
    }
    if (chunked) await writeAll(conn, LAST_CHUNK);
    return keepAlive;
  } catch {
    await body?.cancel().catch(() => {});
    return false;
  }
}

/** Write all of `bytes` to `conn`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let o = 0; o < bytes.length;) o += await conn.write(bytes.subarray(o));
}
