/**
 * Splitting the bytes of one RTSP connection into messages (a start line, header fields,
 * a body) and interleaved binary frames: what a server reading requests and a client
 * reading responses share.
 *
 * @module
 */

import { RtspError } from "./message.ts";

/** Limits that keep one connection from using unbounded memory. */
export interface MessageLimits {
  readonly maxHeadBytes: number;
  readonly maxHeaders: number;
  readonly maxBodyBytes: number;
}

/** One message as split: its start line (already checked), header fields, body. */
export interface SplitMessage<S> {
  readonly start: S;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

const DOLLAR = 0x24;
const latin1 = new TextDecoder("latin1");

/**
 * The incremental splitter. `parseStart` reads (and checks) a message's start line; it
 * throws a fatal {@linkcode RtspError} for a malformed one. Interleaved frames go to
 * `onInterleaved` as views into the buffer, valid only during the call.
 */
export class MessageReader<S> {
  #onInterleaved: (channel: number, data: Uint8Array) => void;
  #parseStart: (line: string) => S;
  #maxHead: number;
  #maxHeaders: number;
  #maxBody: number;
  #buf: Uint8Array;
  #start = 0;
  #end = 0;

  constructor(
    onInterleaved: (channel: number, data: Uint8Array) => void,
    parseStart: (line: string) => S,
    limits: MessageLimits,
  ) {
    this.#onInterleaved = onInterleaved;
    this.#parseStart = parseStart;
    this.#maxHead = limits.maxHeadBytes;
    this.#maxHeaders = limits.maxHeaders;
    this.#maxBody = limits.maxBodyBytes;
    this.#buf = new Uint8Array(Math.max(4 + 65535, this.#maxHead + this.#maxBody) + 4);
  }

  /** Bytes held of a message not yet complete. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Feed received bytes; returns the messages completed by them, in order. */
  push(bytes: Uint8Array): SplitMessage<S>[] {
    const messages: SplitMessage<S>[] = [];
    let offset = 0;
    while (offset < bytes.length) {
      if (this.#start > 0 && this.#start === this.#end) this.#start = this.#end = 0;
      if (this.#end === this.#buf.length) this.#compact();
      const n = Math.min(bytes.length - offset, this.#buf.length - this.#end);
      this.#buf.set(bytes.subarray(offset, offset + n), this.#end);
      this.#end += n;
      offset += n;
      for (;;) {
        const message = this.#next();
        if (message === undefined) break;
        if (message !== null) messages.push(message);
      }
    }
    return messages;
  }

  #compact(): void {
    this.#buf.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
  }

  /** Parses one message: a message, null for an interleaved frame, undefined for "need more". */
  #next(): SplitMessage<S> | null | undefined {
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
        throw new RtspError(400, `message head longer than ${this.#maxHead} bytes`, {
          fatal: true,
        });
      }
      return undefined;
    }
    const lines = latin1.decode(buf.subarray(this.#start, headEnd)).split(/\r?\n/);
    const start = this.#parseStart(lines[0].trim());
    const headers = this.#parseHeaders(lines);
    const bodyAt = headEnd + (buf[headEnd] === 0x0d ? 4 : 2);
    const length = contentLength(headers, this.#maxBody);
    if (this.#end - bodyAt < length) return undefined;
    const body = buf.slice(bodyAt, bodyAt + length);
    this.#start = bodyAt + length;
    return { start, headers, body };
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

  #parseHeaders(lines: string[]): Headers {
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
    return headers;
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
