/**
 * RTCP (RFC 3550 section 6): reading compound packets for their sender reports, and
 * writing sender and receiver reports.
 *
 * @module
 */

import { readUint32, writeUint32 } from "./_bytes.ts";

/**
 * RTCP packet types.
 *
 * @example
 * ```ts
 * import { RtcpType } from "@arcly/stream/rtp";
 *
 * RtcpType.SR; // 200
 * ```
 */
export const RtcpType = {
  /** Sender report. */
  SR: 200,
  /** Receiver report. */
  RR: 201,
  /** Source description. */
  SDES: 202,
  /** Goodbye. */
  BYE: 203,
  /** Application-defined. */
  APP: 204,
} as const;

/** What a sender report says: this RTP timestamp was sampled at this wall-clock time. */
export interface SenderReport {
  /** The sender's SSRC. */
  readonly ssrc: number;
  /** The NTP wall-clock time in seconds since 1900-01-01 (fraction included). */
  readonly ntpSeconds: number;
  /** The RTP timestamp that corresponds to `ntpSeconds`. */
  readonly rtpTimestamp: number;
  /** Packets sent so far. */
  readonly packetCount: number;
  /** Payload octets sent so far. */
  readonly octetCount: number;
}

/** One packet of a compound RTCP packet. */
export interface RtcpPacket {
  /** The packet type ({@linkcode RtcpType}). */
  readonly type: number;
  /** The 5-bit count field (report blocks, sources…). */
  readonly count: number;
  /** The packet, header included: a view into the parsed bytes. */
  readonly bytes: Uint8Array;
  /** The sender report, for `SR` packets. */
  readonly senderReport?: SenderReport;
}

const NTP_FRACTION = 2 ** 32;

/**
 * Splits a compound RTCP packet into its packets and reads sender reports.
 *
 * @throws {RangeError} when a packet is not version 2, or a length overruns.
 * @example
 * ```ts
 * import { parseRtcp, writeSenderReport } from "@arcly/stream/rtp";
 *
 * const out = new Uint8Array(28);
 * writeSenderReport(out, 0, {
 *   ssrc: 1, ntpSeconds: 3_900_000_000.5, rtpTimestamp: 90000, packetCount: 10, octetCount: 9000,
 * });
 * const [sr] = parseRtcp(out);
 * console.log(sr.senderReport?.rtpTimestamp, sr.senderReport?.ntpSeconds); // 90000 3900000000.5
 * ```
 */
export function parseRtcp(data: Uint8Array): RtcpPacket[] {
  const packets: RtcpPacket[] = [];
  let pos = 0;
  if (data.length < 4) throw new RangeError(`RTCP packet of ${data.length} bytes is too short`);
  while (pos + 4 <= data.length) {
    const b0 = data[pos];
    if (b0 >> 6 !== 2) throw new RangeError(`RTCP version ${b0 >> 6} is not 2`);
    const length = (((data[pos + 2] << 8) | data[pos + 3]) + 1) * 4;
    if (pos + length > data.length) throw new RangeError("RTCP length overruns the packet");
    const type = data[pos + 1];
    const bytes = data.subarray(pos, pos + length);
    if (type === RtcpType.SR) {
      if (length < 28) throw new RangeError(`RTCP sender report of ${length} bytes`);
      packets.push({ type, count: b0 & 0x1f, bytes, senderReport: readSenderReport(bytes) });
    } else {
      packets.push({ type, count: b0 & 0x1f, bytes });
    }
    pos += length;
  }
  return packets;
}

function readSenderReport(p: Uint8Array): SenderReport {
  return {
    ssrc: readUint32(p, 4),
    ntpSeconds: readUint32(p, 8) + readUint32(p, 12) / NTP_FRACTION,
    rtpTimestamp: readUint32(p, 16),
    packetCount: readUint32(p, 20),
    octetCount: readUint32(p, 24),
  };
}

/**
 * Bytes in a sender report without report blocks.
 *
 * @example
 * ```ts
 * import { SENDER_REPORT_SIZE, writeSenderReport } from "@arcly/stream/rtp";
 *
 * const out = new Uint8Array(SENDER_REPORT_SIZE);
 * writeSenderReport(out, 0, { ssrc: 1, ntpSeconds: 0, rtpTimestamp: 0, packetCount: 0, octetCount: 0 });
 * ```
 */
export const SENDER_REPORT_SIZE = 28;

/**
 * Writes a 28-byte sender report without report blocks at `offset`.
 *
 * @example
 * ```ts
 * import { writeSenderReport } from "@arcly/stream/rtp";
 *
 * const out = new Uint8Array(28);
 * writeSenderReport(out, 0, {
 *   ssrc: 7, ntpSeconds: 3_900_000_000, rtpTimestamp: 0, packetCount: 0, octetCount: 0,
 * });
 * console.log(out[1], out[3]); // 200 6
 * ```
 */
export function writeSenderReport(out: Uint8Array, offset: number, sr: SenderReport): void {
  out[offset] = 0x80;
  out[offset + 1] = RtcpType.SR;
  out[offset + 2] = 0;
  out[offset + 3] = SENDER_REPORT_SIZE / 4 - 1;
  const seconds = Math.floor(sr.ntpSeconds);
  writeUint32(out, offset + 4, sr.ssrc);
  writeUint32(out, offset + 8, seconds);
  writeUint32(out, offset + 12, Math.floor((sr.ntpSeconds - seconds) * NTP_FRACTION));
  writeUint32(out, offset + 16, sr.rtpTimestamp);
  writeUint32(out, offset + 20, sr.packetCount);
  writeUint32(out, offset + 24, sr.octetCount);
}

/** One reception report block of a receiver report (RFC 3550 section 6.4.1). */
export interface ReceptionReport {
  /** The SSRC of the source reported on. */
  readonly ssrc: number;
  /** Packets lost since the previous report, as a fraction of 256 (0..255). */
  readonly fractionLost: number;
  /** Packets lost since the start (24-bit signed). */
  readonly cumulativeLost: number;
  /** The highest sequence number received, extended with the count of its wraps. */
  readonly highestSequence: number;
  /** The interarrival jitter, in RTP timestamp units. */
  readonly jitter: number;
  /** The middle 32 bits of the last sender report's NTP time (0: none yet). */
  readonly lastSenderReport: number;
  /** Time since that sender report, in units of 1/65536 s (0: none yet). */
  readonly delaySinceLastSenderReport: number;
}

/**
 * Bytes in a receiver report with one report block.
 *
 * @example
 * ```ts
 * import { RECEIVER_REPORT_SIZE } from "@arcly/stream/rtp";
 *
 * RECEIVER_REPORT_SIZE; // 32
 * ```
 */
export const RECEIVER_REPORT_SIZE = 32;

/**
 * Writes a 32-byte receiver report from `ssrc` with one report block at `offset`.
 *
 * @example
 * ```ts
 * import { writeReceiverReport } from "@arcly/stream/rtp";
 *
 * const out = new Uint8Array(32);
 * writeReceiverReport(out, 0, 7, {
 *   ssrc: 9, fractionLost: 0, cumulativeLost: 0, highestSequence: 1000, jitter: 3,
 *   lastSenderReport: 0, delaySinceLastSenderReport: 0,
 * });
 * console.log(out[0], out[1], out[3]); // 129 201 7
 * ```
 */
export function writeReceiverReport(
  out: Uint8Array,
  offset: number,
  ssrc: number,
  block: ReceptionReport,
): void {
  out[offset] = 0x81;
  out[offset + 1] = RtcpType.RR;
  out[offset + 2] = 0;
  out[offset + 3] = RECEIVER_REPORT_SIZE / 4 - 1;
  writeUint32(out, offset + 4, ssrc);
  writeUint32(out, offset + 8, block.ssrc);
  const lost = Math.max(-0x800000, Math.min(0x7fffff, block.cumulativeLost)) & 0xffffff;
  writeUint32(out, offset + 12, ((block.fractionLost & 0xff) << 24 | lost) >>> 0);
  writeUint32(out, offset + 16, block.highestSequence >>> 0);
  writeUint32(out, offset + 20, block.jitter >>> 0);
  writeUint32(out, offset + 24, block.lastSenderReport >>> 0);
  writeUint32(out, offset + 28, block.delaySinceLastSenderReport >>> 0);
}

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NTP_UNIX_OFFSET = 2_208_988_800;

/**
 * The NTP time (seconds since 1900) of a Unix time in milliseconds.
 *
 * @example
 * ```ts
 * import { ntpSecondsFromUnixMs } from "@arcly/stream/rtp";
 *
 * ntpSecondsFromUnixMs(0); // 2208988800
 * ```
 */
export function ntpSecondsFromUnixMs(ms: number): number {
  return ms / 1000 + NTP_UNIX_OFFSET;
}
