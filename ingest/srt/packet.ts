/**
 * SRT packets on the wire (draft-sharabayko-srt §3): the 16-byte header shared by data
 * and control packets, the control packets other than the handshake (keep-alive, ACK,
 * NAK, ACKACK, shutdown, drop request), and 31-bit sequence number arithmetic.
 *
 * @module
 */

import { SrtError } from "./error.ts";
import { readU32, writeU32 } from "./_wire.ts";

/** Bytes in every SRT packet header. */
export const SRT_HEADER_SIZE = 16;

/** Sequence numbers are 31 bits and wrap to 0. */
export const SEQ_MASK = 0x7fffffff;

/** Message numbers are 26 bits (with the retransmission flag) and wrap to 1. */
export const MSGNO_MASK = 0x03ffffff;

/**
 * Control packet types (the 15 bits after the F bit).
 *
 * @example
 * ```ts
 * import { ControlType } from "@arcly/stream/srt";
 *
 * ControlType.ACK; // 2
 * ```
 */
export const ControlType = {
  /** Connection setup; see `parseHandshake`. */
  HANDSHAKE: 0x0000,
  /** Sent after a second of silence so the peer does not time out. */
  KEEPALIVE: 0x0001,
  /** Acknowledges every packet before a sequence number; carries RTT and rates. */
  ACK: 0x0002,
  /** Negative acknowledgement: a list of lost sequence numbers. */
  NAK: 0x0003,
  /** Congestion warning (unused by live transmission). */
  CONGESTION_WARNING: 0x0004,
  /** The peer closes the connection. */
  SHUTDOWN: 0x0005,
  /** Acknowledges a full ACK, so the receiver can measure the round-trip time. */
  ACKACK: 0x0006,
  /** The sender gave up on a message: the receiver must stop waiting for it. */
  DROPREQ: 0x0007,
  /** The peer reports an error (file transmission). */
  PEERERROR: 0x0008,
  /** An extended type given by the subtype (SRT 1.2 handshake messages). */
  USER: 0x7fff,
} as const;

/**
 * The position of a data packet in its message (the `PP` bits). Live streams send every
 * packet as a whole message, `SOLO`.
 *
 * @example
 * ```ts
 * import { PacketPosition } from "@arcly/stream/srt";
 *
 * PacketPosition.SOLO; // 3
 * ```
 */
export const PacketPosition = {
  /** A packet in the middle of a message. */
  MIDDLE: 0,
  /** The last packet of a message. */
  LAST: 1,
  /** The first packet of a message. */
  FIRST: 2,
  /** A message in one packet. */
  SOLO: 3,
} as const;

/** The fields of a data packet header. */
export interface DataHeader {
  /** Packet sequence number (31 bits). */
  seq: number;
  /** One of {@linkcode PacketPosition}. */
  position: number;
  /** The O flag: deliver messages in order. */
  inOrder: boolean;
  /** Encryption key flags (0: not encrypted, 1: even key, 2: odd key). */
  key: number;
  /** The R flag: this is a retransmission. */
  retransmitted: boolean;
  /** Message number (26 bits). */
  msgNo: number;
  /** Microseconds since the sender's connection started (32 bits, wraps). */
  timestamp: number;
  /** The receiving side's socket id. */
  socketId: number;
}

/**
 * Whether `packet` is a control packet (F bit set).
 *
 * @example
 * ```ts
 * import { isControl } from "@arcly/stream/srt";
 *
 * isControl(new Uint8Array([0x80, 2, 0, 0])); // true
 * ```
 */
export function isControl(packet: Uint8Array): boolean {
  return (packet[0] & 0x80) !== 0;
}

/**
 * The control type of a control packet (one of {@linkcode ControlType}).
 *
 * @example
 * ```ts
 * import { ControlType, controlType } from "@arcly/stream/srt";
 *
 * controlType(new Uint8Array([0x80, 0x02, 0, 0])) === ControlType.ACK; // true
 * ```
 */
export function controlType(packet: Uint8Array): number {
  return ((packet[0] & 0x7f) << 8) | packet[1];
}

/**
 * The destination socket id of any packet (the fourth header word).
 *
 * @example
 * ```ts
 * import { destinationSocket } from "@arcly/stream/srt";
 *
 * destinationSocket(new Uint8Array(16).fill(1)); // 16843009
 * ```
 */
export function destinationSocket(packet: Uint8Array): number {
  return readU32(packet, 12);
}

/**
 * The timestamp of any packet: microseconds since the sender's connection started.
 *
 * @example
 * ```ts
 * import { packetTimestamp } from "@arcly/stream/srt";
 *
 * packetTimestamp(new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0])); // 1000
 * ```
 */
export function packetTimestamp(packet: Uint8Array): number {
  return readU32(packet, 8);
}

/**
 * Parses the header of a data packet.
 *
 * @throws {SrtError} when the packet is shorter than a header or is a control packet.
 *
 * @example
 * ```ts
 * import { parseDataHeader } from "@arcly/stream/srt";
 *
 * const h = parseDataHeader(new Uint8Array([
 *   0, 0, 0, 5, 0xe0, 0, 0, 1, 0, 0, 0x03, 0xe8, 0, 0, 0, 9,
 * ]));
 * console.log(h.seq, h.msgNo, h.timestamp, h.socketId); // 5 1 1000 9
 * ```
 */
export function parseDataHeader(packet: Uint8Array): DataHeader {
  if (packet.length < SRT_HEADER_SIZE) {
    throw new SrtError(`data packet of ${packet.length} bytes is shorter than its header`);
  }
  if (isControl(packet)) throw new SrtError("not a data packet");
  const word1 = readU32(packet, 4);
  return {
    seq: readU32(packet, 0) & SEQ_MASK,
    position: word1 >>> 30,
    inOrder: (word1 & 0x20000000) !== 0,
    key: (word1 >>> 27) & 3,
    retransmitted: (word1 & 0x04000000) !== 0,
    msgNo: word1 & MSGNO_MASK,
    timestamp: readU32(packet, 8),
    socketId: readU32(packet, 12),
  };
}

/**
 * Writes a data packet header into the first 16 bytes of `out`.
 *
 * @example
 * ```ts
 * import { PacketPosition, writeDataHeader } from "@arcly/stream/srt";
 *
 * const packet = new Uint8Array(16 + 188);
 * writeDataHeader(packet, {
 *   seq: 5, position: PacketPosition.SOLO, inOrder: true, key: 0, retransmitted: false,
 *   msgNo: 1, timestamp: 1000, socketId: 9,
 * });
 * packet[4]; // 0xe0
 * ```
 */
export function writeDataHeader(out: Uint8Array, h: DataHeader): void {
  writeU32(out, 0, h.seq & SEQ_MASK);
  writeU32(
    out,
    4,
    ((h.position & 3) << 30) | (h.inOrder ? 0x20000000 : 0) | ((h.key & 3) << 27) |
      (h.retransmitted ? 0x04000000 : 0) | (h.msgNo & MSGNO_MASK),
  );
  writeU32(out, 8, h.timestamp);
  writeU32(out, 12, h.socketId);
}

/**
 * Makes a control packet: the header (type, subtype, type-specific word, timestamp,
 * destination socket) followed by `cifWords` 32-bit words of control information, all
 * zero, for the caller to fill (word `i` at byte `16 + 4 * i`).
 *
 * @example
 * ```ts
 * import { ControlType, controlPacket } from "@arcly/stream/srt";
 *
 * const keepalive = controlPacket(ControlType.KEEPALIVE, 0, 0, 1000, 9, 1);
 * keepalive.length; // 20
 * ```
 */
export function controlPacket(
  type: number,
  subtype: number,
  info: number,
  timestamp: number,
  socketId: number,
  cifWords: number,
): Uint8Array {
  const out = new Uint8Array(SRT_HEADER_SIZE + cifWords * 4);
  writeU32(out, 0, (0x80000000 | ((type & 0x7fff) << 16) | (subtype & 0xffff)) >>> 0);
  writeU32(out, 4, info);
  writeU32(out, 8, timestamp);
  writeU32(out, 12, socketId);
  return out;
}

/**
 * A keep-alive packet. libsrt pads it, like SHUTDOWN and ACKACK, with one zero word.
 *
 * @example
 * ```ts
 * import { keepAlivePacket } from "@arcly/stream/srt";
 *
 * keepAlivePacket(1000, 9).length; // 20
 * ```
 */
export function keepAlivePacket(timestamp: number, socketId: number): Uint8Array {
  return controlPacket(ControlType.KEEPALIVE, 0, 0, timestamp, socketId, 1);
}

/**
 * A shutdown packet.
 *
 * @example
 * ```ts
 * import { shutdownPacket } from "@arcly/stream/srt";
 *
 * shutdownPacket(1000, 9)[1]; // 5
 * ```
 */
export function shutdownPacket(timestamp: number, socketId: number): Uint8Array {
  return controlPacket(ControlType.SHUTDOWN, 0, 0, timestamp, socketId, 1);
}

/**
 * An ACKACK packet answering the full ACK numbered `ackNo`.
 *
 * @example
 * ```ts
 * import { ackAckPacket } from "@arcly/stream/srt";
 *
 * ackAckPacket(7, 1000, 9)[7]; // 7
 * ```
 */
export function ackAckPacket(ackNo: number, timestamp: number, socketId: number): Uint8Array {
  return controlPacket(ControlType.ACKACK, 0, ackNo, timestamp, socketId, 1);
}

/** What an ACK packet says. A light ACK carries only `ackSeq`. */
export interface AckInfo {
  /** The ACK number (0 for a light ACK); a full ACK is answered with an ACKACK carrying it. */
  ackNo: number;
  /** Every packet before this sequence number has been received (or given up on). */
  ackSeq: number;
  /** Round-trip time in microseconds (full and small ACKs). */
  rttUs?: number;
  /** Round-trip time variance in microseconds. */
  rttVarUs?: number;
  /** Free space in the receiver's buffer, in packets. */
  availableBuffer?: number;
  /** Packets received per second (full ACKs). */
  packetRate?: number;
  /** Estimated link capacity in packets per second (full ACKs). */
  linkCapacity?: number;
  /** Bytes received per second (full ACKs). */
  byteRate?: number;
}

/**
 * An ACK packet: a full ACK (28 bytes of control information) when `ack` has the rates,
 * a small ACK (16 bytes) with only RTT and buffer, a light ACK (4 bytes) with only
 * `ackSeq`.
 *
 * @example
 * ```ts
 * import { ackPacket, parseAck } from "@arcly/stream/srt";
 *
 * const packet = ackPacket({
 *   ackNo: 1, ackSeq: 100, rttUs: 100_000, rttVarUs: 50_000, availableBuffer: 8175,
 *   packetRate: 6411, linkCapacity: 1000, byteRate: 7_077_087,
 * }, 302_826, 9);
 * packet.length; // 44
 * parseAck(packet).ackSeq; // 100
 * ```
 */
export function ackPacket(ack: AckInfo, timestamp: number, socketId: number): Uint8Array {
  const words = ack.byteRate !== undefined ? 7 : ack.rttUs !== undefined ? 4 : 1;
  const out = controlPacket(ControlType.ACK, 0, ack.ackNo, timestamp, socketId, words);
  writeU32(out, 16, ack.ackSeq & SEQ_MASK);
  if (words >= 4) {
    writeU32(out, 20, ack.rttUs ?? 0);
    writeU32(out, 24, ack.rttVarUs ?? 0);
    writeU32(out, 28, ack.availableBuffer ?? 0);
  }
  if (words === 7) {
    writeU32(out, 32, ack.packetRate ?? 0);
    writeU32(out, 36, ack.linkCapacity ?? 0);
    writeU32(out, 40, ack.byteRate ?? 0);
  }
  return out;
}

/**
 * Parses an ACK packet (light, small or full).
 *
 * @throws {SrtError} when it has no control information.
 *
 * @example
 * ```ts
 * import { ackPacket, parseAck } from "@arcly/stream/srt";
 *
 * parseAck(ackPacket({ ackNo: 0, ackSeq: 42 }, 0, 9)); // { ackNo: 0, ackSeq: 42 }
 * ```
 */
export function parseAck(packet: Uint8Array): AckInfo {
  if (packet.length < SRT_HEADER_SIZE + 4) throw new SrtError("ACK without a sequence number");
  const ack: AckInfo = { ackNo: readU32(packet, 4), ackSeq: readU32(packet, 16) & SEQ_MASK };
  if (packet.length >= SRT_HEADER_SIZE + 16) {
    ack.rttUs = readU32(packet, 20);
    ack.rttVarUs = readU32(packet, 24);
    ack.availableBuffer = readU32(packet, 28);
  }
  if (packet.length >= SRT_HEADER_SIZE + 28) {
    ack.packetRate = readU32(packet, 32);
    ack.linkCapacity = readU32(packet, 36);
    ack.byteRate = readU32(packet, 40);
  }
  return ack;
}

/** An inclusive range of sequence numbers, `[first, last]` (`first === last` for one). */
export type SeqRange = readonly [first: number, last: number];

/**
 * A NAK (loss report) packet. Ranges are written as a first number with its top bit set
 * followed by the last; single losses as one number. Ranges that do not fit in
 * `maxBytes` of control information are left out (a later report repeats them).
 *
 * @example
 * ```ts
 * import { nakPacket, parseNak } from "@arcly/stream/srt";
 *
 * const packet = nakPacket([[10, 10], [20, 25]], 1000, 9);
 * packet.length; // 28
 * parseNak(packet); // [[10, 10], [20, 25]]
 * ```
 */
export function nakPacket(
  losses: readonly SeqRange[],
  timestamp: number,
  socketId: number,
  maxBytes = 1456 - SRT_HEADER_SIZE,
): Uint8Array {
  let words = 0;
  let count = 0;
  for (const [first, last] of losses) {
    const need = first === last ? 1 : 2;
    if ((words + need) * 4 > maxBytes) break;
    words += need;
    count++;
  }
  const out = controlPacket(ControlType.NAK, 0, 0, timestamp, socketId, words);
  let off = SRT_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    const [first, last] = losses[i];
    if (first === last) {
      writeU32(out, off, first & SEQ_MASK);
      off += 4;
    } else {
      writeU32(out, off, (0x80000000 | (first & SEQ_MASK)) >>> 0);
      writeU32(out, off + 4, last & SEQ_MASK);
      off += 8;
    }
  }
  return out;
}

/**
 * Parses a NAK packet into inclusive ranges.
 *
 * @throws {SrtError} when a range start has no end or a range runs backwards.
 *
 * @example
 * ```ts
 * import { nakPacket, parseNak } from "@arcly/stream/srt";
 *
 * parseNak(nakPacket([[7, 7]], 0, 1)); // [[7, 7]]
 * ```
 */
export function parseNak(packet: Uint8Array): SeqRange[] {
  const out: SeqRange[] = [];
  const end = SRT_HEADER_SIZE + ((packet.length - SRT_HEADER_SIZE) & ~3);
  for (let off = SRT_HEADER_SIZE; off < end; off += 4) {
    const word = readU32(packet, off);
    if ((word & 0x80000000) === 0) {
      out.push([word, word]);
      continue;
    }
    if (off + 8 > end) throw new SrtError("NAK range without an end");
    const first = word & SEQ_MASK;
    const last = readU32(packet, off + 4) & SEQ_MASK;
    if (seqOffset(first, last) < 0) {
      throw new SrtError(`NAK range ${first}..${last} runs backwards`);
    }
    out.push([first, last]);
    off += 4;
  }
  return out;
}

/** What a drop request says: message `msgNo`, packets `first` to `last`, will never come. */
export interface DropRequest {
  /** The message number (0 when the sender does not know it). */
  msgNo: number;
  /** First sequence number given up on. */
  first: number;
  /** Last sequence number given up on (inclusive). */
  last: number;
}

/**
 * A drop request (message drop request) packet.
 *
 * @example
 * ```ts
 * import { dropRequestPacket, parseDropRequest } from "@arcly/stream/srt";
 *
 * parseDropRequest(dropRequestPacket({ msgNo: 3, first: 10, last: 12 }, 0, 9));
 * // { msgNo: 3, first: 10, last: 12 }
 * ```
 */
export function dropRequestPacket(
  drop: DropRequest,
  timestamp: number,
  socketId: number,
): Uint8Array {
  const out = controlPacket(ControlType.DROPREQ, 0, drop.msgNo, timestamp, socketId, 2);
  writeU32(out, 16, drop.first & SEQ_MASK);
  writeU32(out, 20, drop.last & SEQ_MASK);
  return out;
}

/**
 * Parses a drop request packet.
 *
 * @throws {SrtError} when the range is missing or runs backwards.
 *
 * @example
 * ```ts
 * import { dropRequestPacket, parseDropRequest } from "@arcly/stream/srt";
 *
 * parseDropRequest(dropRequestPacket({ msgNo: 0, first: 5, last: 5 }, 0, 9)).first; // 5
 * ```
 */
export function parseDropRequest(packet: Uint8Array): DropRequest {
  if (packet.length < SRT_HEADER_SIZE + 8) throw new SrtError("drop request without a range");
  const first = readU32(packet, 16) & SEQ_MASK;
  const last = readU32(packet, 20) & SEQ_MASK;
  if (seqOffset(first, last) < 0) throw new SrtError(`drop range ${first}..${last} runs backwards`);
  return { msgNo: readU32(packet, 4) & MSGNO_MASK, first, last };
}

/**
 * `seq + n` on the 31-bit sequence circle (`n` may be negative).
 *
 * @example
 * ```ts
 * import { seqAdd } from "@arcly/stream/srt";
 *
 * seqAdd(0x7fffffff, 1); // 0
 * seqAdd(0, -1); // 2147483647
 * ```
 */
export function seqAdd(seq: number, n: number): number {
  return (seq + n) & SEQ_MASK;
}

/**
 * How far `to` is after `from` on the 31-bit circle: negative when it is before, in
 * `[-2^30, 2^30)`.
 *
 * @example
 * ```ts
 * import { seqOffset } from "@arcly/stream/srt";
 *
 * seqOffset(0x7ffffffe, 1); // 3
 * seqOffset(5, 2); // -3
 * ```
 */
export function seqOffset(from: number, to: number): number {
  const d = (to - from) & SEQ_MASK;
  return d >= 0x40000000 ? d - 0x80000000 : d;
}
