/**
 * RTSP sessions: a publish (ANNOUNCE, SETUP, RECORD) or a read (DESCRIBE, SETUP, PLAY),
 * with its tracks' transports, its timeout and its end.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import {
  type Derived,
  type EncodedFrames,
  FrameFlags,
  type Logger,
  type PlayResult,
  type Registry,
  type StreamHandle,
} from "../../mod.ts";
import { RtspError } from "./message.ts";
import type { TransportSpec } from "./transport.ts";
import type { DescribedTrack, TrackFormat } from "./_formats.ts";
import { type Counters, IngestTimeline, IngestTrack } from "./_ingest.ts";
import {
  EgressTrack,
  interleavedForm,
  type PlayerOutput,
  RtspPlayer,
  StreamRtp,
} from "./_egress.ts";
import type { UdpPair } from "./_udp.ts";
import { RtpReorderer } from "./_reorder.ts";
import { RtcpType } from "../../media/rtp/rtcp.ts";

/** What every session of one server shares. */
export interface SessionContext {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly counters: Counters;
  readonly maxLag: number;
  /** How long a player's new frames wait for more to join them in one write (ms). */
  readonly coalesceMs: number;
  /** A player whose write has been pending this long is disconnected. */
  readonly stallTimeoutMs: number;
  /** How fast a player catches up from the GOP replay, times real time (0: at once). */
  readonly catchUpSpeed: number;
  readonly maxPayload: number;
  /** Queued writes on the session's TCP connection; resolves once written (never rejects). */
  readonly write: (bytes: Uint8Array) => Promise<void>;
  /** The connection's peer address (host only), where UDP packets go. */
  readonly peerAddress: string;
  /** `host:port` of the connection's peer, for log lines. */
  readonly peer: string;
  /** Close the session's TCP connection (a player that cannot keep up). */
  readonly closeConnection: (why: string) => void;
}

/** Bytes sent over UDP per pacing window at most (about 4 MB/s). */
const UDP_BURST_BYTES = 16 * 1024;
/** The UDP pacing window, in milliseconds. */
const UDP_BURST_MS = 4;
/** How long a UDP player gets to take the last packets before the BYE. */
const UDP_BYE_DELAY_MS = 500;

/** A running play of a read session. */
interface Playing {
  readonly player: RtspPlayer;
  readonly stop: AbortController;
  /** The stream's interleaved bytes for the session's channel layout, over TCP. */
  readonly interleaved: Derived<EncodedFrames> | undefined;
}

/** Receives the bytes of one interleaved channel or one client UDP port. */
type PacketHandler = (data: Uint8Array) => void;

function sessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What a publish and a read share: identity, transports, activity and closing. */
export abstract class RtspSession {
  /** The `Session` header value. */
  readonly id: string = sessionId();
  /** The stream's app. */
  readonly app: string;
  /** The stream's name within the app. */
  readonly stream: string;
  /** Monotonic time of the last request or packet from the client. */
  lastActivity: number = performance.now();
  /** Monotonic time the session was created (its ANNOUNCE or first SETUP). */
  readonly createdAt: number = performance.now();
  /** Whether the session has played or recorded (it must within the start timeout). */
  started = false;
  /** The lower transport every track of the session uses, once one is set up. */
  lower: "tcp" | "udp" | undefined;
  /** Interleaved channels of this session and what handles their bytes. */
  readonly channels: Map<number, PacketHandler> = new Map();
  /** Whether {@linkcode RtspSession.close} was called. */
  closed = false;
  protected readonly ctx: SessionContext;
  #udp: UdpPair | undefined;
  #unroutes: (() => void)[] = [];

  constructor(ctx: SessionContext, app: string, stream: string, udp: UdpPair | undefined) {
    this.ctx = ctx;
    this.app = app;
    this.stream = stream;
    this.#udp = udp;
  }

  /** `"app/stream"`. */
  get key(): string {
    return `${this.app}/${this.stream}`;
  }

  /** The server's UDP sockets, when UDP is enabled. */
  protected get udp(): UdpPair | undefined {
    return this.#udp;
  }

  /** Note activity from the client. */
  touch(): void {
    this.lastActivity = performance.now();
  }

  /**
   * Set up the transport of one track: interleaved channels on the TCP connection or the
   * client's UDP ports; returns the `Transport` value to answer with.
   */
  protected setupTransport(
    spec: TransportSpec,
    onRtp: PacketHandler,
    onRtcp: PacketHandler,
    extra: string,
  ): { transport: string; channel: number; clientPort?: readonly [number, number] } {
    if (this.lower && this.lower !== spec.lower) {
      throw new RtspError(461, "all tracks of a session must use the same transport");
    }
    if (spec.lower === "tcp") {
      let channel = spec.interleaved?.[0];
      if (channel === undefined) {
        channel = 0;
        while (this.channels.has(channel)) channel += 2;
      }
      if (channel > 254 || this.channels.has(channel) || this.channels.has(channel + 1)) {
        throw new RtspError(461, `interleaved channels ${channel}-${channel + 1} are taken`);
      }
      this.channels.set(channel, onRtp);
      this.channels.set(channel + 1, onRtcp);
      this.lower = "tcp";
      return {
        transport: `RTP/AVP/TCP;unicast;interleaved=${channel}-${channel + 1}${extra}`,
        channel,
      };
    }
    const udp = this.#udp;
    if (!udp) throw new RtspError(461, "UDP transport is disabled; use RTP/AVP/TCP");
    const clientPort = spec.clientPort;
    if (!clientPort) throw new RtspError(461, "UDP transport without client_port");
    this.#unroutes.push(udp.route(this.ctx.peerAddress, clientPort[0], onRtp));
    this.#unroutes.push(udp.route(this.ctx.peerAddress, clientPort[1], onRtcp));
    this.lower = "udp";
    return {
      transport: `RTP/AVP;unicast;client_port=${clientPort[0]}-${
        clientPort[1]
      };server_port=${udp.rtpPort}-${udp.rtcpPort}${extra}`,
      channel: 0,
      clientPort,
    };
  }

  /** End the session (idempotent), logging why. */
  close(why: string, level: "info" | "warn" = "info"): void {
    if (this.closed) return;
    this.closed = true;
    for (const unroute of this.#unroutes) unroute();
    this.#unroutes = [];
    this.ctx.logger[level](`rtsp ${this.ctx.peer}: session ${this.id} closed: ${why}`);
    this.end();
  }

  /** Release what the session holds. */
  protected abstract end(): void;
}

/** A publisher's session: announced tracks, set up one by one, then recorded. */
export class PublishSession extends RtspSession {
  /** The claimed stream. */
  readonly handle: StreamHandle;
  /** The announced media sections: a format, or why it cannot be carried. */
  readonly formats: readonly (TrackFormat | string)[];
  /** The `a=control` of each announced media section. */
  readonly controls: readonly (string | undefined)[];
  #setUp = new Set<number>();
  #tracks: (IngestTrack | undefined)[] = [];
  #reorderers: RtpReorderer[] = [];
  #timeline: IngestTimeline | undefined;
  #recording = false;
  /** Monotonic time of the last RTP packet, or of RECORD before the first. */
  lastMedia = 0;

  constructor(
    ctx: SessionContext,
    handle: StreamHandle,
    formats: readonly (TrackFormat | string)[],
    controls: readonly (string | undefined)[],
    udp: UdpPair | undefined,
  ) {
    super(ctx, handle.app, handle.stream, udp);
    this.handle = handle;
    this.formats = formats;
    this.controls = controls;
  }

  /** Whether RECORD has started. */
  get recording(): boolean {
    return this.#recording;
  }

  /** Packets and frames the tracks dropped after parsing them, and late or repeated packets. */
  get dropped(): number {
    const reordered = this.#reorderers.reduce((sum, r) => sum + r.dropped, 0);
    return this.#tracks.reduce((sum, t) => sum + (t?.dropped ?? 0), reordered);
  }

  /** Set up announced track `index`; returns the `Transport` answer. */
  setup(index: number, spec: TransportSpec): string {
    if (this.#recording) throw new RtspError(455, "SETUP after RECORD");
    if (this.#setUp.has(index)) throw new RtspError(455, `track ${index} is already set up`);
    if (spec.mode !== undefined && spec.mode !== "record" && spec.mode !== "receive") {
      throw new RtspError(461, `mode=${spec.mode} on a published stream; use mode=record`);
    }
    const counters = this.ctx.counters;
    const toTrack = (data: Uint8Array) => {
      const track = this.#tracks[index];
      if (track) track.rtp(data);
      else counters.rtpPacketsDropped++;
    };
    // UDP may deliver packets out of order: put them back in sequence first.
    const reorderer = spec.lower === "udp" ? new RtpReorderer(toTrack) : undefined;
    if (reorderer) this.#reorderers.push(reorderer);
    const { transport } = this.setupTransport(
      spec,
      (data) => {
        this.touch();
        this.lastMedia = this.lastActivity;
        if (reorderer) reorderer.push(data);
        else toTrack(data);
      },
      (data) => {
        this.touch();
        this.#tracks[index]?.rtcp(data);
      },
      ";mode=record",
    );
    this.#setUp.add(index);
    return transport;
  }

  /** Start receiving: every set-up track the server can carry goes on one timeline. */
  record(): void {
    if (this.#setUp.size === 0) throw new RtspError(455, "RECORD before SETUP");
    if (this.#recording) return;
    const carried: [number, TrackFormat][] = [];
    const kinds = new Set<string>();
    for (const index of [...this.#setUp].sort((a, b) => a - b)) {
      const format = this.formats[index];
      if (typeof format === "string") {
        this.ctx.logger.warn(
          `rtsp ${this.ctx.peer}: ${this.key} track ${index} dropped: ${format}`,
        );
      } else if (kinds.has(format.kind)) {
        this.ctx.logger.warn(
          `rtsp ${this.ctx.peer}: ${this.key} track ${index} dropped: a second ${format.kind} track`,
        );
      } else {
        kinds.add(format.kind);
        carried.push([index, format]);
      }
    }
    const timeline = new IngestTimeline(
      this.handle,
      carried.map(([, f]) => f.clockRate),
      this.ctx.counters,
    );
    carried.forEach(([index, format], i) => {
      this.#tracks[index] = new IngestTrack(format, i, timeline, this.ctx.counters);
    });
    this.#timeline = timeline;
    this.#recording = true;
    this.started = true;
    this.lastMedia = performance.now();
    this.ctx.logger.info(`rtsp ${this.ctx.peer}: record ${this.key} over ${this.lower}`);
  }

  protected end(): void {
    this.#timeline?.flush();
    this.ctx.counters.rtpPacketsDropped += this.dropped;
    this.ctx.registry.endPublish(this.handle, "ended");
    this.ctx.logger.info(`rtsp ${this.ctx.peer}: unpublish ${this.key}`);
  }
}

/** A player's session: described tracks, set up one by one, then played. */
export class ReadSession extends RtspSession {
  /** The stream being read. */
  readonly handle: StreamHandle;
  /** The tracks the player was described. */
  readonly described: readonly DescribedTrack[];
  /** The stream's RTP packets, shared with its other players (SSRCs are known at SETUP). */
  #rtp: Derived<StreamRtp>;
  #tracks = new Map<number, EgressTrack>();
  #playing: Playing | undefined;
  /** Whether a play ran before (a resumed one continues its RTP timeline). */
  #played = false;
  #rangeStart: number | undefined;
  #windowStart = 0;
  #windowBytes = 0;

  constructor(
    ctx: SessionContext,
    handle: StreamHandle,
    described: readonly DescribedTrack[],
    udp: UdpPair | undefined,
  ) {
    super(ctx, handle.app, handle.stream, udp);
    this.handle = handle;
    this.described = described;
    this.#rtp = handle.derive(`rtp/${ctx.maxPayload}`, () => new StreamRtp(ctx.maxPayload));
  }

  /** Whether PLAY is running. */
  get playing(): boolean {
    return this.#playing !== undefined;
  }

  /** Set up described track `index`; returns the `Transport` answer. */
  setup(index: number, spec: TransportSpec): string {
    if (this.#tracks.has(index)) throw new RtspError(455, `track ${index} is already set up`);
    if (spec.mode !== undefined && spec.mode !== "play") {
      throw new RtspError(461, `mode=${spec.mode} on a read; use mode=play`);
    }
    const packetizer = this.#rtp.value.packetizer(this.described[index]);
    const touch = () => this.touch();
    const answer = `;ssrc=${packetizer.ssrc.toString(16).toUpperCase().padStart(8, "0")}`;
    const { transport, channel, clientPort } = this.setupTransport(spec, touch, touch, answer);
    this.#tracks.set(
      index,
      new EgressTrack(this.described[index], packetizer, channel, clientPort),
    );
    return transport;
  }

  /**
   * Set up a play; returns the `RTP-Info` value and what starts it, to be called once the
   * answer is queued (none when it plays already). The play runs until stopped, the stream
   * ends (the session then closes with RTCP BYE) or the player falls too far behind.
   */
  play(baseUrl: string): { rtpInfo: string; start?: () => void } {
    if (this.#tracks.size === 0) throw new RtspError(455, "PLAY before SETUP");
    if (this.#playing) {
      return { rtpInfo: this.#rtpInfo(baseUrl, (t) => ({ sequence: t.packetizer.nextSequence })) };
    }
    const tracks = [...this.#tracks.entries()].sort(([a], [b]) => a - b).map(([, t]) => t);
    const replay = this.handle.replayBuffer();
    const rangeStart = this.#rangeStart ??
      replay.find((f) => !(f.flags & FrameFlags.CONFIG))?.dts;
    const resumed = this.#played;
    this.#played = true;
    const stop = new AbortController();
    const tcp = this.lower === "tcp";
    const form = tcp ? interleavedForm(tracks) : undefined;
    const interleaved = form && this.handle.derive(form.form, form.create);
    const player = new RtspPlayer(tracks, interleaved?.value, this.#output(stop.signal), {
      rangeStart,
      signal: stop.signal,
    });
    const starts = player.start(replay, resumed ? undefined : rangeStart);
    const playing: Playing = { player, stop, interleaved };
    this.#playing = playing;
    this.started = true;
    const info = this.#rtpInfo(baseUrl, (t) => starts[tracks.indexOf(t)]);
    this.ctx.logger.info(`rtsp ${this.ctx.peer}: play ${this.key} over ${this.lower}`);
    // A resumed play is handed (and paced over) only what its tracks have not had yet.
    const had = tracks.map((t) => t.lastDts).filter((dts) => dts > -Infinity);
    const options = {
      replayAfter: had.length > 0 ? Math.min(...had) : undefined,
      maxLag: this.ctx.maxLag,
      coalesceMs: this.ctx.coalesceMs,
      stallTimeoutMs: this.ctx.stallTimeoutMs,
      catchUpSpeed: this.ctx.catchUpSpeed,
      signal: stop.signal,
    };
    const start = () =>
      void this.handle.play(player, options).then((result) => this.#ended(playing, result));
    return { rtpInfo: info, start };
  }

  /**
   * `RTP-Info` (RFC 2326 section 12.33): each track's sequence number of the first packet this
   * play sends, and the RTP time of the range start when `start` gives it (a resumed play
   * continues the RTP timeline, so its times need no mapping). Packets are the stream's, so
   * both are read off the shared timeline: GStreamer's `rtspsrc` makes `seq` its
   * `seqnum-base` (earlier packets count as old), ffmpeg takes `rtptime` as the zero of its
   * timestamps, live555 maps both to the range's play time.
   */
  #rtpInfo(
    baseUrl: string,
    start: (track: EgressTrack) => { sequence: number; rtptime?: number },
  ): string {
    return [...this.#tracks.values()].map((t) => {
      const { sequence, rtptime } = start(t);
      const time = rtptime === undefined ? "" : `;rtptime=${rtptime}`;
      return `url=${baseUrl}${t.described.control};seq=${sequence}${time}`;
    }).join(",");
  }

  /** Where the player's packets go: the TCP connection, or the client's UDP ports. */
  #output(signal: AbortSignal): PlayerOutput {
    if (this.lower === "tcp") {
      return { write: (bytes) => this.closed ? Promise.resolve() : this.ctx.write(bytes) };
    }
    const udp = this.udp!;
    return {
      send: (track, rtcp, packet) => {
        if (this.closed || signal.aborted) return Promise.resolve();
        const ports = track.clientPort!;
        udp.send(rtcp, packet, rtcp ? ports[1] : ports[0], this.ctx.peerAddress);
        return this.#pace(packet.length);
      },
      drain: () => udp.drain(),
    };
  }

  /** Stop playing, keeping the session and its RTP timeline (PAUSE). */
  pause(): void {
    const playing = this.#playing;
    this.#playing = undefined;
    if (!playing) return;
    this.#rangeStart = playing.player.rangeStart;
    playing.stop.abort();
    playing.interleaved?.release();
  }

  #ended(playing: Playing, { end }: PlayResult): void {
    if (this.#playing !== playing) return;
    this.#playing = undefined;
    this.#rangeStart = playing.player.rangeStart;
    playing.interleaved?.release();
    if (end === "aborted") return;
    if (end === "ended") {
      // Over UDP the BYE races the last media packets (other sockets at the client), which
      // a client drops once every track said BYE: let them arrive first.
      const linger = this.lower === "udp" ? delay(UDP_BYE_DELAY_MS) : Promise.resolve();
      void linger.then(() => this.#sendBye()).then(() => this.close(`stream ${this.key} ended`));
      return;
    }
    const why = end === "evicted"
      ? "the player fell too far behind"
      : end === "stalled"
      ? `the peer accepted no data for ${this.ctx.stallTimeoutMs} ms`
      : "sending failed";
    this.close(why, "warn");
    if (this.lower === "tcp") this.ctx.closeConnection(why);
  }

  /**
   * Spread bursts (the replayed GOP, large keyframes) over time: a client's UDP receive
   * buffer (64 KiB by default in ffmpeg) overflows when a second of video arrives at once.
   * At most {@linkcode UDP_BURST_BYTES} go out per {@linkcode UDP_BURST_MS} ms window.
   */
  async #pace(bytes: number): Promise<void> {
    const now = performance.now();
    if (now - this.#windowStart >= UDP_BURST_MS) {
      this.#windowStart = now;
      this.#windowBytes = 0;
    }
    this.#windowBytes += bytes;
    if (this.#windowBytes < UDP_BURST_BYTES) return;
    await this.udp!.drain();
    await delay(Math.max(1, UDP_BURST_MS - (performance.now() - this.#windowStart)));
    this.#windowStart = performance.now();
    this.#windowBytes = 0;
  }

  /**
   * An empty receiver report and a BYE on every track, so players end cleanly (a compound
   * packet: clients ignore RTCP shorter than an RTP header).
   */
  async #sendBye(): Promise<void> {
    for (const track of this.#tracks.values()) {
      const bye = new Uint8Array(20);
      bye.set([0x24, track.channel + 1, 0, 16, 0x80, RtcpType.RR, 0, 1]);
      bye.set([0x81, RtcpType.BYE, 0, 1], 12);
      const view = new DataView(bye.buffer);
      view.setUint32(8, track.ssrc);
      view.setUint32(16, track.ssrc);
      if (this.lower === "tcp") {
        await this.ctx.write(bye);
      } else {
        this.udp!.send(true, bye.subarray(4), track.clientPort![1], this.ctx.peerAddress);
      }
    }
    if (this.lower === "udp") await this.udp!.drain();
  }

  protected end(): void {
    this.pause();
    this.#rtp.release();
    this.ctx.logger.info(`rtsp ${this.ctx.peer}: stop reading ${this.key}`);
  }
}
