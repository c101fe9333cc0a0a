/**
 * RTSP 1.0 messages on the wire (RFC 2326): incremental readers for requests (a server's
 * side) and responses (a client's) with the interleaved binary frames sharing one TCP
 * connection, and response formatting.
 *
 * @module
 */

import { MessageReader } from "./_message_reader.ts";

/**
 * Reason phrases for the status codes the server sends.
 *
 * @example
 * ```ts
 * import { RTSP_STATUS } from "@arcly/stream/rtsp";
 *
 * RTSP_STATUS[454]; // "Session Not Found"
 * ```
 */
export const RTSP_STATUS: Readonly<Record<number, string>> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  413: "Request Entity Too Large",
  415: "Unsupported Media Type",
  454: "Session Not Found",
  455: "Method Not Valid in This State",
  459: "Aggregate Operation Not Allowed",
  461: "Unsupported Transport",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
  505: "RTSP Version Not Supported",
};

/** Options for {@linkcode RtspError}. */
export interface RtspErrorOptions {
  /** Close the connection after answering (the byte stream cannot be trusted). */
  fatal?: boolean;
  /** Extra header fields for the answer. */
  headers?: ResponseHeaders;
  /** The reason phrase, when not the standard one for the status. */
  reason?: string;
}

/**
 * A request the server answers with an error status: bad syntax (400), a missing
 * session (454), an unsupported transport (461)… `status` is what goes on the wire;
 * `fatal` errors also close the connection because the byte stream cannot be trusted.
 *
 * @example
 * ```ts
 * import { RtspError } from "@arcly/stream/rtsp";
 *
 * const error = new RtspError(461, "multicast is not supported");
 * console.log(error.status, error.message); // 461 multicast is not supported
 * ```
 */
export class RtspError extends Error {
  /** The RTSP status code to answer with. */
  readonly status: number;
  /** Whether the connection must close after the answer. */
  readonly fatal: boolean;
  /** Extra header fields for the answer (e.g. `WWW-Authenticate`). */
  readonly headers: ResponseHeaders;
  /** The reason phrase of the answer. */
  readonly reason: string;

  /** Make an error answered with `status`. */
  constructor(status: number, message: string, options: RtspErrorOptions = {}) {
    super(message);
    this.name = "RtspError";
    this.status = status;
    this.fatal = options.fatal ?? false;
    this.headers = options.headers ?? [];
    this.reason = options.reason ?? RTSP_STATUS[status] ?? "Error";
  }
}

/** One RTSP request as received. */
export interface RtspRequest {
  /** The method, e.g. `"DESCRIBE"`. */
  readonly method: string;
  /** The Request-URI as sent, e.g. `"rtsp://host:8554/live/cam"` or `"*"`. */
  readonly uri: string;
  /** The protocol version, e.g. `"RTSP/1.0"` (the server answers others with 505). */
  readonly version: string;
  /** Header fields (names are case-insensitive). */
  readonly headers: Headers;
  /** The body (`Content-Length` bytes; empty when there is none). */
  readonly body: Uint8Array;
}

/** Limits that keep one connection from using unbounded memory. */
export interface RtspReaderLimits {
  /** Longest request line plus headers, in bytes (default 8192). */
  maxHeadBytes?: number;
  /** Most header fields in one request (default 64). */
  maxHeaders?: number;
  /** Largest `Content-Length` accepted (default 65536). */
  maxBodyBytes?: number;
}

/**
 * Called for each interleaved frame (`$`, channel, 16-bit length, data). `data` is a
 * view into the reader's buffer, valid only during the call: copy what you keep.
 */
export type InterleavedHandler = (channel: number, data: Uint8Array) => void;

/**
 * Splits the bytes of one RTSP connection into requests and interleaved frames.
 * Requests are returned from {@linkcode RtspReader.push}; interleaved frames go to the
 * handler as they are complete, without copying. Malformed or oversized input throws a
 * fatal {@linkcode RtspError} (400 or 413) and the reader must not be used again.
 *
 * @example
 * ```ts
 * import { RtspReader } from "@arcly/stream/rtsp";
 *
 * const reader = new RtspReader((channel, data) => console.log(channel, data.length));
 * const text = "OPTIONS rtsp://127.0.0.1/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n";
 * const [request] = reader.push(new TextEncoder().encode(text));
 * console.log(request.method, request.headers.get("cseq")); // OPTIONS 1
 * reader.push(new Uint8Array([0x24, 0, 0, 2, 0x80, 0x60])); // logs 0 2
 * ```
 */
export class RtspReader {
  #reader: MessageReader<RequestLine>;

  /** Make a reader that hands interleaved frames to `onInterleaved`. */
  constructor(onInterleaved: InterleavedHandler, limits: RtspReaderLimits = {}) {
    this.#reader = new MessageReader(onInterleaved, parseRequestLine, withDefaults(limits));
  }

  /** Bytes held of a message not yet complete (a request or an interleaved frame). */
  get buffered(): number {
    return this.#reader.buffered;
  }

  /** Feed received bytes; returns the requests completed by them, in order. */
  push(bytes: Uint8Array): RtspRequest[] {
    return this.#reader.push(bytes).map(({ start, headers, body }) => ({
      ...start,
      headers,
      body,
    }));
  }
}

/** One RTSP response as received. */
export interface RtspResponse {
  /** The status code, e.g. `200`. */
  readonly status: number;
  /** The reason phrase, e.g. `"OK"`. */
  readonly reason: string;
  /** Header fields (names are case-insensitive). */
  readonly headers: Headers;
  /** The body (`Content-Length` bytes; empty when there is none). */
  readonly body: Uint8Array;
}

/**
 * Splits the bytes a client receives into responses and interleaved frames, with the
 * limits and errors of {@linkcode RtspReader}. A request from the server (RTSP allows
 * them, e.g. a server's `GET_PARAMETER` or `ANNOUNCE`) throws a fatal 400 too: a client
 * that only plays does not take them.
 *
 * @example
 * ```ts
 * import { RtspResponseReader } from "@arcly/stream/rtsp";
 *
 * const reader = new RtspResponseReader(() => {});
 * const text = "RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\n\r\n";
 * const [response] = reader.push(new TextEncoder().encode(text));
 * console.log(response.status, response.headers.get("cseq")); // 401 2
 * ```
 */
export class RtspResponseReader {
  #reader: MessageReader<StatusLine>;

  /** Make a reader that hands interleaved frames to `onInterleaved`. */
  constructor(onInterleaved: InterleavedHandler, limits: RtspReaderLimits = {}) {
    this.#reader = new MessageReader(onInterleaved, parseStatusLine, withDefaults(limits));
  }

  /** Bytes held of a message not yet complete (a response or an interleaved frame). */
  get buffered(): number {
    return this.#reader.buffered;
  }

  /** Feed received bytes; returns the responses completed by them, in order. */
  push(bytes: Uint8Array): RtspResponse[] {
    return this.#reader.push(bytes).map(({ start, headers, body }) => ({
      ...start,
      headers,
      body,
    }));
  }
}

interface RequestLine {
  method: string;
  uri: string;
  version: string;
}

interface StatusLine {
  status: number;
  reason: string;
}

function withDefaults(limits: RtspReaderLimits) {
  return {
    maxHeadBytes: limits.maxHeadBytes ?? 8192,
    maxHeaders: limits.maxHeaders ?? 64,
    maxBodyBytes: limits.maxBodyBytes ?? 65536,
  };
}

function parseRequestLine(line: string): RequestLine {
  const parts = line.split(/\s+/);
  if (parts.length !== 3 || !/^[A-Z_]{1,32}$/.test(parts[0])) {
    throw new RtspError(400, `malformed request line ${JSON.stringify(line.slice(0, 80))}`, {
      fatal: true,
    });
  }
  const version = parts[2];
  if (!/^RTSP\/\d\.\d$/.test(version)) {
    throw new RtspError(400, `not an RTSP request (version ${JSON.stringify(version)})`, {
      fatal: true,
    });
  }
  return { method: parts[0], uri: parts[1], version };
}

function parseStatusLine(line: string): StatusLine {
  const m = /^RTSP\/1\.\d (\d{3})(?: (.*))?$/.exec(line);
  if (!m) {
    throw new RtspError(400, `malformed status line ${JSON.stringify(line.slice(0, 80))}`, {
      fatal: true,
    });
  }
  return { status: Number(m[1]), reason: m[2] ?? "" };
}

/** Header fields of a response, in order; values are sent as given. */
export type ResponseHeaders = ReadonlyArray<readonly [string, string]>;

const encoder = new TextEncoder();

/**
 * The bytes of an RTSP response. `Content-Length` is added for a non-empty body.
 *
 * @example
 * ```ts
 * import { formatResponse } from "@arcly/stream/rtsp";
 *
 * const bytes = formatResponse(200, [["CSeq", "1"], ["Public", "OPTIONS, DESCRIBE"]]);
 * new TextDecoder().decode(bytes);
 * // "RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS, DESCRIBE\r\n\r\n"
 * ```
 */
export function formatResponse(
  status: number,
  headers: ResponseHeaders,
  body: string | Uint8Array = "",
  reason: string = RTSP_STATUS[status] ?? "Unknown",
): Uint8Array {
  const content = typeof body === "string" ? encoder.encode(body) : body;
  let head = `RTSP/1.0 ${status} ${reason.replace(/[\r\n]/g, " ")}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value.replace(/[\r\n]/g, " ")}\r\n`;
  if (content.length > 0) head += `Content-Length: ${content.length}\r\n`;
  head += "\r\n";
  const headBytes = encoder.encode(head);
  if (content.length === 0) return headBytes;
  const out = new Uint8Array(headBytes.length + content.length);
  out.set(headBytes);
  out.set(content, headBytes.length);
  return out;
}
