/**
 * WebRTC media in (a WHIP publisher's, a WHEP source's): RTP from a werift peer →
 * length-prefixed H.264 and Opus frames in the bus's contract.
 */

import type { MediaStreamTrack, RTCPeerConnection, RtpPacket as WeriftRtp } from "werift";
import { FrameFlags, type Logger, type MediaFrame, type StreamMetadata } from "../../mod.ts";
import {
  avcCodecString,
  buildAvcConfig,
  H264NalType,
  parseH264Sps,
} from "../../media/codec/h264.ts";
import { splitLengthPrefixed } from "../../media/codec/nal.ts";
import { buildOpusHead } from "../../media/codec/opus.ts";
import { TimestampUnwrapper } from "../../media/codec/timestamp.ts";
import { H264Depacketizer } from "../../media/rtp/h264.ts";
import { H264PictureState } from "../../media/rtp/picture_order.ts";
import { DtsRecovery } from "../../media/rtp/decode_time.ts";
import { RtpPacket } from "../../media/rtp/packet.ts";
import { messageOf } from "./_peer.ts";

/** One track's RTP clock mapped onto the stream's 90 kHz timeline. */
class TrackClock {
  #unwrap = new TimestampUnwrapper();
  #first = -1;
  #anchor = 0;
  readonly #rate: number;
  readonly #start: number;

  constructor(rate: number, start: number) {
    this.#rate = rate;
    this.#start = start;
  }

  /**
   * 90 kHz time of RTP timestamp `ts`: tracks are anchored at their first packet's arrival
   * (RTP clocks of different tracks start at random values), then follow their RTP clock.
   */
  pts(ts: number): number {
    const unwrapped = this.#unwrap.unwrap(ts);
    if (this.#first < 0) {
      this.#first = unwrapped;
      this.#anchor = Math.round((performance.now() - this.#start) * 90);
    }
    return this.#anchor + Math.round((unwrapped - this.#first) * 90000 / this.#rate);
  }
}

const SAME = (a: Uint8Array | undefined, b: Uint8Array) =>
  a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/** Where a {@linkcode PeerMediaReceiver} delivers what it receives. */
export interface ReceivedMedia {
  /** Each frame (video on track 0, audio on track 1), a track's CONFIG first. */
  frame(frame: MediaFrame): void;
  /** What the media says about the stream (size and codec strings), as it learns it. */
  metadata?(update: (metadata: StreamMetadata) => void): void;
  /** Logs what it cannot use (an SPS that does not parse). */
  readonly logger: Logger;
  /** What log lines name the stream by (escaped), e.g. `whip live/cam`. */
  readonly label: string;
  /** Ask the sender for a keyframe this often in ms (0: only at the start and after loss). */
  readonly keyframeIntervalMs: number;
}

/**
 * Turns what a peer sends into frames: H.264 access units (with a CONFIG frame whenever
 * SPS/PPS change) and Opus packets (after an OpusHead CONFIG). Video waits for a keyframe
 * at the start and after packet loss, asking the sender for one with a PLI; with
 * `keyframeIntervalMs` it also asks regularly, since WebRTC encoders send keyframes only
 * on request and the GOP cache and HLS need them.
 */
export class PeerMediaReceiver {
  /** Frames delivered so far. */
  frames = 0;
  /** When the last RTP packet with a payload arrived (`performance.now()`), or -1. */
  lastPacketMs = -1;
  readonly #out: ReceivedMedia;
  readonly #start = performance.now();
  readonly #packet = new RtpPacket();
  #sps: Uint8Array | undefined;
  #pps: Uint8Array | undefined;
  /** Picture order counts, for decode times: RTP carries presentation times only. */
  #pictures = new H264PictureState();
  #dts = new DtsRecovery();
  #needKeyframe = true;
  #lastPliMs = -Infinity;
  #requestKeyframe: () => void = () => {};
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(pc: RTCPeerConnection, out: ReceivedMedia) {
    this.#out = out;
    const keyframeIntervalMs = out.keyframeIntervalMs;
    const seen = new Set<MediaStreamTrack>();
    const attach = (track: MediaStreamTrack) => {
      if (seen.has(track)) return;
      seen.add(track);
      const transceiver = pc.getTransceivers().find((t) => t.receiver.tracks.includes(track));
      if (track.kind === "video") {
        this.#requestKeyframe = () => {
          if (track.ssrc === undefined || !transceiver) return;
          this.#lastPliMs = performance.now();
          transceiver.receiver.sendRtcpPLI(track.ssrc).catch(() => {});
        };
        this.#video(track);
      } else {
        this.#audio(track);
      }
    };
    // Tracks announced with a=ssrc exist once the offer is applied; others come with RTP.
    for (const transceiver of pc.getTransceivers()) transceiver.receiver.tracks.forEach(attach);
    pc.onTrack.subscribe(attach);
    if (keyframeIntervalMs > 0) {
      this.#timer = setInterval(() => this.#requestKeyframe(), keyframeIntervalMs);
    }
  }

  /** Stop asking the sender for keyframes. */
  close(): void {
    clearInterval(this.#timer);
  }

  #video(track: MediaStreamTrack): void {
    const clock = new TrackClock(90000, this.#start);
    const depacketizer = new H264Depacketizer((ts, au) => this.#videoUnit(clock.pts(ts), au));
    let lost = 0;
    track.onReceiveRtp.subscribe((rtp) => {
      if (rtp.payload.length > 0) this.lastPacketMs = performance.now();
      depacketizer.push(this.#fill(rtp));
      if (depacketizer.lost !== lost) {
        lost = depacketizer.lost;
        this.#needKeyframe = true;
      }
    });
  }

  #audio(track: MediaStreamTrack): void {
    const clock = new TrackClock(48000, this.#start);
    let configured = false;
    track.onReceiveRtp.subscribe((rtp) => {
      if (rtp.payload.length === 0) return;
      this.lastPacketMs = performance.now();
      const pts = clock.pts(rtp.header.timestamp);
      if (!configured) {
        configured = true;
        // RTP does not carry the encoder's pre-skip; 0 keeps every decoded sample.
        const head = buildOpusHead({ channels: 2, preSkip: 0, inputSampleRate: 48000 });
        this.#publish(1, "audio", "opus", pts, FrameFlags.CONFIG, head);
        this.#out.metadata?.((m) => (m.audioCodec = "opus"));
      }
      this.#publish(1, "audio", "opus", pts, FrameFlags.KEYFRAME, rtp.payload);
    });
  }

  /** The shared parsed-packet object refilled from werift's packet (no copy of the payload). */
  #fill(rtp: WeriftRtp): RtpPacket {
    const p = this.#packet;
    p.payloadType = rtp.header.payloadType;
    p.marker = rtp.header.marker;
    p.sequence = rtp.header.sequenceNumber;
    p.timestamp = rtp.header.timestamp;
    p.ssrc = rtp.header.ssrc;
    p.payload = rtp.payload;
    return p;
  }

  #videoUnit(pts: number, au: Uint8Array): void {
    let keyframe = false;
    let sps: Uint8Array | undefined;
    let pps: Uint8Array | undefined;
    let poc: number | undefined;
    for (const nal of splitLengthPrefixed(au)) {
      const type = nal[0] & 0x1f;
      if (type === H264NalType.IDR) keyframe = true;
      else if (type === H264NalType.SPS) sps = nal;
      else if (type === H264NalType.PPS) pps = nal;
      if (type === H264NalType.SPS || type === H264NalType.PPS) {
        if (this.#pictures.addParameterSet(nal)) {
          const { reorderHint, sps } = this.#pictures;
          this.#dts.configure(reorderHint, sps?.frameRate);
        }
      } else if (type >= 1 && type <= 5) poc ??= this.#pictures.poc(nal);
    }
    if (sps && pps && !(SAME(this.#sps, sps) && SAME(this.#pps, pps))) {
      this.#configure(pts, sps, pps);
    }
    if (this.#sps === undefined || (this.#needKeyframe && !keyframe)) {
      if (performance.now() - this.#lastPliMs > 500) this.#requestKeyframe();
      return;
    }
    this.#needKeyframe = false;
    // A sender with B-frames (an encoder other than a browser's) reorders: recover decode times.
    const dts = this.#dts.next(pts, poc, keyframe);
    const flags = keyframe ? FrameFlags.KEYFRAME : FrameFlags.NONE;
    this.#publish(0, "video", "h264", pts, flags, au, dts);
  }

  #configure(pts: number, sps: Uint8Array, pps: Uint8Array): void {
    let config: Uint8Array;
    let info;
    try {
      info = parseH264Sps(sps);
      config = buildAvcConfig({ sps: [sps], pps: [pps] });
    } catch (error) {
      this.#out.logger.warn(`${this.#out.label}: unusable SPS/PPS: ${messageOf(error)}`);
      return;
    }
    this.#sps = sps.slice();
    this.#pps = pps.slice();
    this.#out.metadata?.((m) => {
      m.width = info.width;
      m.height = info.height;
      m.videoCodec = avcCodecString(info);
    });
    this.#publish(0, "video", "h264", pts, FrameFlags.CONFIG, config);
  }

  #publish(
    track: number,
    kind: MediaFrame["kind"],
    codec: MediaFrame["codec"],
    pts: number,
    flags: number,
    data: Uint8Array,
    dts = pts,
  ): void {
    this.#out.frame({ track, kind, codec, pts, dts, flags, data });
    this.frames++;
  }
}
