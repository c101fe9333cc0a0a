/**
 * Receiving RTP (a published stream, or one a pull client plays): packets of each track become kernel
 * frames (depacketizing, clock conversion, parameter sets, keyframes, decode times), and
 * the tracks are put on one timeline with the publisher's sender reports.
 *
 * @module
 */

import { FrameFlags, type MediaFrame, type StreamHandle, type TrackKind } from "../../mod.ts";
import { aacCodecString, parseAudioSpecificConfig } from "../../media/codec/aac.ts";
import { avcCodecString, type H264Sps } from "../../media/codec/h264.ts";
import { type H265Sps, hevcCodecString } from "../../media/codec/h265.ts";
import type { CodecId } from "../../mod.ts";
import { RtpPacket } from "../../media/rtp/packet.ts";
import { parseRtcp, type SenderReport } from "../../media/rtp/rtcp.ts";
import type { AccessUnitHandler } from "../../media/rtp/payload.ts";
import { H264Depacketizer } from "../../media/rtp/h264.ts";
import { H265Depacketizer } from "../../media/rtp/h265.ts";
import { AacDepacketizer } from "../../media/rtp/aac.ts";
import { LatmDepacketizer } from "../../media/rtp/latm.ts";
import { OpusDepacketizer } from "../../media/rtp/opus.ts";
import type { TrackFormat } from "./_formats.ts";
import {
  H264PictureState,
  H265PictureState,
  type PictureState,
} from "../../media/rtp/picture_order.ts";
import { DtsRecovery } from "../../media/rtp/decode_time.ts";

/**
 * Where a timeline puts its frames: a published stream's handle, or a pull client's
 * callback.
 */
export type IngestSink = Pick<StreamHandle, "publish" | "updateMetadata">;

/** Counters shared by every session of a server (or of one pull). */
export interface Counters {
  rtpPacketsReceived: number;
  rtpPacketsDropped: number;
  rtcpPacketsReceived: number;
  rtcpPacketsDropped: number;
  framesPublished: number;
}

interface Depacketizer {
  push(packet: RtpPacket): void;
  readonly dropped: number;
  /** A decoder config the payloads carried in band (LATM), newest first seen. */
  readonly config?: Uint8Array;
}

/** How long tracks wait for each other's sender reports before being aligned by arrival. */
const SYNC_WAIT_MS = 1000;
/** Frames held at most while waiting. */
const SYNC_MAX_HELD = 1000;

interface TrackClock {
  readonly clockRate: number;
  firstRaw?: number;
  arrivalMs?: number;
  report?: SenderReport;
  offset?: number;
}

interface Held {
  track: number;
  kind: TrackKind;
  codec: CodecId;
  pts: number;
  dts: number;
  flags: number;
  data: Uint8Array;
}

/**
 * Puts the tracks of one publish on a common 90 kHz timeline. Each track's own clock
 * starts at its first packet; frames are held (at most a second) until every track has
 * had a packet and a sender report, then the tracks are offset by the wall-clock times
 * the reports give (or, without reports, by when their first packets arrived) and the
 * timeline is shifted to start at 0.
 */
export class IngestTimeline {
  readonly sink: IngestSink;
  #clocks: TrackClock[];
  #counters: Counters;
  #now: () => number;
  #held: Held[] | undefined = [];
  #heldSince = 0;
  #waitTimer: ReturnType<typeof setTimeout> | undefined;
  #byReports = false;
  #ntpRef = 0;
  #arrivalRef = 0;
  #shift = 0;

  constructor(
    sink: IngestSink,
    clockRates: readonly number[],
    counters: Counters,
    now: () => number = () => performance.now(),
  ) {
    this.sink = sink;
    this.#clocks = clockRates.map((clockRate) => ({ clockRate }));
    this.#counters = counters;
    this.#now = now;
  }

  /** A track's first RTP packet had timestamp `raw`. */
  firstPacket(track: number, raw: number): void {
    const clock = this.#clocks[track];
    clock.firstRaw = raw;
    clock.arrivalMs = this.#now();
    if (!this.#held && clock.offset === undefined) clock.offset = this.#offsetOf(clock);
  }

  /** A track's sender report. */
  senderReport(track: number, report: SenderReport): void {
    this.#clocks[track].report = report;
  }

  /** A track's frame, with times on the track's own 90 kHz clock. */
  frame(held: Held): void {
    if (this.#held) {
      if (this.#held.length === 0) {
        this.#heldSince = this.#now();
        this.#waitTimer = setTimeout(() => this.flush(), SYNC_WAIT_MS);
      }
      this.#held.push(held);
      this.#trySync();
      return;
    }
    this.#publish(held);
  }

  /** Publish what is held now, aligning tracks with what is known (the publish is ending). */
  flush(): void {
    if (this.#held?.length) this.#trySync(true);
  }

  #trySync(force = false): void {
    const held = this.#held!;
    const all = this.#clocks.every((c) => c.firstRaw !== undefined && c.report);
    const waited = this.#now() - this.#heldSince >= SYNC_WAIT_MS || held.length > SYNC_MAX_HELD;
    if (!all && !waited && !force) return;
    clearTimeout(this.#waitTimer);
    const started = this.#clocks.filter((c) => c.firstRaw !== undefined);
    this.#byReports = started.every((c) => c.report);
    this.#ntpRef = Math.min(...started.map((c) => this.#ntpAtStart(c) ?? Infinity));
    this.#arrivalRef = Math.min(...started.map((c) => c.arrivalMs!));
    for (const c of started) c.offset = this.#offsetOf(c);
    let first = Infinity;
    for (const h of held) first = Math.min(first, h.dts + this.#clocks[h.track].offset!);
    this.#shift = -first;
    this.#held = undefined;
    for (const h of held) this.#publish(h);
  }

  /** The wall-clock (NTP) time of a track's first packet, from its sender report. */
  #ntpAtStart(c: TrackClock): number | undefined {
    if (!c.report || c.firstRaw === undefined) return undefined;
    return c.report.ntpSeconds - ((c.report.rtpTimestamp - c.firstRaw) | 0) / c.clockRate;
  }

  #offsetOf(c: TrackClock): number {
    const ntp = this.#byReports ? this.#ntpAtStart(c) : undefined;
    if (ntp !== undefined) return Math.round((ntp - this.#ntpRef) * 90000);
    return Math.round((c.arrivalMs! - this.#arrivalRef) * 90);
  }

  #publish(h: Held): void {
    const offset = this.#clocks[h.track].offset! + this.#shift;
    const frame: MediaFrame = {
      track: h.kind === "video" ? 0 : 1,
      kind: h.kind,
      codec: h.codec,
      pts: h.pts + offset,
      dts: h.dts + offset,
      flags: h.flags,
      data: h.data,
    };
    this.#counters.framesPublished++;
    this.sink.publish(frame);
  }
}

/** Builds video frames from access units: configs, keyframes, decode times. */
class VideoBuilder {
  dropped = 0;
  #state: PictureState;
  #dts = new DtsRecovery();
  #sent: Uint8Array | undefined;
  #keySeen = false;
  #codec: CodecId;

  constructor(codec: CodecId, config: Uint8Array | undefined) {
    this.#codec = codec;
    this.#state = codec === "h264" ? new H264PictureState() : new H265PictureState();
    if (config) {
      try {
        this.#state.seed(config);
      } catch {
        // a bad sprop: wait for in-band parameter sets
      }
    }
    this.#configure();
  }

  #configure(): void {
    this.#dts.configure(this.#state.reorderHint, this.#state.sps?.frameRate);
  }

  /** The frames (a CONFIG first when the parameter sets changed) for one access unit. */
  accessUnit(
    pts: number,
    au: Uint8Array,
    emit: (dts: number, flags: number, data: Uint8Array) => void,
    describe: (sps: H264Sps | H265Sps) => void,
  ): void {
    const state = this.#state;
    let changed = false;
    let key = false;
    let vcl = false;
    let poc: number | undefined;
    for (let pos = 0; pos + 4 < au.length;) {
      const len = ((au[pos] << 24) | (au[pos + 1] << 16) | (au[pos + 2] << 8) | au[pos + 3]) >>> 0;
      const nal = au.subarray(pos + 4, pos + 4 + len);
      pos += 4 + len;
      if (state.isParameterSet(nal)) {
        if (state.addParameterSet(nal)) changed = true;
        continue;
      }
      if (state.isKeyframe(nal)) key = true;
      poc ??= state.poc(nal);
      if (this.#codec === "h264" ? (nal[0] & 0x1f) <= 5 : (nal[0] >> 1) < 32) vcl = true;
    }
    if (changed) this.#configure();
    if (!vcl) return;
    let record: Uint8Array | undefined;
    if (changed || !this.#sent) {
      try {
        record = state.record();
      } catch {
        record = undefined;
      }
      if (record && this.#sent && sameBytes(record, this.#sent)) record = undefined;
    }
    if (!this.#keySeen && (!key || !(record ?? this.#sent))) {
      this.dropped++;
      return;
    }
    this.#keySeen = true;
    const dts = this.#dts.next(pts, poc, key);
    if (record) {
      this.#sent = record;
      if (state.sps) describe(state.sps);
      emit(dts, FrameFlags.CONFIG, record);
    }
    emit(dts, key ? FrameFlags.KEYFRAME : FrameFlags.NONE, au);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One announced track of a publish: RTP and RTCP in, frames out to the timeline. */
export class IngestTrack {
  readonly format: TrackFormat;
  #index: number;
  #timeline: IngestTimeline;
  #counters: Counters;
  #packet = new RtpPacket();
  #depacketizer: Depacketizer;
  #video: VideoBuilder | undefined;
  #configSent: Uint8Array | undefined;
  #firstRaw = -1;
  #lastRaw = 0;
  #unwrapped = 0;

  constructor(format: TrackFormat, index: number, timeline: IngestTimeline, counters: Counters) {
    this.format = format;
    this.#index = index;
    this.#timeline = timeline;
    this.#counters = counters;
    const onUnit: AccessUnitHandler = (timestamp, data) => this.#accessUnit(timestamp, data);
    switch (format.codec) {
      case "h264":
        this.#depacketizer = new H264Depacketizer(onUnit);
        break;
      case "h265":
        this.#depacketizer = new H265Depacketizer(onUnit, { donl: format.donl });
        break;
      case "aac":
        this.#depacketizer = format.latm
          ? new LatmDepacketizer(format.latm, format.clockRate, onUnit)
          : new AacDepacketizer(format.aac!, format.samplesPerFrame!, onUnit);
        break;
      default:
        this.#depacketizer = new OpusDepacketizer(onUnit);
    }
    if (format.kind === "video") this.#video = new VideoBuilder(format.codec, format.config);
  }

  /** Packets and frames this track dropped after parsing them. */
  get dropped(): number {
    return this.#depacketizer.dropped + (this.#video?.dropped ?? 0);
  }

  /** One RTP packet from the publisher. */
  rtp(bytes: Uint8Array): void {
    this.#counters.rtpPacketsReceived++;
    const packet = this.#packet;
    try {
      packet.parse(bytes);
    } catch {
      this.#counters.rtpPacketsDropped++;
      return;
    }
    if (packet.payloadType !== this.format.payloadType) {
      this.#counters.rtpPacketsDropped++;
      return;
    }
    if (this.#firstRaw < 0) {
      this.#firstRaw = this.#lastRaw = packet.timestamp;
      this.#timeline.firstPacket(this.#index, packet.timestamp);
    }
    this.#depacketizer.push(packet);
  }

  /** One RTCP packet from the publisher. */
  rtcp(bytes: Uint8Array): void {
    this.#counters.rtcpPacketsReceived++;
    try {
      for (const p of parseRtcp(bytes)) {
        if (p.senderReport) this.#timeline.senderReport(this.#index, p.senderReport);
      }
    } catch {
      this.#counters.rtcpPacketsDropped++;
    }
  }

  /** Track-local 90 kHz time of an RTP timestamp (unwrapped from the last one seen). */
  #ticks(raw: number): number {
    this.#unwrapped += (raw - this.#lastRaw) | 0;
    this.#lastRaw = raw;
    return Math.round(this.#unwrapped * 90000 / this.format.clockRate);
  }

  #accessUnit(timestamp: number, data: Uint8Array): void {
    const pts = this.#ticks(timestamp);
    const { kind, codec } = this.format;
    const emit = (dts: number, flags: number, bytes: Uint8Array, at = pts) =>
      this.#timeline.frame({ track: this.#index, kind, codec, pts: at, dts, flags, data: bytes });
    if (this.#video) {
      this.#video.accessUnit(pts, data, (dts, flags, bytes) => {
        emit(dts, flags, bytes, flags & FrameFlags.CONFIG ? dts : pts);
      }, (sps) => this.#describeVideo(sps));
      return;
    }
    const config = this.#depacketizer.config ?? this.format.config!;
    const sent = this.#configSent;
    if (sent !== config && !(sent && sameBytes(sent, config))) {
      this.#configSent = config;
      this.#describeAudio(config);
      emit(pts, FrameFlags.CONFIG, config);
    }
    emit(pts, FrameFlags.NONE, data);
  }

  #describeVideo(sps: H264Sps | H265Sps): void {
    const codec = this.format.codec === "h264"
      ? avcCodecString(sps as H264Sps)
      : hevcCodecString(sps as H265Sps);
    this.#timeline.sink.updateMetadata((m) => {
      m.videoCodec = codec;
      m.width = sps.width;
      m.height = sps.height;
      if (sps.frameRate && !m.fps) m.fps = sps.frameRate;
    });
  }

  #describeAudio(config: Uint8Array): void {
    let codec = "opus";
    if (this.format.codec === "aac") {
      try {
        codec = aacCodecString(parseAudioSpecificConfig(config));
      } catch {
        return;
      }
    }
    this.#timeline.sink.updateMetadata((m) => void (m.audioCodec = codec));
  }
}
