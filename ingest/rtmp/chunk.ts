/**
 * The RTMP chunk stream: reassembling messages from interleaved chunks, and
 * splitting messages into chunks.
 *
 * @module
 */

import { RtmpError } from "./error.ts";
import { MessageType, type RtmpMessage } from "./message.ts";

/** The chunk size both directions start with. */
export const DEFAULT_CHUNK_SIZE = 128;
/** The largest chunk size RTMP can express (31 bits). */
export const MAX_CHUNK_SIZE = 0x7fff_ffff;
/**
 * The default cap on one message's length: 8 MiB (the wire format allows up to
 * 16 MiB - 1; real video frames stay far below this).
 */
export const DEFAULT_MAX_MESSAGE_LENGTH = 8 * 1024 * 1024;

const MESSAGE_HEADER_LENGTH = [11, 7, 3, 0];
const EXTENDED = 0xff_ffff;
const MIN_CSID = 2;
const MAX_CSID = 65599;
/**
 * The default cap on the bytes one reader holds for incomplete messages, across all
 * its chunk streams: 16 MiB (two messages of the default maximum length).
 */
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
/** A message buffer grows to at least this many bytes (or the message's length if shorter). */
const MIN_ALLOCATION = 4096;
const EMPTY = new Uint8Array(0);
/** The longest chunk header: a 3-byte basic header, 11 bytes of message header, 4 extended. */
const MAX_HEADER_LENGTH = 18;
/**
 * Where every reader gathers a chunk header during {@linkcode ChunkReader.push} (which is
 * synchronous, so one is enough); a reader keeps its own copy only of a header cut off at the
 * end of what it was pushed, so a server's thousands of mostly idle readers hold none.
 */
const HEADER = new Uint8Array(MAX_HEADER_LENGTH);

interface ReadState {
  timestamp: number;
  /** The last timestamp field: a delta for types 1-3, the absolute time for type 0. */
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
  /** Whether the last type 0-2 header carried an extended timestamp. */
  extended: boolean;
  /** The extended timestamp field last read on this chunk stream. */
  extValue: number;
  /** The message being reassembled, or undefined between messages. */
  payload: Uint8Array | undefined;
  filled: number;
}

/** Limits applied by a {@linkcode ChunkReader}. */
export interface ChunkReaderOptions {
  /** Messages longer than this are a protocol error. Default 8 MiB. */
  maxMessageLength?: number;
  /** More distinct chunk stream ids than this are a protocol error. Default 64. */
  maxChunkStreams?: number;
  /**
   * Holding more than this many bytes of incomplete messages, summed over every chunk
   * stream, is a protocol error. Default {@linkcode DEFAULT_MAX_BUFFERED_BYTES}; it can be
   * changed later with {@linkcode ChunkReader.maxBufferedBytes} (e.g. raised after `connect`).
   */
  maxBufferedBytes?: number;
}

/**
 * Reassembles RTMP messages from the bytes of a chunk stream (after the handshake).
 *
 * Handles all four chunk header types, extended timestamps (including their
 * repetition in type 3 chunks, tolerated when a peer omits it), chunk stream ids
 * 2 to 65599 with per-stream state, interleaved messages, and applies the
 * protocol control messages that change parsing: Set Chunk Size and Abort
 * (these two are consumed, not returned). Every message body is copied into its
 * own buffer, so the caller may reuse the buffer it passes to
 * {@linkcode ChunkReader.push}. Bad input throws {@linkcode RtmpError}.
 *
 * Memory follows what the peer sent, not what it announced: a message's buffer grows
 * (by doubling, from 4 KiB) only as its bytes arrive, so it is at most twice its bytes
 * so far plus 4 KiB, and {@linkcode ChunkReader.bufferedBytes} (all incomplete messages
 * together) may not pass {@linkcode ChunkReader.maxBufferedBytes}.
 *
 * @example Read one type 0 chunk
 * ```ts
 * import { ChunkReader } from "@arcly/stream/rtmp";
 *
 * const reader = new ChunkReader();
 * const [msg] = reader.push(new Uint8Array([
 *   0x03, 0, 0, 0x0a, 0, 0, 2, 0x14, 1, 0, 0, 0, 0xab, 0xcd,
 * ]));
 * // msg: { csid: 3, typeId: 20, streamId: 1, timestamp: 10, payload: [0xab, 0xcd] }
 * ```
 */
export class ChunkReader {
  #chunkSize = DEFAULT_CHUNK_SIZE;
  #maxMessageLength: number;
  #maxChunkStreams: number;
  #streams = new Map<number, ReadState>();
  /** The start of a chunk header cut off at the end of the last push (into `HEADER` next). */
  #cutHeader: Uint8Array | undefined;
  #headerFilled = 0;
  /** The chunk stream whose chunk payload is being read. */
  #current: ReadState | undefined;
  #currentCsid = 0;
  #chunkLeft = 0;
  #bytesReceived = 0;
  #buffered = 0;
  #maxBuffered: number;

  /** Make a reader with the default chunk size of 128. */
  constructor(opts: ChunkReaderOptions = {}) {
    this.#maxMessageLength = opts.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH;
    this.#maxChunkStreams = opts.maxChunkStreams ?? 64;
    this.#maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  }

  /** Bytes allocated now for incomplete messages, over every chunk stream. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** The cap on {@linkcode ChunkReader.bufferedBytes}; passing it is a protocol error. */
  get maxBufferedBytes(): number {
    return this.#maxBuffered;
  }

  set maxBufferedBytes(bytes: number) {
    this.#maxBuffered = bytes;
  }

  /** The peer's current chunk size. */
  get chunkSize(): number {
    return this.#chunkSize;
  }

  /** Bytes pushed so far (for acknowledgements). */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /**
   * Feed bytes from the peer; returns the messages they complete, in order.
   * Throws {@linkcode RtmpError} on a protocol violation; the reader is then unusable.
   */
  push(data: Uint8Array): RtmpMessage[] {
    this.#bytesReceived += data.length;
    const out: RtmpMessage[] = [];
    if (this.#cutHeader) HEADER.set(this.#cutHeader);
    this.#cutHeader = undefined;
    this.#consume(data, out);
    if (this.#headerFilled > 0) this.#cutHeader = HEADER.slice(0, this.#headerFilled);
    return out;
  }

  #consume(data: Uint8Array, out: RtmpMessage[]): void {
    let i = 0;
    while (i < data.length) {
      if (this.#chunkLeft > 0) {
        const n = Math.min(this.#chunkLeft, data.length - i);
        this.#append(data.subarray(i, i + n), out);
        i += n;
        continue;
      }
      let need = this.#headerLength();
      while (this.#headerFilled < need && i < data.length) {
        const n = Math.min(need - this.#headerFilled, data.length - i);
        HEADER.set(data.subarray(i, i + n), this.#headerFilled);
        this.#headerFilled += n;
        i += n;
        need = this.#headerLength();
      }
      if (this.#headerFilled < need) return;
      const replay = this.#parseHeader(need, out);
      this.#headerFilled = 0;
      if (replay) this.#consume(replay, out);
    }
  }

  /** How many header bytes the chunk being read needs, given the bytes seen so far. */
  #headerLength(): number {
    const h = HEADER;
    if (this.#headerFilled < 1) return 1;
    const fmt = h[0] >> 6;
    const low = h[0] & 0x3f;
    const basic = low === 0 ? 2 : low === 1 ? 3 : 1;
    if (this.#headerFilled < basic) return basic;
    const base = basic + MESSAGE_HEADER_LENGTH[fmt];
    if (fmt === 3) return this.#streams.get(csidOf(h))?.extended ? base + 4 : base;
    if (this.#headerFilled < base) return base;
    return readUint24(h, basic) === EXTENDED ? base + 4 : base;
  }

  /**
   * Apply a complete chunk header. Returns bytes to parse again when a type 3
   * header turns out not to repeat the extended timestamp (they are payload).
   */
  #parseHeader(length: number, out: RtmpMessage[]): Uint8Array | undefined {
    const h = HEADER;
    const fmt = h[0] >> 6;
    const csid = csidOf(h);
    const basic = (h[0] & 0x3f) === 0 ? 2 : (h[0] & 0x3f) === 1 ? 3 : 1;
    const p = basic;
    let cs = this.#streams.get(csid);
    if (!cs) {
      if (fmt !== 0) throw new RtmpError(`chunk stream ${csid} starts with a type ${fmt} header`);
      if (this.#streams.size >= this.#maxChunkStreams) {
        throw new RtmpError(`more than ${this.#maxChunkStreams} chunk streams`);
      }
      cs = {
        timestamp: 0,
        delta: 0,
        length: 0,
        typeId: 0,
        streamId: 0,
        extended: false,
        extValue: 0,
        payload: undefined,
        filled: 0,
      };
      this.#streams.set(csid, cs);
    }
    const extAt = basic + MESSAGE_HEADER_LENGTH[fmt];
    const hasExt = length > extAt;
    const ext = hasExt ? readUint32(h, extAt) : 0;
    this.#current = cs;
    this.#currentCsid = csid;

    if (fmt === 3) {
      if (cs.payload) {
        this.#chunkLeft = Math.min(this.#chunkSize, cs.length - cs.filled);
        if (hasExt && ext !== cs.extValue) return h.slice(extAt, length);
        return undefined;
      }
      if (hasExt) cs.delta = cs.extValue = ext;
      cs.timestamp = (cs.timestamp + cs.delta) >>> 0;
      this.#startMessage(cs, out);
      return undefined;
    }

    if (cs.payload) {
      throw new RtmpError(
        `type ${fmt} header on chunk stream ${csid} before its message was complete`,
      );
    }
    const field = readUint24(h, p);
    cs.extended = field === EXTENDED;
    const time = cs.extended ? ext : field;
    if (cs.extended) cs.extValue = ext;
    if (fmt <= 1) {
      cs.length = readUint24(h, p + 3);
      cs.typeId = h[p + 6];
    }
    if (fmt === 0) {
      cs.streamId = h[p + 7] | h[p + 8] << 8 | h[p + 9] << 16 | (h[p + 10] << 24 >>> 0);
      cs.timestamp = time;
    } else {
      cs.timestamp = (cs.timestamp + time) >>> 0;
    }
    cs.delta = time;
    this.#startMessage(cs, out);
    return undefined;
  }

  #startMessage(cs: ReadState, out: RtmpMessage[]): void {
    if (cs.length > this.#maxMessageLength) {
      throw new RtmpError(
        `message length ${cs.length} exceeds the limit of ${this.#maxMessageLength}`,
      );
    }
    cs.filled = 0;
    if (cs.length === 0) {
      cs.payload = new Uint8Array(0);
      this.#complete(cs, out);
      return;
    }
    cs.payload = EMPTY;
    this.#chunkLeft = Math.min(this.#chunkSize, cs.length);
  }

  #append(bytes: Uint8Array, out: RtmpMessage[]): void {
    const cs = this.#current!;
    let payload = cs.payload!;
    const need = cs.filled + bytes.length;
    if (need > payload.length) {
      const size = Math.min(cs.length, Math.max(need, payload.length * 2, MIN_ALLOCATION));
      const buffered = this.#buffered - payload.length + size;
      if (buffered > this.#maxBuffered) {
        throw new RtmpError(
          `incomplete messages would hold ${buffered} bytes, over the limit of ${this.#maxBuffered}`,
        );
      }
      const grown = new Uint8Array(size);
      grown.set(payload.subarray(0, cs.filled));
      this.#buffered = buffered;
      cs.payload = payload = grown;
    }
    payload.set(bytes, cs.filled);
    cs.filled += bytes.length;
    this.#chunkLeft -= bytes.length;
    if (cs.filled === cs.length) this.#complete(cs, out);
  }

  #complete(cs: ReadState, out: RtmpMessage[]): void {
    const payload = cs.payload!;
    this.#drop(cs);
    this.#chunkLeft = 0;
    if (cs.typeId === MessageType.SET_CHUNK_SIZE) {
      this.#chunkSize = parseChunkSize(payload);
      return;
    }
    if (cs.typeId === MessageType.ABORT) {
      const target = this.#streams.get(readControlValue(payload, "Abort"));
      if (target) this.#drop(target);
      return;
    }
    out.push({
      csid: this.#currentCsid,
      typeId: cs.typeId,
      streamId: cs.streamId,
      timestamp: cs.timestamp,
      payload,
    });
  }

  /** Forget a chunk stream's incomplete message (completed or aborted). */
  #drop(cs: ReadState): void {
    this.#buffered -= cs.payload?.length ?? 0;
    cs.payload = undefined;
    cs.filled = 0;
  }
}

interface WriteState {
  timestamp: number;
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
}

/**
 * Splits messages into chunks. Each message becomes one buffer, sized exactly and
 * filled in one pass (no per-chunk allocation). With `compress` (the default) the
 * first chunk uses the smallest header type the previous message on the same chunk
 * stream allows (type 1, 2 or 3); extended timestamps are repeated in type 3 chunks.
 *
 * @example
 * ```ts
 * import { ChunkWriter, MessageType } from "@arcly/stream/rtmp";
 *
 * const writer = new ChunkWriter();
 * const bytes = writer.encode({
 *   csid: 3,
 *   typeId: MessageType.COMMAND_AMF0,
 *   streamId: 0,
 *   timestamp: 0,
 *   payload: new Uint8Array(200),
 * });
 * bytes.length; // 12 + 128 + 1 + 72
 * ```
 */
export class ChunkWriter {
  #chunkSize = DEFAULT_CHUNK_SIZE;
  #streams = new Map<number, WriteState>();

  /**
   * The chunk size used from the next message on. Set it after encoding the Set
   * Chunk Size message that announces it.
   */
  get chunkSize(): number {
    return this.#chunkSize;
  }

  set chunkSize(size: number) {
    if (!Number.isInteger(size) || size < 1 || size > MAX_CHUNK_SIZE) {
      throw new RangeError(`chunk size ${size} out of range 1..${MAX_CHUNK_SIZE}`);
    }
    this.#chunkSize = size;
  }

  /**
   * Serialise one message. With `compress` false the header is always type 0, and the chunk
   * stream's next compressed message starts with a type 0 header too.
   */
  encode(msg: RtmpMessage, compress = true): Uint8Array {
    const { csid, typeId, streamId, payload } = msg;
    if (!Number.isInteger(csid) || csid < MIN_CSID || csid > MAX_CSID) {
      throw new RangeError(`chunk stream id ${csid} out of range ${MIN_CSID}..${MAX_CSID}`);
    }
    if (payload.length > 0xff_ffff) throw new RangeError(`message too long: ${payload.length}`);
    const timestamp = msg.timestamp >>> 0;
    const length = payload.length;
    const prev = compress ? this.#streams.get(csid) : undefined;
    let fmt = 0;
    let field = timestamp;
    if (prev && prev.streamId === streamId) {
      const delta = (timestamp - prev.timestamp) >>> 0;
      if (delta < 0x8000_0000) {
        fmt = 1;
        field = delta;
        if (prev.length === length && prev.typeId === typeId) fmt = delta === prev.delta ? 3 : 2;
      }
    }
    if (!compress) {
      // Nothing is kept for a type 0 header: the next compressed message on this chunk
      // stream starts with type 0 again (a server's per-player writer only ever sends its
      // per-player configs this way, and keeps no state for them).
      this.#streams.delete(csid);
    } else if (prev) {
      prev.timestamp = timestamp;
      prev.delta = field;
      prev.length = length;
      prev.typeId = typeId;
      prev.streamId = streamId;
    } else this.#streams.set(csid, { timestamp, delta: field, length, typeId, streamId });

    const ext = field >= EXTENDED ? 4 : 0;
    const basic = csid < 64 ? 1 : csid < 320 ? 2 : 3;
    const size = this.#chunkSize;
    const chunks = length === 0 ? 1 : Math.ceil(length / size);
    const out = new Uint8Array(
      basic + MESSAGE_HEADER_LENGTH[fmt] + ext + (chunks - 1) * (basic + ext) + length,
    );
    let o = writeBasicHeader(out, 0, fmt, csid);
    if (fmt <= 2) o = writeUint24(out, o, ext ? EXTENDED : field);
    if (fmt <= 1) {
      o = writeUint24(out, o, length);
      out[o++] = typeId;
    }
    if (fmt === 0) {
      out[o++] = streamId & 0xff;
      out[o++] = (streamId >>> 8) & 0xff;
      out[o++] = (streamId >>> 16) & 0xff;
      out[o++] = (streamId >>> 24) & 0xff;
    }
    if (ext) o = writeUint32(out, o, field);
    for (let at = 0; at < length; at += size) {
      if (at > 0) {
        o = writeBasicHeader(out, o, 3, csid);
        if (ext) o = writeUint32(out, o, field);
      }
      const end = Math.min(at + size, length);
      out.set(payload.subarray(at, end), o);
      o += end - at;
    }
    return out;
  }
}

/** The chunk stream id of a basic header at the start of `h`. */
function csidOf(h: Uint8Array): number {
  const low = h[0] & 0x3f;
  if (low === 0) return 64 + h[1];
  if (low === 1) return 64 + h[1] + h[2] * 256;
  return low;
}

function writeBasicHeader(out: Uint8Array, o: number, fmt: number, csid: number): number {
  if (csid < 64) {
    out[o] = fmt << 6 | csid;
    return o + 1;
  }
  if (csid < 320) {
    out[o] = fmt << 6;
    out[o + 1] = csid - 64;
    return o + 2;
  }
  out[o] = fmt << 6 | 1;
  out[o + 1] = (csid - 64) & 0xff;
  out[o + 2] = (csid - 64) >> 8;
  return o + 3;
}

/**
 * Parse the body of a Set Chunk Size message: 1 to 2^31-1 (the top bit must be 0).
 *
 * @example
 * ```ts
 * import { parseChunkSize } from "@arcly/stream/rtmp";
 *
 * parseChunkSize(new Uint8Array([0, 0, 0x10, 0])); // 4096
 * ```
 */
export function parseChunkSize(payload: Uint8Array): number {
  const size = readControlValue(payload, "Set Chunk Size");
  if (size < 1 || size > MAX_CHUNK_SIZE) throw new RtmpError(`chunk size ${size} out of range`);
  return size;
}

/**
 * Read the 32-bit big-endian value that starts a protocol control message body
 * (Set Chunk Size, Abort, Acknowledgement, Window Acknowledgement Size, Set Peer Bandwidth).
 *
 * @example
 * ```ts
 * import { readControlValue } from "@arcly/stream/rtmp";
 *
 * readControlValue(new Uint8Array([0, 0x26, 0x25, 0xa0]), "Window Ack Size"); // 2500000
 * ```
 */
export function readControlValue(payload: Uint8Array, what: string): number {
  if (payload.length < 4) {
    throw new RtmpError(`${what} message too short (${payload.length} bytes)`);
  }
  return readUint32(payload, 0);
}

function readUint24(b: Uint8Array, o: number): number {
  return b[o] << 16 | b[o + 1] << 8 | b[o + 2];
}

function readUint32(b: Uint8Array, o: number): number {
  return (b[o] << 24 >>> 0) + (b[o + 1] << 16 | b[o + 2] << 8 | b[o + 3]);
}

function writeUint24(out: Uint8Array, o: number, v: number): number {
  out[o] = v >>> 16 & 0xff;
  out[o + 1] = v >>> 8 & 0xff;
  out[o + 2] = v & 0xff;
  return o + 3;
}

function writeUint32(out: Uint8Array, o: number, v: number): number {
  out[o] = v >>> 24 & 0xff;
  out[o + 1] = v >>> 16 & 0xff;
  out[o + 2] = v >>> 8 & 0xff;
  out[o + 3] = v & 0xff;
  return o + 4;
}
