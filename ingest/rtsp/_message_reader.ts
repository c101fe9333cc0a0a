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

/** An emptied store larger than this is let go (a peer's one large message is not kept). */
const KEPT_STORE_BYTES = 2048;
const EMPTY = new Uint8Array(0);

/**
 * The incremental splitter. `parseStart` reads (and checks) a message's start line; it
 * throws a fatal {@linkcode RtspError} for a malformed one. Interleaved frames go to
 * `onInterleaved` as views into the pushed bytes or the reader's store, valid only during
 * the call.
 *
 * Complete messages are split from the pushed bytes where they lie; only the part of a
 * message not yet complete is copied, into a store that grows with what the peer sent of it
 * (and no further than the limits let a message be).
 */
export class MessageReader<S> {
  #onInterleaved: (channel: number, data: Uint8Array) => void;
  #parseStart: (line: string) => S;
  #maxHead: number;
  #maxHeaders: number;
  #maxBody: number;
  /** Where the part of a message not yet complete is kept, from 0 to `#end` (after a push). */
  #store: Uint8Array = EMPTY;
  /** What {@linkcode MessageReader.#next} splits: the pushed bytes or the store. */
  #buf: Uint8Array = EMPTY;
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
  }

  /** Bytes held of a message not yet complete. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Bytes of memory the reader holds for a message not yet complete. */
  get capacity(): number {
    return this.#store.length;
  }

  /** Feed received bytes; returns the messages completed by them, in order. */
  push(bytes: Uint8Array): SplitMessage<S>[] {
    const messages: SplitMessage<S>[] = [];
    let offset = 0;
    // A message begun earlier takes from `bytes` what completes it, into the store.
    while (this.#end > this.#start && offset < bytes.length) {
      const n = Math.min(bytes.length - offset, this.#wanted());
      this.#append(bytes.subarray(offset, offset + n));
      offset += n;
      this.#split(messages);
    }
    if (offset < bytes.length) {
      this.#buf = bytes;
      this.#start = offset;
      this.#end = bytes.length;
      this.#split(messages);
    }
    this.#keep();
    return messages;
  }

  /** Split what `#buf` holds into `messages` until a message is not complete. */
  #split(messages: SplitMessage<S>[]): void {
    for (;;) {
      const message = this.#next();
      if (message === undefined) return;
      if (message !== null) messages.push(message);
    }
  }

  /**
   * How many more bytes the held message wants: exactly, for an interleaved frame; all
   * there are, for a text message (its length is known only once its head is).
   */
  #wanted(): number {
    const buf = this.#buf;
    const held = this.#end - this.#start;
    if (buf[this.#start] !== DOLLAR) return Infinity;
    if (held < 4) return 4 - held;
    return 4 + ((buf[this.#start + 2] << 8) | buf[this.#start + 3]) - held;
  }

  /** Add `bytes` to the held message in the store, growing it (doubling) when it is full. */
  #append(bytes: Uint8Array): void {
    const held = this.#end - this.#start;
    const needed = held + bytes.length;
    if (this.#store.length < needed) {
      const store = new Uint8Array(Math.max(needed, 2 * this.#store.length, 256));
      store.set(this.#buf.subarray(this.#start, this.#end));
      this.#store = store;
    } else if (this.#buf !== this.#store || this.#start > 0) {
      this.#store.set(this.#buf.subarray(this.#start, this.#end));
    }
    this.#store.set(bytes, held);
    this.#buf = this.#store;
    this.#start = 0;
    this.#end = needed;
  }

  /** After a push: copy what is held out of the pushed bytes, or let a large store go. */
  #keep(): void {
    if (this.#end > this.#start) {
      if (this.#buf !== this.#store || this.#start > 0) this.#append(EMPTY);
      return;
    }
    if (this.#store.length > KEPT_STORE_BYTES) this.#store = EMPTY;
    this.#buf = this.#store;
    this.#start = this.#end = 0;
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
