/** WHEP media out: frames from the bus (any ingest) → RTP on a werift peer, on the play line. */

import type { RTCPeerConnection } from "werift";
import {
  type Derived,
  escapeForLog,
  FrameFlags,
  type Logger,
  type MediaFrame,
  type PlayEnd,
  type PlaySink,
  type StreamHandle,
} from "../../mod.ts";
import { RtpOut } from "./_rtp_out.ts";
import { UdpSendGauge } from "./_send_gauge.ts";
import { STREAM_PACKETS_FORM, StreamPackets } from "./_stream_packets.ts";
import { messageOf } from "./_peer.ts";

/** RTCP payload-specific feedback, and its PLI and FIR formats. */
const RTCP_PSFB = 206, PLI = 1, FIR = 4;
/**
 * Least time between two answers to a player's PLI/FIR, in ms: each resends up to a GOP,
 * so a player asking on every frame cannot make us send a GOP per frame.
 */
const REFRESH_INTERVAL_MS = 500;
/**
 * A player with more UDP sends than this in flight waits (in the stream's ring) until they
 * are down to {@linkcode SENDS_RESUME}: at most some 330 KiB of encrypted packets per viewer
 * wait in its socket (a 2 s GOP at 600 kbit/s is some 120 packets).
 */
const MAX_SENDS_IN_FLIGHT = 256;
/** Sends in flight a waiting player resumes at. */
const SENDS_RESUME = 64;

/** How a {@linkcode WhepPlayer} plays. */
export interface WhepPlayOptions {
  /** A player that skipped more than this many frames in all is ended as too slow. */
  readonly maxLag: number;
  /** A player one of whose sends stayed pending this long, in ms, is ended as stalled. */
  readonly stallTimeoutMs: number;
  /** Catch up from the replay at this multiple of real time; 0 sends it in one burst. */
  readonly catchUpSpeed: number;
}

/**
 * Plays `handle` to a WHEP peer: the cached configs and GOP first (so the picture starts at
 * once), then live frames. H.264 keyframes carry the SPS/PPS of the cached config. It runs
 * on the play line (`handle.play`) with one sink per viewer, sending the stream's shared
 * packets (`StreamPackets`, derived once per stream: every viewer gets the same sequence
 * numbers, timestamps and payloads for a frame): each batch is handed to werift at once,
 * with no wait between frames, and the batch's last send is what the play line waits for
 * before the next one (with, while the viewer's socket holds more than 256 sends, their
 * draining: werift's sends settle before the socket has taken them, so an overloaded server
 * would otherwise queue without bound in the sockets); a viewer whose sends fall more than
 * `maxLag` frames behind is ended as too slow without holding up anyone else. Frames a viewer skips leave no gap in its
 * sequence numbers (its sender's offset closes it).
 *
 * A PLI or FIR from the player never reaches the publisher; it is answered from the cache:
 * the current GOP goes out again, keyframe (with SPS/PPS) first, up to the last frame the
 * player got, so its decoder has every reference the next live frame needs. The resent
 * frames are the shared payloads under headers of this player's own: the next sequence
 * numbers (later shared packets follow them, by the sender's offset) and RTP timestamps one
 * 90 kHz tick apart after the newest sent, so the player's RTP clock never goes back; live
 * frames keep their own timing after them (by the sender's timestamp offset). When
 * the cache cannot do that (the GOP outgrew it, or the player has not had a frame of it),
 * the player skips frames until the stream's next keyframe. Answers are at least 500 ms
 * apart; a request in between is answered when that has passed.
 */
export class WhepPlayer {
  readonly #handle: StreamHandle;
  readonly #logger: Logger;
  readonly #options: WhepPlayOptions;
  readonly #packets: Derived<StreamPackets>;
  readonly #video: RtpOut | undefined;
  readonly #audio: RtpOut | undefined;
  readonly #sends: UdpSendGauge;
  readonly #sink: PlaySink = { write: (frames, count) => this.#write(frames, count) };
  readonly #stop = new AbortController();
  #waitKeyframe = true;
  #warned = new Set<string>();
  /** The last video frame sent, by reference (the GOP cache holds the same objects). */
  #lastVideo: MediaFrame | undefined;
  /** The newest 90 kHz time put on a video packet. */
  #topPts = -Infinity;
  /** A live frame must be stamped after this (the end of a refresh). */
  #floor = -Infinity;
  /**
   * Added to live video times (the video sender's timestamp offset), grown only when a
   * refresh would run past a live frame.
   */
  #shift = 0;
  #lastRefreshMs = -Infinity;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** Play `handle` to `pc`'s send-only transceivers (the first video and audio one). */
  constructor(
    pc: RTCPeerConnection,
    handle: StreamHandle,
    logger: Logger,
    options: WhepPlayOptions,
  ) {
    this.#handle = handle;
    this.#logger = logger;
    this.#options = options;
    this.#sends = new UdpSendGauge(pc);
    this.#packets = handle.derive(STREAM_PACKETS_FORM, () => new StreamPackets());
    const failed = (error: unknown) => this.#warnOnce(`a send failed: ${messageOf(error)}`);
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.codecs.length === 0 || transceiver.direction !== "sendonly") continue;
      const sender = transceiver.sender;
      if (transceiver.kind === "video" && !this.#video) {
        this.#video = new RtpOut(sender, failed);
        // From the transport: werift routes a FIR (media SSRC 0, RFC 5104) to no sender.
        sender.dtlsTransport.onRtcp.subscribe((rtcp) => {
          if (asksKeyframe(rtcp, sender.ssrc)) this.#keyframeRequested();
        });
      } else if (transceiver.kind === "audio" && !this.#audio) {
        this.#audio = new RtpOut(sender, failed);
      }
    }
  }

  /**
   * Play until the stream ends, the player falls more than `maxLag` frames behind, a send
   * stays pending past `stallTimeoutMs` or fails, or {@linkcode WhepPlayer.close}; never rejects. Resolves with why the session
   * should end, or `undefined` when it was closed (the session is ending already).
   */
  async run(): Promise<string | undefined> {
    const { end, error } = await this.#handle.play(this.#sink, {
      maxLag: this.#options.maxLag,
      stallTimeoutMs: this.#options.stallTimeoutMs,
      catchUpSpeed: this.#options.catchUpSpeed,
      signal: this.#stop.signal,
    });
    return endReason(end, this.#options, error);
  }

  /** Stop sending. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#refreshTimer);
    this.#stop.abort();
    this.#packets.release();
  }

  /**
   * Send a batch at once, returning the last packet's send (the play line hands what comes
   * meanwhile in the next batch, and paces the catch-up from the replay).
   */
  #write(frames: readonly MediaFrame[], count: number): Promise<void> | undefined {
    let sent: Promise<void> | undefined;
    for (let i = 0; i < count; i++) sent = this.#send(frames[i]) ?? sent;
    return this.#afterSends(sent);
  }

  /**
   * What the play line waits for after a batch whose last send is `sent`: that send, and
   * while the socket holds more than {@linkcode MAX_SENDS_IN_FLIGHT} sends, their draining
   * (werift's sends settle before the socket took the packet).
   */
  #afterSends(sent: Promise<void> | undefined): Promise<void> | undefined {
    if (this.#sends.inFlight <= MAX_SENDS_IN_FLIGHT) return sent;
    const drained = () => this.#sends.drained(SENDS_RESUME);
    return sent ? sent.then(drained) : drained();
  }

  #keyframeRequested(): void {
    if (this.#closed || this.#refreshTimer !== undefined) return;
    const wait = this.#lastRefreshMs + REFRESH_INTERVAL_MS - performance.now();
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      this.#lastRefreshMs = performance.now();
      try {
        this.#refresh();
      } catch (error) {
        this.#logger.warn(`whep ${escapeForLog(this.#handle.key)}: ${messageOf(error)}`);
      }
    }, Math.max(0, wait));
  }

  /**
   * Answer a PLI/FIR from the GOP cache, or else restart the player at the next keyframe.
   * Every send is synchronous, so a refresh never splits a frame's packets.
   */
  #refresh(): void {
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
    const shared = this.#packets.value;
    for (let i = 0; i <= end; i++) {
      const packets = shared.packets(gop[i]);
      if (!packets) continue; // stale: the player never had it either
      const pts = this.#topPts + 1;
      this.#video.resend(packets, shared.video.rtpTime(pts - this.#shift));
      this.#topPts = pts;
    }
    this.#floor = this.#topPts;
  }

  /** Send one frame of the stream; returns its last packet's send, if it sent any. */
  #send(frame: MediaFrame): Promise<void> | undefined {
    const shared = this.#packets.value;
    if (frame.kind === "audio") {
      if (!this.#audio || frame.codec !== "opus") return;
      const packets = shared.packets(frame);
      return packets && this.#audio.send(packets);
    }
    const video = this.#video;
    if (!video) return;
    if (frame.codec !== "h264") return this.#warnOnce(`video is ${frame.codec}, not H.264`);
    if (frame.flags & FrameFlags.CONFIG) return void shared.packets(frame); // its SPS/PPS
    if (this.#waitKeyframe && !(frame.flags & FrameFlags.KEYFRAME)) return;
    const packets = shared.packets(frame);
    // Without it (stale or malformed) later frames miss a reference: wait for a keyframe.
    this.#waitKeyframe = packets === undefined;
    if (!packets) return;
    if (frame.pts !== frame.dts) this.#warnOnce("the source has B-frames; players may stutter");
    let pts = frame.pts + this.#shift;
    if (pts <= this.#floor) {
      this.#shift += this.#floor + 1 - pts;
      video.timestampOffset = this.#shift;
      pts = this.#floor + 1;
    }
    this.#floor = -Infinity;
    this.#lastVideo = frame;
    this.#topPts = Math.max(this.#topPts, pts);
    return video.send(packets);
  }

  #warnOnce(what: string): undefined {
    if (this.#warned.has(what)) return;
    this.#warned.add(what);
    this.#logger.warn(`whep ${escapeForLog(this.#handle.key)}: ${what}`);
  }
}

/** Why a session ends after its play ended with `end`; `undefined` when it was closed. */
function endReason(end: PlayEnd, options: WhepPlayOptions, error: unknown): string | undefined {
  switch (end) {
    case "aborted":
      return undefined;
    case "evicted":
      return `the player fell more than ${options.maxLag} frames behind (too slow to keep up)`;
    case "stalled":
      return `a send to the player stayed pending more than ${options.stallTimeoutMs} ms`;
    case "failed":
      return `sending failed: ${messageOf(error)}`;
    default:
      return "stream ended";
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
