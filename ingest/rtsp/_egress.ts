/**
 * Sending a stream to an RTSP player: kernel frames become RTP packets (with parameter
 * sets before keyframes) and RTCP sender reports, batched per frame into one reusable
 * buffer that goes out as interleaved frames on TCP or as datagrams on UDP.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import { CatchUpPacer } from "../_catch_up.ts";
import { FrameFlags, type MediaFrame, type StreamHandle } from "../../mod.ts";
import { H264NalType, parseAvcConfig } from "../../media/codec/h264.ts";
import { H265NalType, parseHevcConfig } from "../../media/codec/h265.ts";
import { hasNalUnit } from "../../media/codec/nal.ts";
import { writeRtpHeader } from "../../media/rtp/packet.ts";
import {
  ntpSecondsFromUnixMs,
  SENDER_REPORT_SIZE,
  writeSenderReport,
} from "../../media/rtp/rtcp.ts";
import type { RtpPayloadSink } from "../../media/rtp/payload.ts";
import { H264Packetizer } from "../../media/rtp/h264.ts";
import { H265Packetizer } from "../../media/rtp/h265.ts";
import { AacPacketizer } from "../../media/rtp/aac.ts";
import { packetizeOpus } from "../../media/rtp/opus.ts";
import type { DescribedTrack } from "./_formats.ts";

/** Sender reports go out this often per track (and before the first packet). */
const REPORT_INTERVAL_MS = 2000;

/** A random 32-bit unsigned integer (SSRCs, initial sequence numbers and timestamps). */
export function randomUint32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/** One track a player set up: its RTP identity and where its packets go. */
export class EgressTrack {
  readonly described: DescribedTrack;
  readonly ssrc: number;
  readonly initialSequence = randomUint32() & 0xffff;
  readonly initialRtp = randomUint32();
  /** The interleaved RTP channel (RTCP is the next one). */
  readonly channel: number;
  sequence: number;
  packets = 0;
  octets = 0;
  lastReportMs = -Infinity;
  /** Parameter sets to send before keyframes that lack them. */
  parameterSets: Uint8Array[] = [];

  constructor(described: DescribedTrack, channel: number, ssrc: number = randomUint32()) {
    this.described = described;
    this.channel = channel;
    this.ssrc = ssrc;
    this.sequence = this.initialSequence;
  }

  /** The RTP timestamp of a kernel time, given the player's base time. */
  rtpTime(ticks: number, base: number): number {
    const rate = this.described.clockRate;
    return (this.initialRtp + Math.round((ticks - base) * rate / 90000)) >>> 0;
  }

  /** Take the parameter sets of a CONFIG frame. */
  config(frame: MediaFrame): void {
    try {
      if (frame.codec === "h264") {
        const c = parseAvcConfig(frame.data);
        this.parameterSets = [...c.sps, ...c.pps];
      } else if (frame.codec === "h265") {
        const c = parseHevcConfig(frame.data);
        this.parameterSets = [...c.vps, ...c.sps, ...c.pps];
      }
    } catch {
      // keep the previous sets
    }
  }
}

/** The packets of one frame: interleaved framing included, in one reused buffer. */
export class RtpBatch implements RtpPayloadSink {
  #buf = new Uint8Array(256 * 1024);
  /** Bytes used. */
  length = 0;
  /** Per packet: start, end, track slot, 1 for RTCP (0 for RTP). */
  readonly index: number[] = [];
  #track: EgressTrack | undefined;
  #slot = 0;
  #timestamp = 0;
  #start = 0;

  /** The bytes of every packet with its interleaved header. */
  get bytes(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }

  /** One packet without its interleaved header. */
  packet(i: number): Uint8Array {
    return this.#buf.subarray(this.index[4 * i] + 4, this.index[4 * i + 1]);
  }

  /** Empty the batch. */
  reset(): void {
    this.length = 0;
    this.index.length = 0;
  }

  /** Packets written next belong to `track` (at `slot`) with RTP timestamp `timestamp`. */
  frame(track: EgressTrack, slot: number, timestamp: number): void {
    this.#track = track;
    this.#slot = slot;
    this.#timestamp = timestamp;
  }

  /** Add a sender report for `track` saying `rtp` was sampled at `ntpSeconds`. */
  senderReport(track: EgressTrack, slot: number, ntpSeconds: number, rtp: number): void {
    const at = this.length;
    this.#reserve(4 + SENDER_REPORT_SIZE);
    this.#interleave(at, track.channel + 1, SENDER_REPORT_SIZE);
    writeSenderReport(this.#buf, at + 4, {
      ssrc: track.ssrc,
      ntpSeconds,
      rtpTimestamp: rtp,
      packetCount: track.packets,
      octetCount: track.octets,
    });
    this.length = at + 4 + SENDER_REPORT_SIZE;
    this.index.push(at, this.length, slot, 1);
  }

  begin(): void {
    this.#start = this.length;
    this.#reserve(16);
    this.length += 16;
  }

  write(bytes: Uint8Array): void {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  writeByte(value: number): void {
    this.#reserve(1);
    this.#buf[this.length++] = value;
  }

  end(marker: boolean): void {
    const track = this.#track!;
    const at = this.#start;
    const size = this.length - at - 4;
    this.#interleave(at, track.channel, size);
    writeRtpHeader(this.#buf, at + 4, {
      payloadType: track.described.payloadType,
      marker,
      sequence: track.sequence,
      timestamp: this.#timestamp,
      ssrc: track.ssrc,
    });
    track.sequence = (track.sequence + 1) & 0xffff;
    track.packets++;
    track.octets += size - 12;
    this.index.push(at, this.length, this.#slot, 0);
  }

  #interleave(at: number, channel: number, size: number): void {
    const b = this.#buf;
    b[at] = 0x24;
    b[at + 1] = channel;
    b[at + 2] = size >> 8;
    b[at + 3] = size & 0xff;
  }

  #reserve(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    grown.set(this.#buf.subarray(0, this.length));
    this.#buf = grown;
  }
}

/** Where a player's batches go. */
export type BatchSender = (batch: RtpBatch, tracks: readonly EgressTrack[]) => Promise<void>;

/** What ended a play. */
export type PlayEnd = "stopped" | "ended" | "evicted" | "failed";

/**
 * Plays a stream to one client: the replay buffer then live frames, each packetized for
 * the tracks the client set up, until stopped or the stream ends.
 */
export class Player {
  readonly tracks: readonly EgressTrack[];
  /**
   * The kernel time at RTP time `initialRtp` of every track: the first frame's decode time
   * (known at once when the stream has a replay buffer), or a previous play's.
   */
  base: number | undefined;
  #handle: StreamHandle;
  #send: BatchSender;
  #maxLag: number;
  #catchUpSpeed: number;
  #maxPayload: number;
  #batch = new RtpBatch();
  #reader: ReadableStreamDefaultReader<MediaFrame> | undefined;
  #stopped = false;
  #ntpBase = 0;
  #h264: H264Packetizer;
  #h265: H265Packetizer;
  #aac: AacPacketizer;

  constructor(
    handle: StreamHandle,
    tracks: readonly EgressTrack[],
    send: BatchSender,
    options: { maxLag: number; catchUpSpeed: number; maxPayload: number; base?: number },
  ) {
    this.#handle = handle;
    this.tracks = tracks;
    this.#send = send;
    this.#maxLag = options.maxLag;
    this.#catchUpSpeed = options.catchUpSpeed;
    this.#maxPayload = options.maxPayload;
    this.#h264 = new H264Packetizer(options.maxPayload);
    this.#h265 = new H265Packetizer(options.maxPayload);
    this.#aac = new AacPacketizer(options.maxPayload);
    this.base = options.base ??
      handle.replayBuffer().find((f) => !(f.flags & FrameFlags.CONFIG))?.dts;
  }

  /** Play until stopped or the stream ends; resolves with why it ended. */
  async run(): Promise<PlayEnd> {
    const sub = this.#handle.subscribe({ replay: true, maxLag: this.#maxLag });
    const reader = sub.getReader();
    this.#reader = reader;
    let videoStarted = !this.tracks.some((t) => t.described.kind === "video");
    const pacer = new CatchUpPacer(this.#catchUpSpeed);
    try {
      for (;;) {
        const { value: frame, done } = await reader.read();
        if (done || this.#stopped) break;
        const slot = this.tracks.findIndex((t) => t.described.kind === frame.kind);
        if (slot < 0) continue;
        const track = this.tracks[slot];
        if (frame.flags & FrameFlags.CONFIG) {
          track.config(frame);
          continue;
        }
        if (frame.codec !== track.described.codec) continue;
        if (frame.kind === "video" && !videoStarted) {
          if (!(frame.flags & FrameFlags.KEYFRAME)) continue;
          videoStarted = true;
        }
        this.base ??= frame.dts;
        const wait = pacer.delayMs(frame);
        if (wait > 0) await delay(wait);
        if (this.#stopped) break;
        if (this.#ntpBase === 0) this.#ntpBase = ntpSecondsFromUnixMs(Date.now());
        this.#packetize(frame, track, slot, this.base);
        await this.#send(this.#batch, this.tracks);
        if (this.#stopped) break;
      }
    } catch {
      return "failed";
    } finally {
      reader.releaseLock();
      void sub.cancel();
    }
    if (this.#stopped) return "stopped";
    return sub.evicted ? "evicted" : "ended";
  }

  /** Stop playing (idempotent). */
  stop(): void {
    this.#stopped = true;
    void this.#reader?.cancel();
  }

  #packetize(frame: MediaFrame, track: EgressTrack, slot: number, base: number): void {
    const batch = this.#batch;
    batch.reset();
    const rtp = track.rtpTime(frame.pts, base);
    const now = performance.now();
    if (now - track.lastReportMs >= REPORT_INTERVAL_MS) {
      track.lastReportMs = now;
      batch.senderReport(track, slot, this.#ntpBase + (frame.pts - base) / 90000, rtp);
    }
    batch.frame(track, slot, rtp);
    const key = (frame.flags & FrameFlags.KEYFRAME) !== 0;
    switch (frame.codec) {
      case "h264": {
        const prefix = key && !hasNalUnit(frame.data, isH264Sps) ? track.parameterSets : [];
        this.#h264.packetize(frame.data, batch, prefix);
        break;
      }
      case "h265": {
        const prefix = key && !hasNalUnit(frame.data, isH265Sps) ? track.parameterSets : [];
        this.#h265.packetize(frame.data, batch, prefix);
        break;
      }
      case "aac":
        if (frame.data.length <= 8191) this.#aac.packetize(frame.data, batch);
        break;
      default:
        if (frame.data.length <= this.#maxPayload) packetizeOpus(frame.data, batch);
    }
  }
}

function isH264Sps(header: number): boolean {
  return (header & 0x1f) === H264NalType.SPS;
}

function isH265Sps(header: number): boolean {
  return ((header >> 1) & 0x3f) === H265NalType.SPS;
}
