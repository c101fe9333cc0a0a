/**
 * Sending a stream to RTSP players on the kernel's play line: each frame's RTP packets are
 * made once per stream track ({@linkcode StreamRtp}, one SSRC and sequence per track) and,
 * over TCP, framed as interleaved channels once per channel layout, so a batch goes out as
 * the same bytes to every player of that layout in one write. Per player there are only
 * RTCP sender reports (its own packet and octet counts) and the frames it must not get
 * (video before its first keyframe, what it got before a PAUSE); the play line paces the
 * catch-up from the GOP replay.
 *
 * @module
 */

import { EncodedFrames, FrameFlags, type MediaFrame, type PlaySink } from "../../mod.ts";
import {
  RtpFramePacketizer,
  type RtpFramePackets,
  RtpTimeOrigin,
} from "../../media/rtp/frame_packetizer.ts";
import {
  ntpSecondsFromUnixMs,
  SENDER_REPORT_SIZE,
  writeSenderReport,
} from "../../media/rtp/rtcp.ts";
import type { DescribedTrack } from "./_formats.ts";

/** Sender reports go out this often per track (and before the first packet). */
const REPORT_INTERVAL_MS = 2000;

/** The RTP packetizers of one stream's described tracks, shared by all its RTSP players. */
export class StreamRtp {
  /** Where every track's RTP time counts from. */
  readonly origin: RtpTimeOrigin = new RtpTimeOrigin();
  readonly #maxPayload: number;
  readonly #tracks = new Map<string, RtpFramePacketizer>();

  /** Packetize into payloads of at most `maxPayload` bytes. */
  constructor(maxPayload: number) {
    this.#maxPayload = maxPayload;
  }

  /** The packetizer of a track described as `described` (made for the first player). */
  packetizer(described: DescribedTrack): RtpFramePacketizer {
    const key = formatKey(described);
    let packetizer = this.#tracks.get(key);
    if (packetizer === undefined) {
      packetizer = new RtpFramePacketizer(described, {
        maxPayload: this.#maxPayload,
        origin: this.origin,
      });
      this.#tracks.set(key, packetizer);
    }
    return packetizer;
  }
}

/** What tells described tracks apart: players described alike share packets. */
function formatKey(t: DescribedTrack): string {
  return `${t.kind}/${t.codec}/${t.payloadType}/${t.clockRate}`;
}

/** One track a player set up: the stream track's packets and where they go. */
export class EgressTrack {
  /** How the track was described to the player. */
  readonly described: DescribedTrack;
  /** The stream track's packets, shared with every player described alike. */
  readonly packetizer: RtpFramePacketizer;
  /** The interleaved RTP channel (RTCP is the next one). */
  readonly channel: number;
  /** The client's RTP and RTCP ports, over UDP. */
  readonly clientPort: readonly [number, number] | undefined;
  /** RTP packets sent to this player (for its sender reports). */
  packets = 0;
  /** RTP payload bytes sent to this player. */
  octets = 0;
  /** When this player's last sender report of the track went out (monotonic ms). */
  lastReportMs = -Infinity;
  /** The newest decode time sent: a resumed play sends nothing at or before it. */
  lastDts = -Infinity;

  /** A track sent on interleaved `channel` (TCP) or to `clientPort` (UDP). */
  constructor(
    described: DescribedTrack,
    packetizer: RtpFramePacketizer,
    channel: number,
    clientPort?: readonly [number, number],
  ) {
    this.described = described;
    this.packetizer = packetizer;
    this.channel = channel;
    this.clientPort = clientPort;
  }

  /** The SSRC of every packet of the track (the stream track's). */
  get ssrc(): number {
    return this.packetizer.ssrc;
  }
}

/**
 * The interleaved form of `tracks`' packets (each on its channel) for every player with
 * that channel layout: the bytes of a frame no track carries are empty.
 */
export function interleavedForm(tracks: readonly EgressTrack[]): {
  form: string;
  create: () => EncodedFrames;
} {
  const layout = tracks.map((t) => `${formatKey(t.described)}@${t.channel}`).join(",");
  const byKind = (kind: string) => tracks.find((t) => t.described.kind === kind);
  const video = byKind("video");
  const audio = byKind("audio");
  return {
    form: `rtsp/interleaved/${layout}`,
    create: () =>
      new EncodedFrames((frame) => {
        const track = frame.kind === "video" ? video : audio;
        const packets = track?.packetizer.packets(frame);
        return packets ? interleave(packets, track!.channel) : EMPTY;
      }),
  };
}

const EMPTY = new Uint8Array(0);

/** `packets` as interleaved frames on `channel`, in one array. */
function interleave(packets: RtpFramePackets, channel: number): Uint8Array {
  const out = new Uint8Array(packets.bytes.length + 4 * packets.packets.length);
  let o = 0;
  for (const packet of packets.packets) {
    out[o] = 0x24;
    out[o + 1] = channel;
    out[o + 2] = packet.length >> 8;
    out[o + 3] = packet.length & 0xff;
    out.set(packet, o + 4);
    o += 4 + packet.length;
  }
  return out;
}

/** Where a player's packets go. */
export interface PlayerOutput {
  /** Over TCP: queue interleaved bytes; resolves once written. */
  readonly write?: (bytes: Uint8Array) => Promise<void>;
  /** Over UDP: send one RTP or RTCP packet of `track`; may wait (pacing). */
  readonly send?: (track: EgressTrack, rtcp: boolean, packet: Uint8Array) => Promise<void>;
  /** Over UDP: resolves once what was sent left the socket. */
  readonly drain?: () => Promise<void>;
}

/** What a play of one session needs besides its tracks. */
export interface PlayerSettings {
  /** The kernel time of the range start: sender reports count wall-clock time from it. */
  readonly rangeStart: number | undefined;
  /** Aborts when the play stops: nothing more is sent. */
  readonly signal: AbortSignal;
}

/**
 * One play of one session, as a sink of the play line. Over TCP, a batch that needs nothing
 * of this player's own goes out as the stream's shared interleaved bytes in one write; the
 * rest (reports due, frames to hold back) is sent frame by frame, the frames between two
 * reports in one write of their shared bytes.
 */
export class RtspPlayer implements PlaySink {
  /** The tracks set up, in described order. */
  readonly tracks: readonly EgressTrack[];
  /** The kernel time of the range start, once known (kept across PAUSE by the session). */
  rangeStart: number | undefined;
  readonly #output: PlayerOutput;
  readonly #interleaved: EncodedFrames | undefined;
  readonly #signal: AbortSignal;
  readonly #video: EgressTrack | undefined;
  readonly #audio: EgressTrack | undefined;
  /** The frames of the next write of a frame-by-frame send (reused). */
  readonly #run: MediaFrame[] = [];
  #videoStarted: boolean;
  /** Tracks of a resumed play that have not yet sent a frame newer than before the PAUSE. */
  #holding: Set<EgressTrack>;
  #nextReportMs = -Infinity;
  #ntpBase = 0;

  /** A play of `tracks` to `output`; over TCP with the stream's `interleaved` form. */
  constructor(
    tracks: readonly EgressTrack[],
    interleaved: EncodedFrames | undefined,
    output: PlayerOutput,
    settings: PlayerSettings,
  ) {
    this.tracks = tracks;
    this.#interleaved = interleaved;
    this.#output = output;
    this.rangeStart = settings.rangeStart;
    this.#signal = settings.signal;
    this.#video = tracks.find((t) => t.described.kind === "video");
    this.#audio = tracks.find((t) => t.described.kind === "audio");
    this.#videoStarted = this.#video === undefined;
    this.#holding = new Set(tracks.filter((t) => t.lastDts > -Infinity));
  }

  /** Send one batch; see {@linkcode PlaySink.write}. */
  write(frames: readonly MediaFrame[], count: number): void | Promise<void> {
    const interleaved = this.#interleaved;
    if (interleaved === undefined) return this.#sendEach(frames.slice(0, count));
    const shared = this.#videoStarted && this.#holding.size === 0 &&
      performance.now() < this.#nextReportMs;
    if (!shared) return this.#writeEach(interleaved, frames, count);
    for (let i = 0; i < count; i++) {
      const frame = frames[i];
      const track = this.#trackOf(frame);
      const packets = track?.packetizer.packets(frame);
      if (packets) this.#count(track!, frame, packets);
    }
    const bytes = interleaved.concat(frames, count);
    if (bytes.length > 0) return this.#output.write!(bytes);
  }

  #trackOf(frame: MediaFrame): EgressTrack | undefined {
    return frame.kind === "video" ? this.#video : this.#audio;
  }

  #count(track: EgressTrack, frame: MediaFrame, packets: RtpFramePackets): void {
    track.packets += packets.packets.length;
    track.octets += packets.payloadOctets;
    track.lastDts = frame.dts;
  }

  /**
   * Over TCP, frame by frame with what this player needs (its reports, the frames it holds
   * back): the frames between two reports go out in one write of their shared bytes.
   */
  #writeEach(
    interleaved: EncodedFrames,
    frames: readonly MediaFrame[],
    count: number,
  ): Promise<void> | undefined {
    let last: Promise<void> | undefined;
    for (let i = 0; i < count; i++) {
      const frame = frames[i];
      const track = this.#trackOf(frame);
      const packets = track?.packetizer.packets(frame);
      if (!track || !packets || !this.#admit(track, frame)) continue;
      const report = this.#reportBefore(track, frame, packets, true);
      if (report) {
        this.#writeRun(interleaved);
        last = this.#output.write!(report);
      }
      this.#count(track, frame, packets);
      this.#run.push(frame);
    }
    return this.#writeRun(interleaved) ?? last;
  }

  /** Write the frames gathered in `#run` in one write of their shared bytes; empty it. */
  #writeRun(interleaved: EncodedFrames): Promise<void> | undefined {
    const run = this.#run;
    if (run.length === 0) return undefined;
    const written = this.#output.write!(interleaved.concat(run, run.length));
    run.length = 0;
    return written;
  }

  /** Over UDP, packet by packet, with this player's reports; resolves once all left. */
  async #sendEach(frames: readonly MediaFrame[]): Promise<void> {
    const send = this.#output.send!;
    for (const frame of frames) {
      const track = this.#trackOf(frame);
      const packets = track?.packetizer.packets(frame);
      if (!track || !packets || !this.#admit(track, frame)) continue;
      const report = this.#reportBefore(track, frame, packets, false);
      if (report) await send(track, true, report);
      this.#count(track, frame, packets);
      for (const packet of packets.packets) await send(track, false, packet);
      if (this.#signal.aborted) return;
    }
    await this.#output.drain?.();
  }

  /**
   * The sender report of `track` to send before `frame` (whose first packet has RTP time
   * `packets.timestamp`), when one is due; it counts as sent.
   */
  #reportBefore(
    track: EgressTrack,
    frame: MediaFrame,
    packets: RtpFramePackets,
    interleaved: boolean,
  ): Uint8Array | undefined {
    this.rangeStart ??= frame.dts;
    if (this.#ntpBase === 0) this.#ntpBase = ntpSecondsFromUnixMs(Date.now());
    const now = performance.now();
    if (now - track.lastReportMs < REPORT_INTERVAL_MS) return undefined;
    track.lastReportMs = now;
    this.#nextReportMs = Math.min(...this.tracks.map((t) => t.lastReportMs)) +
      REPORT_INTERVAL_MS;
    const ntpSeconds = this.#ntpBase + (frame.pts - this.rangeStart) / 90000;
    return senderReport(track, ntpSeconds, packets.timestamp, interleaved);
  }

  /**
   * Per track, for the `RTP-Info` of the PLAY answer: the sequence number of the first packet
   * this play will send, taken from `replay` (the stream's replay buffer, packetized here as
   * the play would) or else the next one the track makes; and with `rangeStart` the RTP time
   * of the range start.
   */
  start(
    replay: readonly MediaFrame[],
    rangeStart: number | undefined,
  ): { sequence: number; rtptime?: number }[] {
    const origin = this.tracks[0].packetizer.origin;
    if (rangeStart !== undefined) origin.ticks ??= rangeStart;
    const first = new Map<EgressTrack, number>();
    let videoStarted = this.#videoStarted;
    for (const frame of replay) {
      const track = this.#trackOf(frame);
      const packets = track?.packetizer.packets(frame);
      if (!track || !packets || first.has(track) || frame.dts <= track.lastDts) continue;
      if (frame.kind === "video" && !videoStarted) {
        if (!(frame.flags & FrameFlags.KEYFRAME)) continue;
        videoStarted = true;
      }
      first.set(track, packets.sequence);
    }
    return this.tracks.map((t) => ({
      sequence: first.get(t) ?? t.packetizer.nextSequence,
      rtptime: rangeStart === undefined ? undefined : t.packetizer.rtpTime(rangeStart),
    }));
  }

  /** Whether this player gets `frame` of `track` (once it does, the track holds none back). */
  #admit(track: EgressTrack, frame: MediaFrame): boolean {
    if (frame.dts <= track.lastDts) return false;
    if (frame.kind === "video" && !this.#videoStarted) {
      if (!(frame.flags & FrameFlags.KEYFRAME)) return false;
      this.#videoStarted = true;
    }
    this.#holding.delete(track);
    return true;
  }
}

/** A sender report of `track` saying `rtp` was sampled at `ntpSeconds` (interleaved or not). */
function senderReport(
  track: EgressTrack,
  ntpSeconds: number,
  rtp: number,
  interleaved: boolean,
): Uint8Array {
  const at = interleaved ? 4 : 0;
  const out = new Uint8Array(at + SENDER_REPORT_SIZE);
  if (interleaved) out.set([0x24, track.channel + 1, 0, SENDER_REPORT_SIZE]);
  writeSenderReport(out, at, {
    ssrc: track.ssrc,
    ntpSeconds,
    rtpTimestamp: rtp,
    packetCount: track.packets,
    octetCount: track.octets,
  });
  return out;
}
