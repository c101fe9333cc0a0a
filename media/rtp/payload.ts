/**
 * What every RTP payload format shares: the sink packetizers write packets into, the
 * handler depacketizers hand complete access units to, and the access-unit assembly of
 * the H.264 and H.265 formats (sequence gaps, timestamp changes, marker bits, size caps).
 *
 * @module
 */

import { splitLengthPrefixed } from "../codec/nal.ts";
import type { RtpPacket } from "./packet.ts";

/**
 * Where a packetizer writes the payloads of one access unit's RTP packets. The owner
 * adds RTP headers (and its transport's framing) around each payload.
 *
 * @example Collect payloads in an array
 * ```ts
 * import type { RtpPayloadSink } from "@arcly/stream/rtp";
 *
 * class Collect implements RtpPayloadSink {
 *   packets: { marker: boolean; payload: number[] }[] = [];
 *   #current: number[] = [];
 *   begin() { this.#current = []; }
 *   write(bytes: Uint8Array) { this.#current.push(...bytes); }
 *   writeByte(value: number) { this.#current.push(value); }
 *   end(marker: boolean) { this.packets.push({ marker, payload: this.#current }); }
 * }
 * ```
 */
export interface RtpPayloadSink {
  /** Start a packet. */
  begin(): void;
  /** Append bytes to the current packet's payload. */
  write(bytes: Uint8Array): void;
  /** Append one byte to the current packet's payload. */
  writeByte(value: number): void;
  /** Finish the current packet; `marker` is the RTP marker bit. */
  end(marker: boolean): void;
}

/**
 * Receives one complete access unit from a depacketizer: its RTP timestamp and its
 * bytes (video: NAL units with 4-byte length prefixes; audio: one raw frame). `data` is
 * owned by the receiver.
 */
export type AccessUnitHandler = (timestamp: number, data: Uint8Array) => void;

/** Options shared by the depacketizers. */
export interface DepacketizerOptions {
  /** Larger access units are dropped (default 8 MiB). */
  maxAccessUnitBytes?: number;
}

/**
 * Follows one stream's RTP sequence numbers for a depacketizer: how many packets went
 * missing before each one, with the 16-bit wrap.
 *
 * @example
 * ```ts
 * import { SequenceGap } from "@arcly/stream/rtp";
 *
 * const seq = new SequenceGap();
 * [seq.next(65535), seq.next(1), seq.next(0)]; // [0, 1, -1]: 0 was lost, then came late
 * ```
 */
export class SequenceGap {
  #last = -1;

  /**
   * Packets missing before `sequence` (0 when it follows the last one taken), or -1 for a
   * packet at or before the last one (late or repeated), which is not taken.
   */
  next(sequence: number): number {
    if (this.#last >= 0) {
      const gap = (sequence - this.#last - 1) & 0xffff;
      if (gap >= 0x8000) return -1;
      this.#last = sequence;
      return gap;
    }
    this.#last = sequence;
    return 0;
  }
}

/**
 * The access-unit assembly shared by the H.264 and H.265 depacketizers: NAL units are
 * gathered with 4-byte length prefixes into one growing buffer until the marker bit or
 * a new timestamp ends the access unit. A sequence gap abandons a fragmented NAL unit.
 * Packets that cannot be used are counted in {@linkcode NalDepacketizer.dropped}.
 *
 * @example
 * ```ts
 * import { H264Depacketizer, type NalDepacketizer } from "@arcly/stream/rtp";
 *
 * const depacketizer: NalDepacketizer = new H264Depacketizer(() => {});
 * console.log(depacketizer.dropped, depacketizer.lost); // 0 0
 * ```
 */
export abstract class NalDepacketizer {
  /** Packets or NAL units dropped: malformed, unsupported, incomplete or oversized. */
  dropped = 0;
  /** Packets missing according to sequence numbers. */
  lost = 0;
  #emit: AccessUnitHandler;
  #max: number;
  #buf = new Uint8Array(64 * 1024);
  #len = 0;
  #fragment = -1;
  #timestamp = 0;
  #sequence = new SequenceGap();
  #oversized = false;

  /** Make a depacketizer that hands access units to `emit`. */
  constructor(emit: AccessUnitHandler, options: DepacketizerOptions = {}) {
    this.#emit = emit;
    this.#max = options.maxAccessUnitBytes ?? 8 * 1024 * 1024;
  }

  /** Take one RTP packet (of this track's payload type). */
  push(packet: RtpPacket): void {
    const gap = this.#sequence.next(packet.sequence);
    if (gap < 0) {
      this.dropped++; // late or duplicate
      return;
    }
    if (gap > 0) {
      this.lost += gap;
      this.#abandonFragment();
    }
    if ((this.#len > 0 || this.#oversized) && packet.timestamp !== this.#timestamp) this.#flush();
    this.#timestamp = packet.timestamp;
    try {
      this.unpack(packet.payload);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      this.dropped++;
      this.#abandonFragment();
    }
    if (packet.marker) this.#flush();
  }

  /** Read one payload, calling the NAL methods below. Throw a RangeError to drop it. */
  protected abstract unpack(payload: Uint8Array): void;

  /** Add a whole NAL unit made of `parts` (e.g. a header and a body). */
  protected addNal(...parts: Uint8Array[]): void {
    this.startNal();
    for (const part of parts) this.appendNal(part);
    this.endNal();
  }

  /** Whether a fragmented NAL unit is open. */
  protected get inNal(): boolean {
    return this.#fragment >= 0;
  }

  /** Open a NAL unit (abandoning an unfinished one). */
  protected startNal(): void {
    if (this.#fragment >= 0) this.#abandonFragment();
    this.#reserve(4);
    this.#fragment = this.#len;
    this.#len += 4;
  }

  /** Append bytes to the open NAL unit. */
  protected appendNal(bytes: Uint8Array): void {
    if (this.#fragment < 0) throw new RangeError("NAL unit fragment without a start");
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** Close the open NAL unit. */
  protected endNal(): void {
    const at = this.#fragment;
    if (at < 0) throw new RangeError("NAL unit fragment end without a start");
    const size = this.#len - at - 4;
    this.#fragment = -1;
    if (size === 0) {
      this.#len = at;
      return;
    }
    const b = this.#buf;
    b[at] = size >>> 24;
    b[at + 1] = (size >>> 16) & 0xff;
    b[at + 2] = (size >>> 8) & 0xff;
    b[at + 3] = size & 0xff;
  }

  #abandonFragment(): void {
    if (this.#fragment < 0) return;
    this.#len = this.#fragment;
    this.#fragment = -1;
    this.dropped++;
  }

  #reserve(n: number): void {
    if (this.#len + n > this.#max) {
      this.#oversized = true;
      this.#len = 0;
      this.#fragment = -1;
      throw new RangeError(`access unit larger than ${this.#max} bytes`);
    }
    if (this.#len + n <= this.#buf.length) return;
    const grown = new Uint8Array(
      Math.min(this.#max, Math.max(this.#buf.length * 2, this.#len + n)),
    );
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }

  #flush(): void {
    this.#abandonFragment();
    const len = this.#len;
    this.#len = 0;
    if (this.#oversized) {
      this.#oversized = false;
      return;
    }
    if (len > 0) this.#emit(this.#timestamp, this.#buf.slice(0, len));
  }
}

/**
 * The packetization shared by the H.264 and H.265 payload formats: access units
 * (4-byte length-prefixed NAL units) become payloads of at most `maxPayload` bytes, runs
 * of small NAL units aggregated, NAL units that do not fit fragmented, others alone, and
 * the marker bit on the access unit's last packet. Subclasses write the aggregation and
 * fragmentation headers of their format.
 *
 * @example
 * ```ts
 * import { H265Packetizer, type NalPacketizer } from "@arcly/stream/rtp";
 *
 * const packetizer: NalPacketizer = new H265Packetizer(1400);
 * console.log(packetizer.maxPayload); // 1400
 * ```
 */
export abstract class NalPacketizer {
  /** The largest payload written. */
  readonly maxPayload: number;
  /** Bytes of a NAL unit header in this format (1 for H.264, 2 for H.265). */
  protected abstract readonly headerSize: number;

  /** Make a packetizer for payloads of at most `maxPayload` bytes (at least 16). */
  constructor(maxPayload: number) {
    if (maxPayload < 16) throw new RangeError(`RTP payload limit ${maxPayload} is too small`);
    this.maxPayload = maxPayload;
  }

  /**
   * Write the packets of `au`, preceded by the NAL units of `prefix` (e.g. parameter sets
   * before a keyframe).
   *
   * @throws {RangeError} when a NAL length prefix overruns `au`.
   */
  packetize(au: Uint8Array, sink: RtpPayloadSink, prefix: readonly Uint8Array[] = []): void {
    const nals = prefix.length > 0
      ? [...prefix, ...splitLengthPrefixed(au)]
      : splitLengthPrefixed(au);
    const max = this.maxPayload;
    let n = nals.length;
    while (n > 0 && nals[n - 1].length <= this.headerSize) n--;
    for (let i = 0; i < n;) {
      const nal = nals[i];
      if (nal.length <= this.headerSize) {
        i++;
        continue;
      }
      if (nal.length > max) {
        this.fragment(nal, sink, i === n - 1);
        i++;
        continue;
      }
      let size = this.headerSize + 2 + nal.length;
      let j = i + 1;
      while (j < n && nals[j].length > this.headerSize && size + 2 + nals[j].length <= max) {
        size += 2 + nals[j].length;
        j++;
      }
      sink.begin();
      if (j - i >= 2) this.aggregate(nals, i, j, sink);
      else sink.write(nal);
      sink.end(j === n);
      i = j;
    }
  }

  /** Write one aggregation packet's payload with `nals[from..to)`. */
  protected abstract aggregate(
    nals: readonly Uint8Array[],
    from: number,
    to: number,
    sink: RtpPayloadSink,
  ): void;

  /**
   * Write the fragmentation packets of a NAL unit: its body (without the NAL unit header)
   * in chunks, each behind a fragmentation header; `last` when it ends the access unit.
   */
  protected fragment(nal: Uint8Array, sink: RtpPayloadSink, last: boolean): void {
    const header = this.headerSize;
    const chunk = this.maxPayload - header - 1;
    for (let pos = header; pos < nal.length; pos += chunk) {
      const end = Math.min(nal.length, pos + chunk);
      const final = end === nal.length;
      sink.begin();
      this.fragmentHeader(nal, sink, pos === header, final);
      sink.write(nal.subarray(pos, end));
      sink.end(final && last);
    }
  }

  /**
   * Write the header of one fragmentation packet (NAL unit header size + 1 bytes: the
   * format's indicator or payload header, then S, E and the NAL unit type).
   */
  protected abstract fragmentHeader(
    nal: Uint8Array,
    sink: RtpPayloadSink,
    start: boolean,
    end: boolean,
  ): void;

  /** Write a NAL unit with its 16-bit size in front, as aggregation packets carry them. */
  protected writeSized(nal: Uint8Array, sink: RtpPayloadSink): void {
    sink.writeByte(nal.length >> 8);
    sink.writeByte(nal.length & 0xff);
    sink.write(nal);
  }
}
