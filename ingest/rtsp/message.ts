/**
 * RTSP 1.0 messages on the wire (RFC 2326): an incremental reader for requests and
 * interleaved binary frames sharing one TCP connection, and response formatting.
 *
 * @module
 */

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

const DOLLAR = 0x24;
const latin1 = new TextDecoder("latin1");

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
  #onInterleaved: InterleavedHandler;
  #maxHead: number;
  #maxHeaders: number;
  #maxBody: number;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  /** Make a reader that hands interleaved frames to `onInterleaved`. */
  constructor(onInterleaved: InterleavedHandler, limits: RtspReaderLimits = {}) {
    this.#onInterleaved = onInterleaved;
    this.#maxHead = limits.maxHeadBytes ?? 8192;
    this.#maxHeaders = limits.maxHeaders ?? 64;
    this.#maxBody = limits.maxBodyBytes ?? 65536;
    this.#buf = new Uint8Array(Math.max(4 + 65535, this.#maxHead + this.#maxBody) + 4);
  }

  /** Bytes held of a message not yet complete (a request or an interleaved frame). */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Feed received bytes; returns the requests completed by them, in order. */
  push(bytes: Uint8Array): RtspRequest[] {
    const requests: RtspRequest[] = [];
    let offset = 0;
    while (offset < bytes.length) {
      if (this.#start > 0 && this.#start === this.#end) this.#start = this.#end = 0;
      if (this.#end === this.#buf.length) this.#compact();
      const n = Math.min(bytes.length - offset, this.#buf.length - this.#end);
      this.#buf.set(bytes.subarray(offset, offset + n), this.#end);
      this.#end += n;
      offset += n;
      for (;;) {
        const request = this.#next();
        if (request === undefined) break;
        if (request !== null) requests.push(request);
      }
    }
    return requests;
  }

  #compact(): void {
    this.#buf.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
  }

  /** Parses one message: a request, null for an interleaved frame, undefined for "need more". */
  #next(): RtspRequest | null | undefined {
    const buf = this.#buf;
    while (this.#start < this.#end && (buf[this.#start] === 0x0d || buf[this.#start] === 0x0a)) {
      this.#start++; // blank lines between messages
    }
    const available = this.#end - this.#start;
    if (available === 0) return undefined;
    if (buf[this.#start] === DOLLAR) {
      if (available < 4) return undefined;
      const len = (buf[this.#start + 2] << 8) | buf[this.#start + 3];
      if (available < 4 + len) return undefined;
      const at = this.#start + 4;
      this.#start = at + len;
      this.#onInterleaved(buf[at - 3], buf.subarray(at, at + len));
      return null;
    }
    const headEnd = this.#findHeadEnd();
    if (headEnd < 0) {
      if (available > this.#maxHead) {
        throw new RtspError(400, `request head longer than ${this.#maxHead} bytes`, {
          fatal: true,
        });
      }
      return undefined;
    }
    const head = latin1.decode(buf.subarray(this.#start, headEnd));
    const { method, uri, version, headers } = this.#parseHead(head);
    const bodyAt = headEnd + (buf[headEnd] === 0x0d ? 4 : 2);
    const length = contentLength(headers, this.#maxBody);
    if (this.#end - bodyAt < length) return undefined;
    const body = buf.slice(bodyAt, bodyAt + length);
    this.#start = bodyAt + length;
    return { method, uri, version, headers, body };
  }

  /** Index of the blank line ending the head (`\r\n\r\n` or `\n\n`), or -1. */
  #findHeadEnd(): number {
    const buf = this.#buf;
    const limit = Math.min(this.#end, this.#start + this.#maxHead + 4);
    for (let i = this.#start; i + 1 < limit; i++) {
      if (buf[i] !== 0x0a && buf[i] !== 0x0d) continue;
      if (buf[i] === 0x0d && i + 3 < limit && buf[i + 1] === 0x0a && buf[i + 2] === 0x0d) {
        if (buf[i + 3] === 0x0a) return i;
      }
      if (buf[i] === 0x0a && buf[i + 1] === 0x0a) return i;
    }
    return -1;
  }

  #parseHead(head: string): { method: string; uri: string; version: string; headers: Headers } {
    const lines = head.split(/\r?\n/);
    const requestLine = lines[0].trim();
    const parts = requestLine.split(/\s+/);
    if (parts.length !== 3 || !/^[A-Z_]{1,32}$/.test(parts[0])) {
      throw new RtspError(
        400,
        `malformed request line ${JSON.stringify(requestLine.slice(0, 80))}`,
        {
          fatal: true,
        },
      );
    }
    const headers = new Headers();
    let count = 0;
    let last = "";
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      if (line === "") continue;
      if ((line[0] === " " || line[0] === "\t") && last) {
        headers.set(last, `${headers.get(last)} ${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(":");
      if (++count > this.#maxHeaders) {
        throw new RtspError(400, `more than ${this.#maxHeaders} header fields`, { fatal: true });
      }
      if (colon <= 0) {
        throw new RtspError(400, `malformed header line ${JSON.stringify(line.slice(0, 80))}`, {
          fatal: true,
        });
      }
      last = line.slice(0, colon).trim();
      try {
        headers.append(last, line.slice(colon + 1).trim());
      } catch {
        throw new RtspError(400, `invalid header field ${JSON.stringify(last.slice(0, 40))}`, {
          fatal: true,
        });
      }
    }
    const version = parts[2];
    if (!/^RTSP\/\d\.\d$/.test(version)) {
      throw new RtspError(400, `not an RTSP request (version ${JSON.stringify(version)})`, {
        fatal: true,
      });
    }
    return { method: parts[0], uri: parts[1], version, headers };
  }
}

function contentLength(headers: Headers, max: number): number {
  const text = headers.get("content-length");
  if (text === null) return 0;
  if (!/^\d{1,15}$/.test(text)) {
    throw new RtspError(400, `invalid Content-Length ${JSON.stringify(text.slice(0, 40))}`, {
      fatal: true,
    });
  }
  const length = Number(text);
  if (length > max) {
    throw new RtspError(413, `Content-Length ${length} exceeds ${max} bytes`, { fatal: true });
  }
  return length;
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
