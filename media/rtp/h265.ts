/**
 * The H.265 RTP payload format (RFC 7798): single NAL unit packets, aggregation packets
 * (AP) and fragmentation units (FU), both directions, with optional DONL fields on
 * receipt, and the SDP `fmtp` parameters (`sprop-vps`, `sprop-sps`, `sprop-pps`).
 *
 * @module
 */

import { buildHevcConfig, H265NalType, parseHevcConfig } from "../codec/h265.ts";
import { type AccessUnitHandler, type DepacketizerOptions, NalDepacketizer } from "./payload.ts";
import { NalPacketizer, type RtpPayloadSink } from "./payload.ts";
import { decodeBase64, encodeBase64 } from "../codec/base64.ts";

const AP = 48;
const FU = 49;
const PACI = 50;

/** Options for {@linkcode H265Depacketizer}. */
export interface H265DepacketizerOptions extends DepacketizerOptions {
  /**
   * Whether packets carry decoding order numbers (DONL/DOND), as they do when the SDP
   * has `sprop-max-don-diff` greater than 0 (default false).
   */
  donl?: boolean;
}

/**
 * Reassembles H.265 access units from RTP packets: single NAL units, APs and FUs.
 * PACI packets are dropped and counted, as are truncated aggregates and fragments
 * without their start.
 *
 * @example
 * ```ts
 * import { H265Depacketizer, RtpPacket } from "@arcly/stream/rtp";
 *
 * const units: Uint8Array[] = [];
 * const depacketizer = new H265Depacketizer((_timestamp, au) => units.push(au));
 * // one packet, marker set: an IDR_W_RADL NAL unit 26 01 af
 * depacketizer.push(new RtpPacket().parse(new Uint8Array([
 *   0x80, 0xe0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x26, 0x01, 0xaf,
 * ])));
 * console.log(units[0]); // Uint8Array [0, 0, 0, 3, 0x26, 0x01, 0xaf]
 * ```
 */
export class H265Depacketizer extends NalDepacketizer {
  #donl: boolean;

  /** Make a depacketizer that hands access units to `emit`. */
  constructor(emit: AccessUnitHandler, options: H265DepacketizerOptions = {}) {
    super(emit, options);
    this.#donl = options.donl ?? false;
  }

  /** Read one H.265 payload. */
  protected unpack(p: Uint8Array): void {
    if (p.length < 3) throw new RangeError(`H.265 payload of ${p.length} bytes`);
    const type = (p[0] >> 1) & 0x3f;
    const don = this.#donl ? 2 : 0;
    if (type === AP) {
      let pos = 2 + don;
      const nals: [number, number][] = [];
      while (pos < p.length) {
        if (nals.length > 0) pos += don / 2; // DOND
        if (pos + 2 > p.length) throw new RangeError("AP size field truncated");
        const size = (p[pos] << 8) | p[pos + 1];
        if (size < 2 || pos + 2 + size > p.length) {
          throw new RangeError(`AP NAL unit of ${size} bytes overruns the packet`);
        }
        nals.push([pos + 2, pos + 2 + size]);
        pos += 2 + size;
      }
      for (const [from, to] of nals) this.addNal(p.subarray(from, to));
    } else if (type === FU) {
      const fu = p[2];
      const start = (fu & 0x80) !== 0;
      const data = 3 + (start ? don : 0);
      if (p.length <= data) throw new RangeError("FU packet without data");
      if (start) {
        this.startNal();
        this.appendNal(Uint8Array.of((p[0] & 0x81) | ((fu & 0x3f) << 1), p[1]));
      } else if (!this.inNal) {
        throw new RangeError("FU fragment without its start");
      }
      this.appendNal(p.subarray(data));
      if (fu & 0x40) this.endNal();
    } else if (type === PACI) {
      throw new RangeError("PACI packets are not supported");
    } else if (don > 0) {
      if (p.length <= 4) throw new RangeError("single NAL unit packet without data");
      this.addNal(p.subarray(0, 2), p.subarray(4));
    } else {
      this.addNal(p);
    }
  }
}

/**
 * Splits H.265 access units (4-byte length-prefixed NAL units) into RTP payloads no
 * larger than `maxPayload` bytes: runs of small NAL units go into aggregation packets,
 * NAL units that do not fit into fragmentation units, others alone. No DONL fields are
 * written (`sprop-max-don-diff` is 0). The marker bit is set on the last packet.
 *
 * @example
 * ```ts
 * import { H265Packetizer } from "@arcly/stream/rtp";
 *
 * const packetizer = new H265Packetizer(1200);
 * let packets = 0;
 * packetizer.packetize(new Uint8Array([0, 0, 0, 3, 0x26, 0x01, 0xaf]), {
 *   begin() {}, write() {}, writeByte() {}, end: () => packets++,
 * });
 * console.log(packets); // 1
 * ```
 */
export class H265Packetizer extends NalPacketizer {
  /** NAL unit header bytes. */
  protected readonly headerSize = 2;

  /** Write one AP payload. */
  protected aggregate(
    nals: readonly Uint8Array[],
    from: number,
    to: number,
    sink: RtpPayloadSink,
  ): void {
    let f = 0;
    let layer = 63;
    let tid = 7;
    for (let k = from; k < to; k++) {
      const nal = nals[k];
      f |= nal[0] & 0x80;
      layer = Math.min(layer, ((nal[0] & 1) << 5) | (nal[1] >> 3));
      tid = Math.min(tid, nal[1] & 7);
    }
    sink.writeByte(f | (AP << 1) | (layer >> 5));
    sink.writeByte(((layer & 0x1f) << 3) | tid);
    for (let k = from; k < to; k++) this.writeSized(nals[k], sink);
  }

  /** Write an FU payload header and FU header. */
  protected fragmentHeader(
    nal: Uint8Array,
    sink: RtpPayloadSink,
    start: boolean,
    end: boolean,
  ): void {
    sink.writeByte((nal[0] & 0x81) | (FU << 1));
    sink.writeByte(nal[1]);
    sink.writeByte((start ? 0x80 : 0) | (end ? 0x40 : 0) | ((nal[0] >> 1) & 0x3f));
  }
}

/**
 * The HEVCDecoderConfigurationRecord described by `sprop-vps`, `sprop-sps` and
 * `sprop-pps` (base64 NAL units, comma-separated), or undefined when one is missing or
 * the SPS cannot be read.
 *
 * @example
 * ```ts
 * import { hevcConfigFromFmtp } from "@arcly/stream/rtp";
 *
 * hevcConfigFromFmtp({ "sprop-vps": "QAEMAf//" }); // undefined: no SPS or PPS
 * ```
 */
export function hevcConfigFromFmtp(
  fmtp: Readonly<Record<string, string>>,
): Uint8Array | undefined {
  const sets = (name: string, type: number): Uint8Array[] =>
    (fmtp[name] ?? "").split(",").map((part) => decodeBase64(part.trim()))
      .filter((nal): nal is Uint8Array =>
        nal !== undefined && nal.length > 2 && ((nal[0] >> 1) & 0x3f) === type
      );
  const vps = sets("sprop-vps", H265NalType.VPS);
  const sps = sets("sprop-sps", H265NalType.SPS);
  const pps = sets("sprop-pps", H265NalType.PPS);
  if (vps.length === 0 || sps.length === 0 || pps.length === 0) return undefined;
  try {
    return buildHevcConfig({ vps, sps, pps });
  } catch {
    return undefined;
  }
}

/**
 * The `fmtp` parameters describing an HEVCDecoderConfigurationRecord:
 * `sprop-vps`, `sprop-sps` and `sprop-pps`.
 *
 * @throws {RangeError} when the record is malformed.
 * @example
 * ```ts
 * import { hevcFmtp } from "@arcly/stream/rtp";
 *
 * function describe(record: Uint8Array): string {
 *   return hevcFmtp(record); // "sprop-vps=…; sprop-sps=…; sprop-pps=…"
 * }
 * ```
 */
export function hevcFmtp(record: Uint8Array): string {
  const config = parseHevcConfig(record);
  const list = (nals: Uint8Array[]) => nals.map(encodeBase64).join(",");
  return `sprop-vps=${list(config.vps)}; sprop-sps=${list(config.sps)}; sprop-pps=${
    list(config.pps)
  }`;
}
