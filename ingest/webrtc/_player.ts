/** WHEP media out: frames from the bus (any ingest) → RTP on a werift peer. */

import { setTimeout as delay } from "node:timers/promises";
import { CatchUpPacer } from "../_catch_up.ts";
import { Buffer } from "node:buffer";
import { type RTCPeerConnection, type RTCRtpSender, RtpHeader, RtpPacket } from "werift";
import { FrameFlags, type Logger, type MediaFrame, type StreamHandle } from "../../mod.ts";
import { H264NalType, parseAvcConfig } from "../../media/codec/h264.ts";
import { hasNalUnit } from "../../media/codec/nal.ts";
import { H264Packetizer } from "../../media/rtp/h264.ts";
import type { RtpPayloadSink } from "../../media/rtp/payload.ts";
import { messageOf } from "./_peer.ts";

/** RTP payload bytes per packet: fits a 1280-byte IPv6 MTU after SRTP and extensions. */
const MAX_PAYLOAD = 1150;
/** RTCP payload-specific feedback, and its PLI and FIR formats. */
const RTCP_PSFB = 206, PLI = 1, FIR = 4;
/**
 * Least time between two answers to a player's PLI/FIR, in ms: each resends up to a GOP,
 * so a player asking on every frame cannot make us send a GOP per frame.
 */
const REFRESH_INTERVAL_MS = 500;

const TWO_32 = 2 ** 32;

/** One outgoing RTP stream: its sender, sequence numbers and clock. */
class RtpOut implements RtpPayloadSink {
  readonly #sender: RTCRtpSender;
  readonly #rate: number;
  #sequence = Math.floor(Math.random() * 0x10000);
  #timestamp = 0;
  #chunk = new Uint8Array(MAX_PAYLOAD + 16);
  #length = 0;
  #queue: RtpPacket[] = [];

  constructor(sender: RTCRtpSender, rate: number) {
    this.#sender = sender;
    this.#rate = rate;
  }

  /** Set the RTP timestamp of the packets that follow from a 90 kHz `pts`. */
  at(pts: number): this {
    const ts = Math.round(pts * this.#rate / 90000) % TWO_32;
    this.#timestamp = ts < 0 ? ts + TWO_32 : ts;
    return this;
  }

  begin(): void {
    this.#length = 0;
  }

  write(bytes: Uint8Array): void {
    this.#chunk.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  writeByte(value: number): void {
    this.#chunk[this.#length++] = value;
  }

  end(marker: boolean): void {
    this.packet(this.#chunk.slice(0, this.#length), marker);
  }

  /** Queue one packet with `payload` (owned by the packet from now on). */
  packet(payload: Uint8Array, marker: boolean): void {
    const header = new RtpHeader({
      payloadType: 0, // the sender puts the negotiated one in
      sequenceNumber: this.#sequence,
      timestamp: this.#timestamp,
      marker,
    });
    this.#sequence = (this.#sequence + 1) & 0xffff;
    this.#queue.push(
      new RtpPacket(header, Buffer.from(payload.buffer, payload.byteOffset, payload.length)),
    );
  }

  /** Send what is queued, in order. */
  async flush(): Promise<void> {
    const queue = this.#queue;
    this.#queue = [];
    for (const packet of queue) await this.#sender.sendRtp(packet);
  }
}

/**
 * Plays `handle` to a WHEP peer: the cached configs and GOP first (so the picture starts at
 * once), then live frames. H.264 keyframes carry the SPS/PPS of the cached config.
 *
 * A PLI or FIR from the player never reaches the publisher; it is answered from the cache:
 * the current GOP goes out again, keyframe (with SPS/PPS) first, up to the last frame the
 * player got, so its decoder has every reference the next live frame needs. The resent
 * frames are stamped one 90 kHz tick apart after the newest RTP timestamp sent, so the
 * player's RTP clock never goes back; live frames keep their own timing after them. When
 * the cache cannot do that (the GOP outgrew it, or the player has not had a frame of it),
 * the player skips frames until the stream's next keyframe. Answers are at least 500 ms
 * apart; a request in between is answered when that has passed.
 */
export class WhepPlayer {
  readonly #handle: StreamHandle;
  readonly #logger: Logger;
  readonly #video: RtpOut | undefined;
  readonly #audio: RtpOut | undefined;
  readonly #packetizer = new H264Packetizer(MAX_PAYLOAD);
  #parameterSets: Uint8Array[] = [];
  #waitKeyframe = true;
  #reader: ReadableStreamDefaultReader<MediaFrame> | undefined;
  #warned = new Set<string>();
  /** Sends one at a time: a refresh never splits a frame's packets. */
  #busy: Promise<void> = Promise.resolve();
  /** The last video frame sent, by reference (the GOP cache holds the same objects). */
  #lastVideo: MediaFrame | undefined;
  /** The newest 90 kHz time put on a video packet. */
  #topPts = -Infinity;
  /** A live frame must be stamped after this (the end of a refresh). */
  #floor = -Infinity;
  /** Added to live video times, grown only when a refresh would run past a live frame. */
  #shift = 0;
  #lastRefreshMs = -Infinity;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  readonly #maxLag: number;
  readonly #catchUpSpeed: number;

  /**
   * Play to `pc`; a player more than `maxLag` frames behind is dropped by the ring rather
   * than slowing anyone.
   */
  constructor(
    pc: RTCPeerConnection,
    handle: StreamHandle,
    logger: Logger,
    maxLag: number,
    catchUpSpeed: number,
  ) {
    this.#handle = handle;
    this.#logger = logger;
    this.#maxLag = maxLag;
    this.#catchUpSpeed = catchUpSpeed;
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.codecs.length === 0 || transceiver.direction !== "sendonly") continue;
      const sender = transceiver.sender;
      if (transceiver.kind === "video" && !this.#video) {
        this.#video = new RtpOut(sender, 90000);
        // From the transport: werift routes a FIR (media SSRC 0, RFC 5104) to no sender.
        sender.dtlsTransport.onRtcp.subscribe((rtcp) => {
          if (asksKeyframe(rtcp, sender.ssrc)) this.#keyframeRequested();
        });
      } else if (transceiver.kind === "audio" && !this.#audio) {
        this.#audio = new RtpOut(sender, 48000);
      }
    }
  }

  /**
   * Send the stream until it ends or {@linkcode WhepPlayer.close}; never rejects. Resolves
   * with why it stopped: the player fell more than `maxLag` frames behind, or not.
   */
  async run(): Promise<"evicted" | "ended"> {
    const subscription = this.#handle.subscribe({ replay: true, maxLag: this.#maxLag });
    const reader = subscription.getReader();
    this.#reader = reader;
    const pacer = new CatchUpPacer(this.#catchUpSpeed);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const wait = pacer.delayMs(value);
        if (wait > 0) await delay(wait);
        await this.#exclusive(() => this.#send(value));
      }
    } catch (error) {
      this.#logger.warn(`whep ${this.#handle.key}: ${messageOf(error)}`);
    } finally {
      reader.releaseLock();
    }
    return subscription.evicted ? "evicted" : "ended";
  }

  /** Stop sending. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#refreshTimer);
    this.#reader?.cancel().catch(() => {});
  }

  #exclusive(task: () => Promise<void>): Promise<void> {
    const done = this.#busy.then(task);
    this.#busy = done.catch(() => {});
    return done;
  }

  #keyframeRequested(): void {
    if (this.#closed || this.#refreshTimer !== undefined) return;
    const wait = this.#lastRefreshMs + REFRESH_INTERVAL_MS - performance.now();
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      this.#lastRefreshMs = performance.now();
      this.#exclusive(() => this.#refresh()).catch((error) =>
        this.#logger.warn(`whep ${this.#handle.key}: ${messageOf(error)}`)
      );
    }, Math.max(0, wait));
  }

  /** Answer a PLI/FIR from the GOP cache, or else restart the player at the next keyframe. */
  async #refresh(): Promise<void> {
    if (this.#closed || !this.#video) return;
    const last = this.#lastVideo;
    const gop = this.#handle.replayBuffer().filter((f) =>
      f.kind === "video" && !(f.flags & FrameFlags.CONFIG)
    );
    const end = last ? gop.lastIndexOf(last) : -1;
    if (end < 0 || !(gop[0].flags & FrameFlags.KEYFRAME)) {
      this.#waitKeyframe = true;
      return;
    }
    for (let i = 0; i <= end; i++) await this.#sendVideo(gop[i], this.#topPts + 1);
    this.#floor = this.#topPts;
  }

  async #send(frame: MediaFrame): Promise<void> {
    if (frame.kind === "audio") {
      if (!this.#audio || frame.codec !== "opus" || frame.flags & FrameFlags.CONFIG) return;
      this.#audio.at(frame.pts).packet(frame.data, false);
      return await this.#audio.flush();
    }
    if (!this.#video) return;
    if (frame.codec !== "h264") return this.#warnOnce(`video is ${frame.codec}, not H.264`);
    if (frame.flags & FrameFlags.CONFIG) {
      const config = parseAvcConfig(frame.data);
      this.#parameterSets = [...config.sps, ...config.pps];
      return;
    }
    if (this.#waitKeyframe && !(frame.flags & FrameFlags.KEYFRAME)) return;
    this.#waitKeyframe = false;
    if (frame.pts !== frame.dts) this.#warnOnce("the source has B-frames; players may stutter");
    let pts = frame.pts + this.#shift;
    if (pts <= this.#floor) {
      this.#shift += this.#floor + 1 - pts;
      pts = this.#floor + 1;
    }
    this.#floor = -Infinity;
    await this.#sendVideo(frame, pts);
  }

  /** Packetize a video frame stamped `pts`, keyframes with the cached SPS/PPS. */
  async #sendVideo(frame: MediaFrame, pts: number): Promise<void> {
    const keyframe = (frame.flags & FrameFlags.KEYFRAME) !== 0;
    const prefix = keyframe && !hasNalUnit(frame.data, isSps) ? this.#parameterSets : [];
    this.#packetizer.packetize(frame.data, this.#video!.at(pts), prefix);
    this.#lastVideo = frame;
    this.#topPts = Math.max(this.#topPts, pts);
    await this.#video!.flush();
  }

  #warnOnce(what: string): void {
    if (this.#warned.has(what)) return;
    this.#warned.add(what);
    this.#logger.warn(`whep ${this.#handle.key}: ${what}`);
  }
}

/** Whether `rtcp` is a PLI or FIR asking the sender with SSRC `ssrc` for a keyframe. */
function asksKeyframe(rtcp: { type: number }, ssrc: number): boolean {
  if (rtcp.type !== RTCP_PSFB) return false;
  const feedback = (rtcp as { feedback?: PsfbFeedback }).feedback;
  if (feedback?.count === PLI) return feedback.mediaSsrc === ssrc;
  if (feedback?.count === FIR) return feedback.fir?.some((entry) => entry.ssrc === ssrc) ?? false;
  return false;
}

/** The fields of werift's PLI and FIR feedback read here. */
interface PsfbFeedback {
  count: number;
  mediaSsrc?: number;
  fir?: { ssrc: number }[];
}

function isSps(header: number): boolean {
  return (header & 0x1f) === H264NalType.SPS;
}
