/**
 * The HTTP/1.1 request head as the guard reads it for the requests it answers itself
 * (long-lived streams): where the head ends, its request line, its header fields.
 *
 * @module
 */

/** A request head's fields, as far as the guard needs them. */
export interface RequestHead {
  readonly method: string;
  /** The request target as sent (origin form: `/path?query`). */
  readonly target: string;
  /** `HTTP/1.0` or `HTTP/1.1`. */
  readonly version: string;
  readonly headers: Headers;
}

/** The longest request line the guard waits for before it lets the inner server decide. */
export const MAX_REQUEST_LINE = 8 * 1024;
/** The longest head of a request the guard answers itself. */
export const MAX_HEAD = 32 * 1024;

const CR = 0x0d;
const LF = 0x0a;

/** The index just past the first CRLF of `bytes`, or -1. */
export function lineEnd(bytes: Uint8Array): number {
  for (let i = bytes.indexOf(LF); i >= 0; i = bytes.indexOf(LF, i + 1)) {
    if (i > 0 && bytes[i - 1] === CR) return i + 1;
  }
  return -1;
}

/** The index just past the CRLF CRLF that ends the head in `bytes`, or -1. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = bytes.indexOf(LF); i >= 0; i = bytes.indexOf(LF, i + 1)) {
    if (i >= 3 && bytes[i - 1] === CR && bytes[i - 2] === LF && bytes[i - 3] === CR) return i + 1;
  }
  return -1;
}

/**
 * The method and target of a request line (`GET /a HTTP/1.1\r\n`), or `undefined` when it
 * is not one of origin form over HTTP/1.0 or 1.1.
 */
export function parseRequestLine(
  line: string,
): { method: string; target: string; version: string } | undefined {
  const match = /^([A-Z]+) (\/[^ ]*) (HTTP\/1\.[01])\r\n$/.exec(line);
  return match ? { method: match[1], target: match[2], version: match[3] } : undefined;
}

/**
 * The whole head `bytes` (ending with CRLF CRLF), or `undefined` when it is malformed (a
 * bad request line, a field line without a colon, a folded line, a name or value `Headers`
 * refuses).
 */
export function parseRequestHead(bytes: Uint8Array): RequestHead | undefined {
  const text = new TextDecoder("latin1").decode(bytes);
  const first = text.indexOf("\r\n") + 2;
  const line = parseRequestLine(text.slice(0, first));
  if (!line) return undefined;
  const headers = new Headers();
  const fields = text.slice(first, -4);
  if (fields !== "") {
    for (const field of fields.split("\r\n")) {
      const colon = field.indexOf(":");
      if (colon <= 0 || field[0] === " " || field[0] === "\t") return undefined;
      try {
        headers.append(field.slice(0, colon), field.slice(colon + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return { ...line, headers };
}
