/** WHEP media out: frames from the bus (any ingest) → RTP on a werift peer. */

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
/** A player this many frames behind is dropped by the ring rather than slowing anyone. */
const MAX_LAG = 2048;
/** RTCP payload-specific feedback, and its PLI and FIR formats. */
const RTCP_PSFB = 206, PLI = 1, FIR = 4;

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
 * once), then live frames. H.264 keyframes carry the SPS/PPS of the cached config. A PLI or
 * FIR from the player never reaches the publisher: the player gets the next keyframe of the
 * stream, with the parameter sets from the cache, and nothing before it.
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

  constructor(pc: RTCPeerConnection, handle: StreamHandle, logger: Logger) {
    this.#handle = handle;
    this.#logger = logger;
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.codecs.length === 0 || transceiver.direction !== "sendonly") continue;
      const sender = transceiver.sender;
      if (transceiver.kind === "video" && !this.#video) {
        this.#video = new RtpOut(sender, 90000);
        sender.onRtcp.subscribe((rtcp) => {
          const count = (rtcp as { feedback?: { count?: number } }).feedback?.count;
          if (rtcp.type === RTCP_PSFB && (count === PLI || count === FIR)) {
            this.#waitKeyframe = true;
          }
        });
      } else if (transceiver.kind === "audio" && !this.#audio) {
        this.#audio = new RtpOut(sender, 48000);
      }
    }
  }

  /** Send the stream until it ends or {@linkcode WhepPlayer.close}; never rejects. */
  async run(): Promise<void> {
    const reader = this.#handle.subscribe({ replay: true, maxLag: MAX_LAG }).getReader();
    this.#reader = reader;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        await this.#send(value);
      }
    } catch (error) {
      this.#logger.warn(`whep ${this.#handle.key}: ${messageOf(error)}`);
    } finally {
      reader.releaseLock();
    }
  }

  /** Stop sending. */
  close(): void {
    this.#reader?.cancel().catch(() => {});
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
    const keyframe = (frame.flags & FrameFlags.KEYFRAME) !== 0;
    if (this.#waitKeyframe && !keyframe) return;
    this.#waitKeyframe = false;
    if (frame.pts !== frame.dts) this.#warnOnce("the source has B-frames; players may stutter");
    const prefix = keyframe && !hasNalUnit(frame.data, isSps) ? this.#parameterSets : [];
    this.#packetizer.packetize(frame.data, this.#video.at(frame.pts), prefix);
    await this.#video.flush();
  }

  #warnOnce(what: string): void {
    if (this.#warned.has(what)) return;
    this.#warned.add(what);
    this.#logger.warn(`whep ${this.#handle.key}: ${what}`);
  }
}

function isSps(header: number): boolean {
  return (header & 0x1f) === H264NalType.SPS;
}
