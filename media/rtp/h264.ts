/**
 * The H.264 RTP payload format (RFC 6184, packetization mode 1): single NAL unit
 * packets, STAP-A aggregation and FU-A fragmentation, both directions, and the SDP
 * `fmtp` parameters (`sprop-parameter-sets`, `profile-level-id`).
 *
 * @module
 */

import { buildAvcConfig, H264NalType, parseAvcConfig } from "../codec/h264.ts";
import { NalDepacketizer, NalPacketizer, type RtpPayloadSink } from "./payload.ts";
import { decodeBase64, encodeBase64 } from "../codec/base64.ts";

const STAP_A = 24;
const FU_A = 28;

/**
 * Reassembles H.264 access units from RTP packets: single NAL units, STAP-A and FU-A.
 * STAP-B, MTAP and FU-B (interleaved mode) are dropped and counted, as are truncated
 * aggregates and fragments without their start.
 *
 * @example
 * ```ts
 * import { H264Depacketizer, RtpPacket } from "@arcly/stream/rtp";
 *
 * const units: Uint8Array[] = [];
 * const depacketizer = new H264Depacketizer((_timestamp, au) => units.push(au));
 * // one packet, marker set: a single NAL unit 0x65 0x88
 * depacketizer.push(new RtpPacket().parse(new Uint8Array([
 *   0x80, 0xe0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x65, 0x88,
 * ])));
 * console.log(units[0]); // Uint8Array [0, 0, 0, 2, 0x65, 0x88]
 * ```
 */
export class H264Depacketizer extends NalDepacketizer {
  /** Read one H.264 payload. */
  protected unpack(p: Uint8Array): void {
    if (p.length === 0) throw new RangeError("empty H.264 payload");
    const type = p[0] & 0x1f;
    if (type >= 1 && type <= 23) {
      this.addNal(p);
    } else if (type === STAP_A) {
      let pos = 1;
      while (pos < p.length) { // validate before adding anything
        if (pos + 2 > p.length) throw new RangeError("STAP-A size field truncated");
        const size = (p[pos] << 8) | p[pos + 1];
        if (size === 0 || pos + 2 + size > p.length) {
          throw new RangeError(`STAP-A NAL unit of ${size} bytes overruns the packet`);
        }
        pos += 2 + size;
      }
      for (pos = 1; pos < p.length;) {
        const size = (p[pos] << 8) | p[pos + 1];
        this.addNal(p.subarray(pos + 2, pos + 2 + size));
        pos += 2 + size;
      }
    } else if (type === FU_A) {
      if (p.length < 3) throw new RangeError("FU-A packet without data");
      const fu = p[1];
      if (fu & 0x80) {
        this.startNal();
        this.appendNal(Uint8Array.of((p[0] & 0xe0) | (fu & 0x1f)));
      } else if (!this.inNal) {
        throw new RangeError("FU-A fragment without its start");
      }
      this.appendNal(p.subarray(2));
      if (fu & 0x40) this.endNal();
    } else {
      throw new RangeError(`H.264 payload type ${type} is not supported in packetization mode 1`);
    }
  }
}

/**
 * Splits H.264 access units (4-byte length-prefixed NAL units) into RTP payloads no
 * larger than `maxPayload` bytes: runs of small NAL units go into STAP-A packets, NAL
 * units that do not fit are fragmented into FU-A packets, others go alone. The marker
 * bit is set on the access unit's last packet.
 *
 * @example
 * ```ts
 * import { H264Packetizer } from "@arcly/stream/rtp";
 *
 * const packetizer = new H264Packetizer(1200);
 * const sizes: number[] = [];
 * let size = 0;
 * packetizer.packetize(new Uint8Array([0, 0, 0, 2, 0x65, 0x88]), {
 *   begin: () => (size = 0),
 *   write: (b) => (size += b.length),
 *   writeByte: () => size++,
 *   end: () => sizes.push(size),
 * });
 * console.log(sizes); // [2]
 * ```
 */
export class H264Packetizer extends NalPacketizer {
  /** NAL unit header bytes. */
  protected readonly headerSize = 1;

  /** Write one STAP-A payload. */
  protected aggregate(
    nals: readonly Uint8Array[],
    from: number,
    to: number,
    sink: RtpPayloadSink,
  ): void {
    let f = 0;
    let nri = 0;
    for (let k = from; k < to; k++) {
      f |= nals[k][0] & 0x80;
      nri = Math.max(nri, nals[k][0] & 0x60);
    }
    sink.writeByte(f | nri | STAP_A);
    for (let k = from; k < to; k++) this.writeSized(nals[k], sink);
  }

  /** Write an FU-A indicator and header. */
  protected fragmentHeader(
    nal: Uint8Array,
    sink: RtpPayloadSink,
    start: boolean,
    end: boolean,
  ): void {
    sink.writeByte((nal[0] & 0xe0) | FU_A);
    sink.writeByte((start ? 0x80 : 0) | (end ? 0x40 : 0) | (nal[0] & 0x1f));
  }
}

/**
 * The AVCDecoderConfigurationRecord described by `sprop-parameter-sets` (base64 SPS
 * and PPS NAL units, comma-separated), or undefined when the parameter is missing or
 * holds no usable SPS and PPS.
 *
 * @example
 * ```ts
 * import { avcConfigFromFmtp } from "@arcly/stream/rtp";
 *
 * const record = avcConfigFromFmtp({ "sprop-parameter-sets": "Z0LAHtoFB+Q=,aM48gA==" });
 * console.log(record?.[1]); // 66 (Baseline)
 * ```
 */
export function avcConfigFromFmtp(fmtp: Readonly<Record<string, string>>): Uint8Array | undefined {
  const text = fmtp["sprop-parameter-sets"];
  if (!text) return undefined;
  const sps: Uint8Array[] = [];
  const pps: Uint8Array[] = [];
  for (const part of text.split(",")) {
    const nal = decodeBase64(part.trim());
    if (!nal || nal.length === 0) continue;
    const type = nal[0] & 0x1f;
    if (type === H264NalType.SPS) sps.push(nal);
    else if (type === H264NalType.PPS) pps.push(nal);
  }
  if (sps.length === 0 || pps.length === 0) return undefined;
  try {
    return buildAvcConfig({ sps, pps });
  } catch {
    return undefined;
  }
}

/**
 * The `fmtp` parameters describing an AVCDecoderConfigurationRecord: packetization
 * mode 1, `profile-level-id` and `sprop-parameter-sets`.
 *
 * @throws {RangeError} when the record is malformed.
 * @example
 * ```ts
 * import { avcConfigFromFmtp, avcFmtp } from "@arcly/stream/rtp";
 *
 * const record = avcConfigFromFmtp({ "sprop-parameter-sets": "Z0LAHtoFB+Q=,aM48gA==" })!;
 * avcFmtp(record);
 * // "packetization-mode=1; profile-level-id=42C01E; sprop-parameter-sets=Z0LAHtoFB+Q=,aM48gA=="
 * ```
 */
export function avcFmtp(record: Uint8Array): string {
  const config = parseAvcConfig(record);
  const id = [config.profile, config.compatibility, config.level]
    .map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join("");
  const sets = [...config.sps, ...config.pps].map(encodeBase64).join(",");
  return `packetization-mode=1; profile-level-id=${id}; sprop-parameter-sets=${sets}`;
}
