/**
 * Opus over RTP (RFC 7587): one Opus packet per RTP packet on a 48 kHz clock, and the
 * SDP side (`opus/48000/2`, `sprop-stereo`) mapped to and from an OpusHead.
 *
 * @module
 */

import { buildOpusHead, opusPacketSamples, parseOpusHead } from "../codec/opus.ts";
import type { AccessUnitHandler, RtpPayloadSink } from "./payload.ts";
import type { RtpPacket } from "./packet.ts";

/**
 * Hands each Opus packet to `emit` with its RTP timestamp. Empty payloads and payloads
 * whose TOC byte announces more than 120 ms are dropped and counted.
 *
 * @example
 * ```ts
 * import { OpusDepacketizer, RtpPacket } from "@arcly/stream/rtp";
 *
 * const got: number[] = [];
 * const d = new OpusDepacketizer((ts) => got.push(ts));
 * d.push(new RtpPacket().parse(new Uint8Array([0x80, 0x6f, 0, 1, 0, 0, 3, 0xc0, 0, 0, 0, 1, 0xfc, 1])));
 * console.log(got); // [960]
 * ```
 */
export class OpusDepacketizer {
  /** Payloads dropped as malformed. */
  dropped = 0;
  #emit: AccessUnitHandler;

  /** Make a depacketizer that hands Opus packets to `emit`. */
  constructor(emit: AccessUnitHandler) {
    this.#emit = emit;
  }

  /** Take one RTP packet. */
  push(packet: RtpPacket): void {
    try {
      opusPacketSamples(packet.payload);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      this.dropped++;
      return;
    }
    this.#emit(packet.timestamp, packet.payload.slice());
  }
}

/**
 * Writes one Opus packet as one RTP payload (marker bit clear).
 *
 * @example
 * ```ts
 * import { packetizeOpus } from "@arcly/stream/rtp";
 *
 * let size = 0;
 * packetizeOpus(new Uint8Array([0xfc, 1, 2]), {
 *   begin() {}, write: (b) => (size += b.length), writeByte() {}, end() {},
 * });
 * console.log(size); // 3
 * ```
 */
export function packetizeOpus(packet: Uint8Array, sink: RtpPayloadSink): void {
  sink.begin();
  sink.write(packet);
  sink.end(false);
}

/**
 * The OpusHead for an SDP `opus/48000/2` stream: stereo unless `sprop-stereo=0`. RTP
 * carries no pre-skip or input rate, so both are left at 0 and 48000.
 *
 * @example
 * ```ts
 * import { opusHeadFromFmtp } from "@arcly/stream/rtp";
 *
 * opusHeadFromFmtp({ "sprop-stereo": "0" })[9]; // 1 (the channel count byte)
 * ```
 */
export function opusHeadFromFmtp(fmtp: Readonly<Record<string, string>>): Uint8Array {
  const channels = fmtp["sprop-stereo"] === "0" ? 1 : 2;
  return buildOpusHead({ channels, preSkip: 0, inputSampleRate: 48000 });
}

/**
 * The `fmtp` parameters for an OpusHead: `sprop-stereo` from its channel count.
 *
 * @throws {RangeError} when the OpusHead is malformed or has more than 2 channels.
 * @example
 * ```ts
 * import { opusFmtp, opusHeadFromFmtp } from "@arcly/stream/rtp";
 *
 * opusFmtp(opusHeadFromFmtp({})); // "sprop-stereo=1"
 * ```
 */
export function opusFmtp(head: Uint8Array): string {
  const { channels } = parseOpusHead(head);
  if (channels > 2) throw new RangeError(`Opus with ${channels} channels has no RTP mapping here`);
  return `sprop-stereo=${channels === 2 ? 1 : 0}`;
}
