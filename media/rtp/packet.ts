/**
 * RTP packets (RFC 3550 section 5): reading the fixed header and writing it.
 *
 * @module
 */

import { readUint32, writeUint32 } from "./_bytes.ts";

/** The fixed RTP header fields read and written here. */
export interface RtpHeader {
  /** The payload type (0..127). */
  payloadType: number;
  /** The marker bit: the last packet of a video access unit. */
  marker: boolean;
  /** The 16-bit sequence number. */
  sequence: number;
  /** The 32-bit media timestamp, in the payload format's clock. */
  timestamp: number;
  /** The synchronization source. */
  ssrc: number;
}

/**
 * Bytes in an RTP header without CSRCs or extension.
 *
 * @example
 * ```ts
 * import { RTP_HEADER_SIZE } from "@arcly/stream/rtp";
 *
 * const packet = new Uint8Array(RTP_HEADER_SIZE + 1200);
 * ```
 */
export const RTP_HEADER_SIZE = 12;

/**
 * One received RTP packet. {@linkcode RtpPacket.parse} refills the same object for each
 * packet, so a receiver allocates nothing per packet but the payload view.
 *
 * @example
 * ```ts
 * import { RtpPacket } from "@arcly/stream/rtp";
 *
 * const packet = new RtpPacket();
 * packet.parse(new Uint8Array([0x80, 0xe0, 0, 7, 0, 0, 0x0b, 0xb8, 0, 0, 0, 1, 0x65]));
 * console.log(packet.payloadType, packet.marker, packet.sequence, packet.timestamp); // 96 true 7 3000
 * ```
 */
export class RtpPacket implements RtpHeader {
  /** The payload type. */
  payloadType = 0;
  /** The marker bit. */
  marker = false;
  /** The sequence number. */
  sequence = 0;
  /** The media timestamp. */
  timestamp = 0;
  /** The synchronization source. */
  ssrc = 0;
  /** The payload without header, CSRCs, extension or padding: a view into the parsed bytes. */
  payload: Uint8Array = new Uint8Array(0);

  /**
   * Read `data` into this object.
   *
   * @throws {RangeError} when `data` is not an RTP version 2 packet or its lengths overrun.
   */
  parse(data: Uint8Array): this {
    if (data.length < RTP_HEADER_SIZE) {
      throw new RangeError(`RTP packet of ${data.length} bytes is shorter than its header`);
    }
    const b0 = data[0];
    if (b0 >> 6 !== 2) throw new RangeError(`RTP version ${b0 >> 6} is not 2`);
    let start = RTP_HEADER_SIZE + (b0 & 0x0f) * 4;
    if (b0 & 0x10) {
      if (start + 4 > data.length) throw new RangeError("RTP header extension truncated");
      start += 4 + ((data[start + 2] << 8) | data[start + 3]) * 4;
    }
    let end = data.length;
    if (b0 & 0x20) {
      const padding = data[end - 1];
      if (padding === 0) throw new RangeError("RTP padding length 0");
      end -= padding;
    }
    if (start > end) throw new RangeError("RTP header, extension or padding overruns the packet");
    this.marker = (data[1] & 0x80) !== 0;
    this.payloadType = data[1] & 0x7f;
    this.sequence = (data[2] << 8) | data[3];
    this.timestamp = readUint32(data, 4);
    this.ssrc = readUint32(data, 8);
    this.payload = data.subarray(start, end);
    return this;
  }
}

/**
 * Writes a 12-byte RTP header (version 2, no padding, extension or CSRCs) at `offset`.
 *
 * @example
 * ```ts
 * import { writeRtpHeader } from "@arcly/stream/rtp";
 *
 * const out = new Uint8Array(12);
 * writeRtpHeader(out, 0, { payloadType: 96, marker: true, sequence: 7, timestamp: 3000, ssrc: 1 });
 * // out: 80 e0 00 07 00 00 0b b8 00 00 00 01
 * ```
 */
export function writeRtpHeader(out: Uint8Array, offset: number, header: RtpHeader): void {
  out[offset] = 0x80;
  out[offset + 1] = (header.marker ? 0x80 : 0) | (header.payloadType & 0x7f);
  out[offset + 2] = (header.sequence >> 8) & 0xff;
  out[offset + 3] = header.sequence & 0xff;
  writeUint32(out, offset + 4, header.timestamp);
  writeUint32(out, offset + 8, header.ssrc);
}
