/**
 * AAC over RTP as `mpeg4-generic` (RFC 3640) in the AAC-hbr mode: AU headers with
 * 13-bit sizes, several access units per packet or one access unit fragmented over
 * several packets, both directions, and the SDP `fmtp` parameters.
 *
 * @module
 */

import { BitReader } from "../codec/bits.ts";
import {
  type AccessUnitHandler,
  type DepacketizerOptions,
  type RtpPayloadSink,
  SequenceGap,
} from "./payload.ts";
import type { RtpPacket } from "./packet.ts";

/** The `fmtp` parameters of an `mpeg4-generic` stream that shape its payloads. */
export interface Mpeg4GenericParams {
  /** Bits of the AU-size field (13 in AAC-hbr). */
  readonly sizeLength: number;
  /** Bits of the AU-Index field of the first AU header (3 in AAC-hbr). */
  readonly indexLength: number;
  /** Bits of the AU-Index-delta field of the other AU headers (3 in AAC-hbr). */
  readonly indexDeltaLength: number;
  /** The AudioSpecificConfig from `config` (hex). */
  readonly config: Uint8Array;
}

const UNSUPPORTED_FIELDS = [
  "ctsdeltalength",
  "dtsdeltalength",
  "randomaccessindication",
  "streamstateindication",
  "auxiliarydatasizelength",
];

/**
 * Reads the `fmtp` parameters of an `mpeg4-generic` audio stream. Returns undefined when
 * the stream cannot be carried: no `config`, no `sizelength`, or AU header fields beyond
 * size and index (CTS/DTS deltas, random access and stream state indications, auxiliary
 * data).
 *
 * @example
 * ```ts
 * import { mpeg4GenericParams } from "@arcly/stream/rtp";
 *
 * const params = mpeg4GenericParams({
 *   mode: "AAC-hbr", sizelength: "13", indexlength: "3", indexdeltalength: "3", config: "1190",
 * });
 * console.log(params?.config); // Uint8Array [0x11, 0x90]
 * ```
 */
export function mpeg4GenericParams(
  fmtp: Readonly<Record<string, string>>,
): Mpeg4GenericParams | undefined {
  const number = (name: string) => {
    const text = fmtp[name];
    return text === undefined || text === "" ? 0 : /^\d{1,2}$/.test(text) ? Number(text) : NaN;
  };
  const sizeLength = number("sizelength");
  const indexLength = number("indexlength");
  const indexDeltaLength = number("indexdeltalength");
  const hex = fmtp["config"] ?? "";
  if (!(sizeLength >= 1 && sizeLength <= 16) || !(indexLength <= 8 && indexDeltaLength <= 8)) {
    return undefined;
  }
  if (UNSUPPORTED_FIELDS.some((name) => number(name) !== 0)) return undefined;
  if (hex.length < 4 || hex.length % 2 !== 0 || !/^[0-9a-f]+$/i.test(hex)) return undefined;
  const config = new Uint8Array(hex.length / 2);
  for (let i = 0; i < config.length; i++) config[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return { sizeLength, indexLength, indexDeltaLength, config };
}

/**
 * The `fmtp` parameters for AAC-hbr with an AudioSpecificConfig.
 *
 * @example
 * ```ts
 * import { aacFmtp } from "@arcly/stream/rtp";
 *
 * aacFmtp(new Uint8Array([0x11, 0x90]));
 * // "profile-level-id=1; mode=AAC-hbr; sizelength=13; indexlength=3; indexdeltalength=3; config=1190"
 * ```
 */
export function aacFmtp(config: Uint8Array): string {
  const hex = Array.from(config, (b) => b.toString(16).padStart(2, "0")).join("");
  return `profile-level-id=1; mode=AAC-hbr; sizelength=13; indexlength=3; indexdeltalength=3; config=${hex}`;
}

/**
 * Splits `mpeg4-generic` RTP payloads into AAC access units, each with its own RTP
 * timestamp (the packet's plus `samplesPerFrame` per preceding AU in the packet), and
 * reassembles access units fragmented over several packets. Malformed payloads and
 * incomplete fragments are dropped and counted.
 *
 * @example
 * ```ts
 * import { AacDepacketizer, RtpPacket } from "@arcly/stream/rtp";
 *
 * const params = { sizeLength: 13, indexLength: 3, indexDeltaLength: 3, config: new Uint8Array() };
 * const got: [number, number][] = [];
 * const d = new AacDepacketizer(params, 1024, (ts, au) => got.push([ts, au.length]));
 * // AU-headers-length 32 bits: two AUs of 2 and 1 bytes
 * d.push(new RtpPacket().parse(new Uint8Array([
 *   0x80, 0xe1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 32, 0, 0x10, 0, 0x08, 0xaa, 0xbb, 0xcc,
 * ])));
 * console.log(got); // [[0, 2], [1024, 1]]
 * ```
 */
export class AacDepacketizer {
  /** Payloads dropped: malformed, or fragments that never completed. */
  dropped = 0;
  /** Packets missing according to sequence numbers. */
  lost = 0;
  #params: Mpeg4GenericParams;
  #samples: number;
  #emit: AccessUnitHandler;
  #max: number;
  #fragment: Uint8Array | undefined;
  #filled = 0;
  #timestamp = 0;
  #sequence = new SequenceGap();

  /** Make a depacketizer for `params`, with `samplesPerFrame` samples per access unit. */
  constructor(
    params: Mpeg4GenericParams,
    samplesPerFrame: number,
    emit: AccessUnitHandler,
    options: DepacketizerOptions = {},
  ) {
    this.#params = params;
    this.#samples = samplesPerFrame;
    this.#emit = emit;
    this.#max = Math.min(options.maxAccessUnitBytes ?? 65536, 2 ** params.sizeLength - 1);
  }

  /** Take one RTP packet. */
  push(packet: RtpPacket): void {
    const gap = this.#sequence.next(packet.sequence);
    if (gap < 0) {
      this.dropped++;
      return;
    }
    if (gap > 0) {
      this.lost += gap;
      this.#dropFragment();
    }
    if (this.#fragment && packet.timestamp !== this.#timestamp) this.#dropFragment();
    try {
      this.#unpack(packet.payload, packet.timestamp);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      this.dropped++;
      this.#fragment = undefined;
    }
  }

  #unpack(p: Uint8Array, timestamp: number): void {
    if (p.length < 2) throw new RangeError("mpeg4-generic payload without AU-headers-length");
    const headerBits = (p[0] << 8) | p[1];
    const headerBytes = (headerBits + 7) >> 3;
    if (headerBits === 0 || 2 + headerBytes > p.length) {
      throw new RangeError(`AU headers of ${headerBits} bits overrun the payload`);
    }
    const { sizeLength, indexLength, indexDeltaLength } = this.#params;
    const r = new BitReader(p.subarray(2, 2 + headerBytes));
    const sizes: number[] = [];
    while (headerBits - r.position >= sizeLength) {
      sizes.push(r.readBits(sizeLength));
      r.skipBits(sizes.length === 1 ? indexLength : indexDeltaLength);
      if (r.position > headerBits) throw new RangeError("AU header overruns AU-headers-length");
    }
    let pos = 2 + headerBytes;
    const data = p.length - pos;
    if (sizes.length === 1 && (sizes[0] > data || this.#fragment)) {
      return this.#addFragment(sizes[0], p.subarray(pos), timestamp);
    }
    if (this.#fragment) this.#dropFragment();
    let total = 0;
    for (const size of sizes) total += size;
    if (total > data) throw new RangeError(`AUs of ${total} bytes overrun a ${data}-byte payload`);
    for (let i = 0; i < sizes.length; i++) {
      if (sizes[i] > 0) {
        this.#emit((timestamp + i * this.#samples) >>> 0, p.slice(pos, pos + sizes[i]));
      }
      pos += sizes[i];
    }
  }

  #addFragment(size: number, data: Uint8Array, timestamp: number): void {
    if (size > this.#max) throw new RangeError(`AAC access unit of ${size} bytes`);
    if (!this.#fragment) {
      this.#fragment = new Uint8Array(size);
      this.#filled = 0;
      this.#timestamp = timestamp;
    } else if (this.#fragment.length !== size) {
      throw new RangeError("AU size changed within a fragmented access unit");
    }
    if (this.#filled + data.length > size) {
      throw new RangeError("AU fragments overrun the access unit size");
    }
    this.#fragment.set(data, this.#filled);
    this.#filled += data.length;
    if (this.#filled === size) {
      const au = this.#fragment;
      this.#fragment = undefined;
      this.#emit(timestamp, au);
    }
  }

  #dropFragment(): void {
    if (!this.#fragment) return;
    this.#fragment = undefined;
    this.dropped++;
  }
}

/**
 * Writes AAC access units as AAC-hbr payloads: one access unit per packet (one AU header
 * of 13-bit size and 3-bit index), fragmented over several packets when it does not fit
 * `maxPayload` bytes. The marker bit ends each access unit.
 *
 * @example
 * ```ts
 * import { AacPacketizer } from "@arcly/stream/rtp";
 *
 * const bytes: number[] = [];
 * new AacPacketizer(1200).packetize(new Uint8Array([0xaa, 0xbb]), {
 *   begin() {},
 *   write: (b) => bytes.push(...b),
 *   writeByte: (b) => bytes.push(b),
 *   end() {},
 * });
 * console.log(bytes); // [0, 16, 0, 16, 0xaa, 0xbb]
 * ```
 */
export class AacPacketizer {
  /** The largest payload written. */
  readonly maxPayload: number;

  /** Make a packetizer for payloads of at most `maxPayload` bytes (at least 16). */
  constructor(maxPayload: number) {
    if (maxPayload < 16) throw new RangeError(`RTP payload limit ${maxPayload} is too small`);
    this.maxPayload = maxPayload;
  }

  /**
   * Write the packets of one access unit.
   *
   * @throws {RangeError} when the access unit is longer than 8191 bytes.
   */
  packetize(au: Uint8Array, sink: RtpPayloadSink): void {
    const size = au.length;
    if (size > 8191) throw new RangeError(`AAC access unit of ${size} bytes exceeds 8191`);
    const chunk = this.maxPayload - 4;
    let pos = 0;
    do {
      const end = Math.min(size, pos + chunk);
      sink.begin();
      sink.writeByte(0);
      sink.writeByte(16);
      sink.writeByte(size >> 5);
      sink.writeByte((size & 0x1f) << 3);
      sink.write(au.subarray(pos, end));
      sink.end(end === size);
      pos = end;
    } while (pos < size);
  }
}
