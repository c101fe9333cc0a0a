/**
 * The SRT handshake (draft-sharabayko-srt §3.2.1): the handshake control packet with its
 * version 5 extensions (HSREQ/HSRSP, key material, Stream ID, congestion controller,
 * packet filter, group), handshake types and rejection codes.
 *
 * @module
 */

import { SrtError } from "./error.ts";
import { controlPacket, ControlType, SRT_HEADER_SIZE } from "./packet.ts";
import { readU32, writeU32 } from "./_wire.ts";

/** Bytes of a handshake packet without extensions (header and 48-byte body). */
export const HANDSHAKE_SIZE: number = SRT_HEADER_SIZE + 48;

/** The value of the extension field in a listener's induction response: "this is SRT". */
export const SRT_MAGIC = 0x4a17;

/** The longest Stream ID libsrt accepts, in bytes. */
export const MAX_STREAM_ID_BYTES = 512;

/**
 * Handshake types. A rejection is sent as `1000 + reason` (see {@linkcode rejectionType}).
 *
 * @example
 * ```ts
 * import { HandshakeType } from "@arcly/stream/srt";
 *
 * HandshakeType.CONCLUSION; // 0xffffffff
 * ```
 */
export const HandshakeType = {
  /** Rendezvous: the first message. */
  WAVEAHAND: 0x00000000,
  /** Caller-listener: the first exchange, which hands out the SYN cookie. */
  INDUCTION: 0x00000001,
  /** The second exchange, with the extensions; the listener's answer accepts. */
  CONCLUSION: 0xffffffff,
  /** Rendezvous: the third message. */
  AGREEMENT: 0xfffffffe,
  /** Rendezvous: done. */
  DONE: 0xfffffffd,
} as const;

/**
 * Handshake extension types (the 16-bit type of each extension block).
 *
 * @example
 * ```ts
 * import { HandshakeExtension } from "@arcly/stream/srt";
 *
 * HandshakeExtension.SID; // 5
 * ```
 */
export const HandshakeExtension = {
  /** The caller's SRT version, flags and latencies. */
  HSREQ: 1,
  /** The listener's answer to HSREQ. */
  HSRSP: 2,
  /** Key material: the caller encrypts. */
  KMREQ: 3,
  /** The answer to KMREQ. */
  KMRSP: 4,
  /** The Stream ID. */
  SID: 5,
  /** The congestion controller's name (`live` or `file`). */
  CONGESTION: 6,
  /** Packet filter (FEC) configuration. */
  FILTER: 7,
  /** Socket group (bonding) membership. */
  GROUP: 8,
} as const;

/**
 * Bits of the extension field of a version 5 conclusion: which extensions follow.
 *
 * @example
 * ```ts
 * import { HandshakeExtensionFlag } from "@arcly/stream/srt";
 *
 * HandshakeExtensionFlag.HSREQ | HandshakeExtensionFlag.CONFIG; // 5
 * ```
 */
export const HandshakeExtensionFlag = {
  /** An HSREQ or HSRSP extension is present. */
  HSREQ: 1,
  /** A KMREQ or KMRSP extension is present. */
  KMREQ: 2,
  /** Further extensions (Stream ID, congestion, filter, group) are present. */
  CONFIG: 4,
} as const;

/**
 * SRT capability flags of HSREQ/HSRSP.
 *
 * @example
 * ```ts
 * import { SrtFlag } from "@arcly/stream/srt";
 *
 * SrtFlag.TSBPDRCV | SrtFlag.TLPKTDROP; // 10
 * ```
 */
export const SrtFlag = {
  /** The side sends with timestamp-based packet delivery. */
  TSBPDSND: 0x01,
  /** The side receives with timestamp-based packet delivery. */
  TSBPDRCV: 0x02,
  /** The side can encrypt. */
  HAICRYPT: 0x04,
  /** Too-late packets are dropped. */
  TLPKTDROP: 0x08,
  /** The receiver repeats NAKs periodically. */
  NAKREPORT: 0x10,
  /** Data packets carry the retransmission flag (26-bit message numbers). */
  REXMITFLG: 0x20,
  /** Stream (file) API instead of messages. */
  STREAM: 0x40,
  /** Packet filters can be configured. */
  PACKET_FILTER: 0x80,
} as const;

/**
 * Why a handshake is rejected: libsrt's `SRT_REJ_*` (below 1000) and the access control
 * codes `SRT_REJX_*` (1000 and up) a listener chooses. The wire carries `1000 + reason`
 * in the handshake type; callers report the reason itself (`srt_getrejectreason`).
 *
 * @example
 * ```ts
 * import { RejectReason, rejectionType } from "@arcly/stream/srt";
 *
 * rejectionType(RejectReason.NOTFOUND); // 2404
 * ```
 */
export const RejectReason = {
  /** Unknown reason. */
  UNKNOWN: 0,
  /** System function error. */
  SYSTEM: 1,
  /** Rejected by the peer. */
  PEER: 2,
  /** Resources could not be allocated. */
  RESOURCE: 3,
  /** Rogue or malformed handshake. */
  ROGUE: 4,
  /** The listener's backlog is full. */
  BACKLOG: 5,
  /** Internal program error. */
  IPE: 6,
  /** The socket is closing. */
  CLOSE: 7,
  /** The peer's SRT version is too old. */
  VERSION: 8,
  /** Rendezvous cookie collision. */
  RDVCOOKIE: 9,
  /** Wrong passphrase. */
  BADSECRET: 10,
  /** Encryption required by one side and not the other (or not supported). */
  UNSECURE: 11,
  /** Message API versus stream API mismatch. */
  MESSAGEAPI: 12,
  /** Congestion controller mismatch. */
  CONGESTION: 13,
  /** Packet filter mismatch. */
  FILTER: 14,
  /** Group mismatch. */
  GROUP: 15,
  /** Connection timeout. */
  TIMEOUT: 16,
  /** The Stream ID is malformed (`SRT_REJX_BAD_REQUEST`). */
  BAD_REQUEST: 1400,
  /** Authentication failed (`SRT_REJX_UNAUTHORIZED`). */
  UNAUTHORIZED: 1401,
  /** Too many connections (`SRT_REJX_OVERLOAD`). */
  OVERLOAD: 1402,
  /** Access denied (`SRT_REJX_FORBIDDEN`). */
  FORBIDDEN: 1403,
  /** No such stream (`SRT_REJX_NOTFOUND`). */
  NOTFOUND: 1404,
  /** The requested mode (`m=`) is not supported (`SRT_REJX_BAD_MODE`). */
  BAD_MODE: 1405,
  /** The stream is already being published (`SRT_REJX_CONFLICT`). */
  CONFLICT: 1409,
  /** The media type (`t=`) is not supported (`SRT_REJX_NOTSUP_MEDIA`). */
  NOTSUP_MEDIA: 1415,
  /** Internal server error (`SRT_REJX_ISE`). */
  ISE: 1500,
} as const;

/**
 * The handshake type field that rejects with `reason`.
 *
 * @example
 * ```ts
 * import { RejectReason, rejectionType } from "@arcly/stream/srt";
 *
 * rejectionType(RejectReason.UNSECURE); // 1011
 * ```
 */
export function rejectionType(reason: number): number {
  return 1000 + reason;
}

/**
 * The rejection reason carried by a handshake type, or `undefined` when the type is not
 * a rejection.
 *
 * @example
 * ```ts
 * import { HandshakeType, rejectionReason } from "@arcly/stream/srt";
 *
 * rejectionReason(2409); // 1409
 * rejectionReason(HandshakeType.CONCLUSION); // undefined
 * ```
 */
export function rejectionReason(type: number): number | undefined {
  return type >= 1000 && type < 0xfffffff0 ? type - 1000 : undefined;
}

/** The SRT part of a handshake: an HSREQ (caller) or HSRSP (listener) extension. */
export interface SrtCapabilities {
  /** SRT version as `0x00MMmmpp`, e.g. `0x010501` for 1.5.1. */
  version: number;
  /** {@linkcode SrtFlag} bits. */
  flags: number;
  /** The latency the sender of this handshake applies when it receives, in ms. */
  receiverLatencyMs: number;
  /** The latency the sender of this handshake asks its peer to receive with, in ms. */
  senderLatencyMs: number;
}

/** A handshake packet's body and the extensions this implementation understands. */
export interface Handshake {
  /** 4 in a caller's induction request, else 5. */
  version: number;
  /** Encryption field: the key length in bytes / 8 (2, 3, 4) or 0. */
  encryption: number;
  /**
   * Extension field: 2 (datagram socket) in a caller's induction request,
   * {@linkcode SRT_MAGIC} in the induction response, {@linkcode HandshakeExtensionFlag}
   * bits in a conclusion.
   */
  extensionField: number;
  /** Initial packet sequence number. */
  isn: number;
  /** Maximum transmission unit, in bytes (1500). */
  mtu: number;
  /** Maximum flow window, in packets. */
  flowWindow: number;
  /** One of {@linkcode HandshakeType}, or `1000 + reason` for a rejection. */
  type: number;
  /** The sender's socket id. */
  socketId: number;
  /** The SYN cookie (0 in the first induction request). */
  cookie: number;
  /** The address the sender sees its peer at, e.g. `"127.0.0.1"`. */
  peerIp: string;
  /** HSREQ extension. */
  hsreq?: SrtCapabilities;
  /** HSRSP extension. */
  hsrsp?: SrtCapabilities;
  /** KMREQ content: the caller encrypts (a Key Material message, see `parseKeyMaterial`). */
  keyMaterial?: Uint8Array;
  /** KMRSP content: the listener's answer to KMREQ (the same Key Material, accepted). */
  keyMaterialResponse?: Uint8Array;
  /** The Stream ID extension, decoded. */
  streamId?: string;
  /** The congestion controller extension, decoded. */
  congestion?: string;
  /** The packet filter extension, decoded. */
  filter?: string;
  /** The group extension's content. */
  group?: Uint8Array;
}

/**
 * Parses a handshake control packet, skipping extensions it does not know.
 *
 * @throws {SrtError} when the packet is not a handshake, is too short, or an extension
 * runs past its end.
 *
 * @example
 * ```ts
 * import { encodeHandshake, HandshakeType, parseHandshake } from "@arcly/stream/srt";
 *
 * const packet = encodeHandshake({
 *   version: 5, encryption: 0, extensionField: 5, isn: 1, mtu: 1500, flowWindow: 8192,
 *   type: HandshakeType.CONCLUSION, socketId: 7, cookie: 42, peerIp: "127.0.0.1",
 *   streamId: "publish:live/cam",
 * }, 0, 0);
 * parseHandshake(packet).streamId; // "publish:live/cam"
 * ```
 */
export function parseHandshake(packet: Uint8Array): Handshake {
  if (packet.length < HANDSHAKE_SIZE) {
    throw new SrtError(`handshake of ${packet.length} bytes, at least ${HANDSHAKE_SIZE} expected`);
  }
  if ((packet[0] & 0x80) === 0 || (((packet[0] & 0x7f) << 8) | packet[1]) !== 0) {
    throw new SrtError("not a handshake packet");
  }
  const b = SRT_HEADER_SIZE;
  const hs: Handshake = {
    version: readU32(packet, b),
    encryption: (packet[b + 4] << 8) | packet[b + 5],
    extensionField: (packet[b + 6] << 8) | packet[b + 7],
    isn: readU32(packet, b + 8) & 0x7fffffff,
    mtu: readU32(packet, b + 12),
    flowWindow: readU32(packet, b + 16),
    type: readU32(packet, b + 20),
    socketId: readU32(packet, b + 24),
    cookie: readU32(packet, b + 28),
    peerIp: decodePeerIp(packet.subarray(b + 32, b + 48)),
  };
  let off = HANDSHAKE_SIZE;
  while (off + 4 <= packet.length) {
    const type = (packet[off] << 8) | packet[off + 1];
    const size = ((packet[off + 2] << 8) | packet[off + 3]) * 4;
    const start = off + 4;
    const end = start + size;
    if (end > packet.length) {
      throw new SrtError(`handshake extension ${type} of ${size} bytes runs past the packet`);
    }
    const content = packet.subarray(start, end);
    switch (type) {
      case HandshakeExtension.HSREQ:
      case HandshakeExtension.HSRSP: {
        if (size < 12) throw new SrtError(`handshake extension ${type} of ${size} bytes is short`);
        const caps: SrtCapabilities = {
          version: readU32(content, 0),
          flags: readU32(content, 4),
          receiverLatencyMs: (content[8] << 8) | content[9],
          senderLatencyMs: (content[10] << 8) | content[11],
        };
        if (type === HandshakeExtension.HSREQ) hs.hsreq = caps;
        else hs.hsrsp = caps;
        break;
      }
      case HandshakeExtension.KMREQ:
        hs.keyMaterial = content;
        break;
      case HandshakeExtension.KMRSP:
        hs.keyMaterialResponse = content;
        break;
      case HandshakeExtension.SID:
        if (size > MAX_STREAM_ID_BYTES) {
          throw new SrtError(`Stream ID of ${size} bytes, at most ${MAX_STREAM_ID_BYTES} allowed`);
        }
        hs.streamId = decodeSwappedString(content);
        break;
      case HandshakeExtension.CONGESTION:
        hs.congestion = decodeSwappedString(content);
        break;
      case HandshakeExtension.FILTER:
        hs.filter = decodeSwappedString(content);
        break;
      case HandshakeExtension.GROUP:
        hs.group = content;
        break;
    }
    off = end;
  }
  return hs;
}

/**
 * Encodes a handshake control packet with the extensions present in `hs` (HSREQ, HSRSP,
 * KMREQ, KMRSP, Stream ID, congestion, filter, group, in that order). The
 * extension field is written as given.
 *
 * @example
 * ```ts
 * import { encodeHandshake, HandshakeType, SRT_MAGIC } from "@arcly/stream/srt";
 *
 * const response = encodeHandshake({
 *   version: 5, encryption: 0, extensionField: SRT_MAGIC, isn: 1, mtu: 1500,
 *   flowWindow: 8192, type: HandshakeType.INDUCTION, socketId: 7, cookie: 42,
 *   peerIp: "127.0.0.1",
 * }, 3_497_263, 7);
 * response.length; // 64
 * ```
 */
export function encodeHandshake(hs: Handshake, timestamp: number, socketId: number): Uint8Array {
  const blocks: [number, Uint8Array][] = [];
  if (hs.hsreq) blocks.push([HandshakeExtension.HSREQ, encodeCapabilities(hs.hsreq)]);
  if (hs.hsrsp) blocks.push([HandshakeExtension.HSRSP, encodeCapabilities(hs.hsrsp)]);
  if (hs.keyMaterial) blocks.push([HandshakeExtension.KMREQ, padded(hs.keyMaterial)]);
  if (hs.keyMaterialResponse) {
    blocks.push([HandshakeExtension.KMRSP, padded(hs.keyMaterialResponse)]);
  }
  if (hs.streamId !== undefined) {
    blocks.push([HandshakeExtension.SID, encodeSwappedString(hs.streamId)]);
  }
  if (hs.congestion !== undefined) {
    blocks.push([HandshakeExtension.CONGESTION, encodeSwappedString(hs.congestion)]);
  }
  if (hs.filter !== undefined) {
    blocks.push([HandshakeExtension.FILTER, encodeSwappedString(hs.filter)]);
  }
  if (hs.group) blocks.push([HandshakeExtension.GROUP, padded(hs.group)]);
  const extBytes = blocks.reduce((n, [, c]) => n + 4 + c.length, 0);
  const out = controlPacket(ControlType.HANDSHAKE, 0, 0, timestamp, socketId, 12 + extBytes / 4);
  const b = SRT_HEADER_SIZE;
  writeU32(out, b, hs.version);
  writeU32(out, b + 4, ((hs.encryption & 0xffff) << 16) | (hs.extensionField & 0xffff));
  writeU32(out, b + 8, hs.isn);
  writeU32(out, b + 12, hs.mtu);
  writeU32(out, b + 16, hs.flowWindow);
  writeU32(out, b + 20, hs.type);
  writeU32(out, b + 24, hs.socketId);
  writeU32(out, b + 28, hs.cookie);
  out.set(encodePeerIp(hs.peerIp), b + 32);
  let off = HANDSHAKE_SIZE;
  for (const [type, content] of blocks) {
    out[off] = type >> 8;
    out[off + 1] = type;
    out[off + 2] = content.length >> 10;
    out[off + 3] = content.length >> 2;
    out.set(content, off + 4);
    off += 4 + content.length;
  }
  return out;
}

function encodeCapabilities(caps: SrtCapabilities): Uint8Array {
  const out = new Uint8Array(12);
  writeU32(out, 0, caps.version);
  writeU32(out, 4, caps.flags);
  writeU32(out, 8, ((caps.receiverLatencyMs & 0xffff) << 16) | (caps.senderLatencyMs & 0xffff));
  return out;
}

function padded(bytes: Uint8Array): Uint8Array {
  if (bytes.length % 4 === 0) return bytes;
  const out = new Uint8Array((bytes.length + 3) & ~3);
  out.set(bytes);
  return out;
}

/**
 * A string extension's bytes (Stream ID, congestion, filter): UTF-8, zero-padded to whole
 * 32-bit words, each word's bytes reversed (libsrt writes the words in little-endian
 * order).
 *
 * @example
 * ```ts
 * import { encodeSwappedString } from "@arcly/stream/srt";
 *
 * new TextDecoder().decode(encodeSwappedString("live")); // "evil"
 * ```
 */
export function encodeSwappedString(text: string): Uint8Array {
  const utf8 = new TextEncoder().encode(text);
  const out = new Uint8Array((utf8.length + 3) & ~3);
  for (let i = 0; i < utf8.length; i++) out[(i & ~3) + 3 - (i & 3)] = utf8[i];
  return out;
}

/**
 * Decodes a string extension written by {@linkcode encodeSwappedString}; trailing zero
 * padding is dropped.
 *
 * @throws {SrtError} when the bytes are not UTF-8.
 *
 * @example
 * ```ts
 * import { decodeSwappedString } from "@arcly/stream/srt";
 *
 * decodeSwappedString(new Uint8Array([0x65, 0x76, 0x69, 0x6c])); // "live"
 * ```
 */
export function decodeSwappedString(bytes: Uint8Array): string {
  const words = bytes.length & ~3;
  const plain = new Uint8Array(words);
  for (let i = 0; i < words; i++) plain[i] = bytes[(i & ~3) + 3 - (i & 3)];
  let end = words;
  while (end > 0 && plain[end - 1] === 0) end--;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(plain.subarray(0, end));
  } catch {
    throw new SrtError("string extension is not UTF-8");
  }
}

/**
 * The peer address field as libsrt writes it: each 32-bit word of the address in host
 * (little-endian) order, an IPv4 address alone in the first word.
 */
function encodePeerIp(ip: string): Uint8Array {
  const out = new Uint8Array(16);
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(ip);
  if (v4) {
    for (let i = 0; i < 4; i++) out[3 - i] = Number(v4[i + 1]);
    return out;
  }
  const groups = expandIpv6(ip);
  if (!groups) return out;
  for (let g = 0; g < 8; g++) {
    const word = g >> 1;
    const first = (g & 1) === 0;
    // The word's bytes in network order are [g0 high, g0 low, g1 high, g1 low]: reversed.
    out[word * 4 + (first ? 3 : 1)] = groups[g] >> 8;
    out[word * 4 + (first ? 2 : 0)] = groups[g] & 0xff;
  }
  return out;
}

function decodePeerIp(field: Uint8Array): string {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = field[(i & ~3) + 3 - (i & 3)];
  if (bytes.subarray(4).every((b) => b === 0)) return bytes.subarray(0, 4).join(".");
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) groups.push(((bytes[2 * g] << 8) | bytes[2 * g + 1]).toString(16));
  return groups.join(":");
}

function expandIpv6(ip: string): number[] | undefined {
  const [head, tail, extra] = ip.split("::");
  if (extra !== undefined) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((h) => parseInt(h, 16)));
  const front = parse(head);
  const back = tail === undefined ? [] : parse(tail);
  const fill = 8 - front.length - back.length;
  if (fill < 0 || (tail === undefined && fill !== 0)) return undefined;
  const groups = [...front, ...new Array(fill).fill(0), ...back];
  return groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}
