/**
 * The RTP packets of one stream track, made once per frame and shared by every viewer: one
 * SSRC, one sequence and one RTP time base per track (as MediaMTX does), so each frame's
 * packets are written once into one buffer with their boundaries, and every viewer (RTSP
 * interleaved or over UDP, WebRTC) sends the same bytes. Transport framing is the owner's.
 *
 * @module
 */

import { CLOCK_RATE, type CodecId, FrameFlags, type MediaFrame } from "../../bus/frame.ts";
import { H264NalType, parseAvcConfig } from "../codec/h264.ts";
import { H265NalType, parseHevcConfig } from "../codec/h265.ts";
import { hasNalUnit } from "../codec/nal.ts";
import { AacPacketizer } from "./aac.ts";
import { H264Packetizer } from "./h264.ts";
import { H265Packetizer } from "./h265.ts";
import { packetizeOpus } from "./opus.ts";
import { RTP_HEADER_SIZE, writeRtpHeader } from "./packet.ts";
import type { RtpPayloadSink } from "./payload.ts";

/** What the packets of one track carry. */
export interface RtpTrackFormat {
  /** The codec; frames of another codec are not packetized. */
  readonly codec: CodecId;
  /** The RTP payload type. */
  readonly payloadType: number;
  /** The RTP clock rate (90,000 for video, the sample rate for AAC, 48,000 for Opus). */
  readonly clockRate: number;
}

/**
 * Where the tracks of one stream count RTP time from: the kernel time that each track's
 * initial RTP timestamp stands for. Tracks sharing one origin stay in sync; the first frame
 * packetized sets it (its decode time) unless the owner did.
 *
 * @example
 * ```ts
 * import { RtpTimeOrigin } from "@arcly/stream/rtp";
 *
 * const origin = new RtpTimeOrigin();
 * origin.ticks ??= 90_000; // the first frame's decode time
 * ```
 */
export class RtpTimeOrigin {
  /** The kernel time (90 kHz) at every track's initial RTP timestamp, once known. */
  ticks: number | undefined;
}

/** The RTP packets of one frame, shared by every viewer of its track. */
export interface RtpFramePackets {
  /** Every packet, headers included, back to back. */
  readonly bytes: Uint8Array;
  /** Each packet: a view into {@linkcode RtpFramePackets.bytes}. */
  readonly packets: readonly Uint8Array[];
  /** The first packet's sequence number (the others follow it). */
  readonly sequence: number;
  /** The RTP timestamp of every packet. */
  readonly timestamp: number;
  /** Payload bytes of every packet together (what an RTCP sender report counts). */
  readonly payloadOctets: number;
}

/** Options of {@linkcode RtpFramePacketizer}. */
export interface RtpFramePacketizerOptions {
  /** The largest payload of a packet, in bytes (at least 16). */
  readonly maxPayload: number;
  /** Where RTP time counts from; shared by a stream's tracks (default: this track's own). */
  readonly origin?: RtpTimeOrigin;
  /** The SSRC (default random). */
  readonly ssrc?: number;
  /** The first packet's sequence number (default random). */
  readonly initialSequence?: number;
  /** The RTP timestamp at the origin (default random). */
  readonly initialTimestamp?: number;
}

/** A random 32-bit unsigned integer. */
function randomUint32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** Nothing to send for a frame (a config, another codec, too large, stale). */
const NO_PACKETS = null;

/**
 * Turns the frames of one stream track into RTP packets, once per frame: H.264 and H.265
 * (parameter sets, from the last config frame, before keyframes that lack them), AAC
 * (RFC 3640 AAC-hbr) and Opus. Every later request for a frame returns the same packets.
 * A frame never packetized that is older than one that was (a new viewer's replay has
 * overtaken the only, lagging one) gets none, so sequence numbers only ever go forward.
 *
 * @example
 * ```ts
 * import { FrameFlags, type MediaFrame } from "@arcly/stream";
 * import { RtpFramePacketizer } from "@arcly/stream/rtp";
 *
 * const opus = new RtpFramePacketizer(
 *   { codec: "opus", payloadType: 111, clockRate: 48000 },
 *   { maxPayload: 1200, initialSequence: 7, initialTimestamp: 0 },
 * );
 * const frame: MediaFrame = {
 *   track: 1, kind: "audio", codec: "opus", pts: 1800, dts: 1800, flags: FrameFlags.NONE,
 *   data: new Uint8Array([0xfc, 1, 2]),
 * };
 * const packets = opus.packets(frame)!;
 * console.log(packets.sequence, packets.timestamp, packets.bytes.length); // 7 0 15
 * opus.packets(frame) === packets; // true
 * ```
 */
export class RtpFramePacketizer {
  /** What the packets carry. */
  readonly format: RtpTrackFormat;
  /** The synchronization source of every packet. */
  readonly ssrc: number;
  /** The RTP timestamp at the origin. */
  readonly initialTimestamp: number;
  /** Where RTP time counts from. */
  readonly origin: RtpTimeOrigin;
  /** The sequence number of the next packet made. */
  nextSequence: number;
  readonly #maxPayload: number;
  readonly #made = new WeakMap<MediaFrame, RtpFramePackets | typeof NO_PACKETS>();
  readonly #writer: PacketWriter;
  #h264: H264Packetizer | undefined;
  #h265: H265Packetizer | undefined;
  #aac: AacPacketizer | undefined;
  /** Parameter sets to send before keyframes that lack them. */
  #parameterSets: Uint8Array[] = [];
  /** The newest decode time packetized. */
  #newestDts = -Infinity;

  /** Packetize frames of `format`. */
  constructor(format: RtpTrackFormat, options: RtpFramePacketizerOptions) {
    if (options.maxPayload < 16) {
      throw new RangeError(`RTP payload limit ${options.maxPayload} is too small`);
    }
    this.format = format;
    this.#maxPayload = options.maxPayload;
    this.origin = options.origin ?? new RtpTimeOrigin();
    this.ssrc = options.ssrc ?? randomUint32();
    this.nextSequence = (options.initialSequence ?? randomUint32()) & 0xffff;
    this.initialTimestamp = (options.initialTimestamp ?? randomUint32()) >>> 0;
    this.#writer = new PacketWriter(format.payloadType, this.ssrc);
  }

  /** The RTP timestamp of kernel time `ticks` (setting the origin there when unset). */
  rtpTime(ticks: number): number {
    const origin = this.origin.ticks ??= ticks;
    const elapsed = Math.round((ticks - origin) * this.format.clockRate / CLOCK_RATE);
    return (this.initialTimestamp + elapsed) >>> 0;
  }

  /**
   * The packets of `frame`, made on the first call for it: `undefined` for a config frame
   * (its parameter sets are kept for later keyframes), a frame of another codec, one too
   * large for its payload format or malformed, and a stale one (see the class).
   */
  packets(frame: MediaFrame): RtpFramePackets | undefined {
    let made = this.#made.get(frame);
    if (made === undefined) {
      made = this.#make(frame);
      this.#made.set(frame, made);
    }
    return made ?? undefined;
  }

  #make(frame: MediaFrame): RtpFramePackets | typeof NO_PACKETS {
    if (frame.codec !== this.format.codec) return NO_PACKETS;
    if (frame.flags & FrameFlags.CONFIG) {
      this.#config(frame);
      return NO_PACKETS;
    }
    if (frame.dts < this.#newestDts) return NO_PACKETS;
    this.#newestDts = frame.dts;
    const writer = this.#writer;
    this.origin.ticks ??= frame.dts;
    const timestamp = this.rtpTime(frame.pts);
    writer.start(this.nextSequence, timestamp);
    try {
      this.#payloads(frame, writer);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      return NO_PACKETS; // a malformed access unit
    }
    if (writer.count === 0) return NO_PACKETS;
    const made = writer.finish();
    this.nextSequence = (this.nextSequence + made.packets.length) & 0xffff;
    return made;
  }

  #payloads(frame: MediaFrame, sink: RtpPayloadSink): void {
    const max = this.#maxPayload;
    const key = (frame.flags & FrameFlags.KEYFRAME) !== 0;
    switch (frame.codec) {
      case "h264": {
        const prefix = key && !hasNalUnit(frame.data, isH264Sps) ? this.#parameterSets : [];
        return (this.#h264 ??= new H264Packetizer(max)).packetize(frame.data, sink, prefix);
      }
      case "h265": {
        const prefix = key && !hasNalUnit(frame.data, isH265Sps) ? this.#parameterSets : [];
        return (this.#h265 ??= new H265Packetizer(max)).packetize(frame.data, sink, prefix);
      }
      case "aac":
        if (frame.data.length > 8191) return;
        return (this.#aac ??= new AacPacketizer(max)).packetize(frame.data, sink);
      case "opus":
        if (frame.data.length <= max) packetizeOpus(frame.data, sink);
    }
  }

  /** Take the parameter sets of a config frame (a malformed one keeps the previous sets). */
  #config(frame: MediaFrame): void {
    try {
      if (frame.codec === "h264") {
        const c = parseAvcConfig(frame.data);
        this.#parameterSets = [...c.sps, ...c.pps];
      } else if (frame.codec === "h265") {
        const c = parseHevcConfig(frame.data);
        this.#parameterSets = [...c.vps, ...c.sps, ...c.pps];
      }
    } catch {
      // keep the previous sets
    }
  }
}

function isH264Sps(header: number): boolean {
  return (header & 0x1f) === H264NalType.SPS;
}

function isH265Sps(header: number): boolean {
  return ((header >> 1) & 0x3f) === H265NalType.SPS;
}

/** Writes one frame's packets, headers included, into a reused buffer, then copies them out. */
class PacketWriter implements RtpPayloadSink {
  #buf = new Uint8Array(64 * 1024);
  #length = 0;
  #start = 0;
  /** Packet ends in the buffer. */
  #ends: number[] = [];
  #payloadType: number;
  #ssrc: number;
  #sequence = 0;
  #firstSequence = 0;
  #timestamp = 0;

  constructor(payloadType: number, ssrc: number) {
    this.#payloadType = payloadType;
    this.#ssrc = ssrc;
  }

  /** Packets written so far for this frame. */
  get count(): number {
    return this.#ends.length;
  }

  /** Start a frame whose first packet has `sequence`. */
  start(sequence: number, timestamp: number): void {
    this.#length = 0;
    this.#ends.length = 0;
    this.#sequence = this.#firstSequence = sequence;
    this.#timestamp = timestamp;
  }

  begin(): void {
    this.#start = this.#length;
    this.#reserve(RTP_HEADER_SIZE);
    this.#length += RTP_HEADER_SIZE;
  }

  write(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  writeByte(value: number): void {
    this.#reserve(1);
    this.#buf[this.#length++] = value;
  }

  end(marker: boolean): void {
    writeRtpHeader(this.#buf, this.#start, {
      payloadType: this.#payloadType,
      marker,
      sequence: this.#sequence,
      timestamp: this.#timestamp,
      ssrc: this.#ssrc,
    });
    this.#sequence = (this.#sequence + 1) & 0xffff;
    this.#ends.push(this.#length);
  }

  /** The frame's packets, in a buffer of their own. */
  finish(): RtpFramePackets {
    const bytes = this.#buf.slice(0, this.#length);
    const packets: Uint8Array[] = [];
    let start = 0;
    for (const end of this.#ends) {
      packets.push(bytes.subarray(start, end));
      start = end;
    }
    return {
      bytes,
      packets,
      sequence: this.#firstSequence,
      timestamp: this.#timestamp,
      payloadOctets: this.#length - RTP_HEADER_SIZE * packets.length,
    };
  }

  #reserve(n: number): void {
    if (this.#length + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#length + n));
    grown.set(this.#buf.subarray(0, this.#length));
    this.#buf = grown;
  }
}
