/**
 * One play of an RTSP source by the pull client: OPTIONS, DESCRIBE, a SETUP per track the
 * kernel can carry, PLAY, then RTP in (interleaved or over UDP) and frames out, with
 * keep-alives, receiver reports, a silence deadline and a TEARDOWN at the end.
 *
 * @module
 */

import { ConfigGate, escapeForLog, type Logger, type MediaFrame, silentLogger } from "../../mod.ts";
import { parseSdp, sdpAttribute } from "../../media/rtp/sdp.ts";
import {
  parseRtcp,
  RECEIVER_REPORT_SIZE,
  RtcpType,
  writeReceiverReport,
} from "../../media/rtp/rtcp.ts";
import type { PullOptions } from "../pull.ts";
import { RtspClientConnection, RtspStatusError } from "./_client_connection.ts";
import type { UserPassword } from "./_client_auth.ts";
import { ClientUdpPorts } from "./_client_udp.ts";
import { controlUrl, describeBase, withoutCredentials } from "./_control_url.ts";
import { type TrackFormat, trackFormat } from "./_formats.ts";
import { type Counters, type IngestSink, IngestTimeline, IngestTrack } from "./_ingest.ts";
import { ReceptionStats } from "./_reception.ts";
import { RtpReorderer } from "./_reorder.ts";
import { parseTransport } from "./transport.ts";

/** What one play needs besides the URL. */
export interface PlaySettings extends PullOptions {
  readonly lower: "tcp" | "udp";
  /** Over UDP: give up (with {@linkcode UdpUnavailable}) on a 461 or no RTP within this. */
  readonly fallbackAfterMs?: number;
  readonly caCerts?: string[];
}

/** UDP did not work (refused with 461, or no RTP arrived in time): try TCP. */
export class UdpUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UdpUnavailable";
  }
}

/** How often receiver reports go out (RFC 3550's minimum interval). */
const REPORT_INTERVAL_MS = 5000;
/** How long the TEARDOWN may take when stopping. */
const TEARDOWN_WAIT_MS = 1000;

/** One set-up track. */
interface PlayTrack {
  readonly format: TrackFormat;
  readonly url: string;
  readonly ingest: IngestTrack;
  readonly stats: ReceptionStats;
  channel: number;
  udp?: ClientUdpPorts;
  reorderer?: RtpReorderer;
  bye: boolean;
}

/** Play `url` once over `settings.lower`; resolves when the source ends or on abort. */
export async function playOnce(url: URL, settings: PlaySettings): Promise<void> {
  const signal = settings.signal;
  if (signal?.aborted) return;
  const play = new Play(url, settings);
  const onAbort = () => play.stop();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await play.run();
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

class Play {
  readonly #requestUrl: string;
  readonly #url: URL;
  readonly #s: PlaySettings;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #credentials: UserPassword | undefined;
  readonly #counters: Counters = {
    rtpPacketsReceived: 0,
    rtpPacketsDropped: 0,
    rtcpPacketsReceived: 0,
    rtcpPacketsDropped: 0,
    framesPublished: 0,
  };
  readonly #channels = new Map<number, (data: Uint8Array) => void>();
  readonly #tracks: PlayTrack[] = [];
  readonly #ssrc = crypto.getRandomValues(new Uint32Array(1))[0];
  #conn: RtspClientConnection | undefined;
  /** The aggregate control URL (PLAY, keep-alives, TEARDOWN). */
  #aggregate: string;
  #timeline: IngestTimeline | undefined;
  #stopped = Promise.withResolvers<void>();
  #isStopped = false;
  /** Whether the close has begun (nothing may be opened after it). */
  #closing = false;
  #lastPacketMs = 0;
  #packets = 0;
  /** Why the play failed once media flows, first reason only. */
  #failure: Error | undefined;

  constructor(url: URL, settings: PlaySettings) {
    this.#url = url;
    this.#s = settings;
    this.#log = settings.logger ?? silentLogger;
    this.#timeoutMs = settings.timeoutMs ?? 10_000;
    this.#requestUrl = withoutCredentials(url.href);
    this.#aggregate = this.#requestUrl;
    this.#credentials = url.username
      ? { user: decodeUserInfo(url.username), password: decodeUserInfo(url.password) }
      : undefined;
  }

  /** End the play with `error` (the first reason wins). */
  #fail(error: Error): void {
    this.#failure ??= error;
    this.#stopped.resolve();
  }

  /** Stop (abort): the run tears down and resolves. */
  stop(): void {
    this.#isStopped = true;
    this.#stopped.resolve();
  }

  async run(): Promise<void> {
    const shown = escapeForLog(this.#requestUrl);
    try {
      const opening = RtspClientConnection.open(this.#url, {
        timeoutMs: this.#timeoutMs,
        caCerts: this.#s.caCerts,
        credentials: this.#credentials,
        onInterleaved: (channel, data) => this.#channels.get(channel)?.(data),
        logger: this.#log,
      });
      const conn = await this.#until(opening);
      if (!conn) return void opening.then((late) => late.close(), () => {});
      this.#conn = conn;
      const keepAlive = await this.#until(this.#options());
      if (keepAlive === undefined) return;
      const aggregate = await this.#until(this.#describeAndSetup());
      if (aggregate === undefined) return;
      this.#aggregate = aggregate;
      const played = await this.#until(this.#request("PLAY", aggregate, [["Range", "npt=0.000-"]]));
      if (!played) return;
      this.#log.info(
        `rtsp pull ${shown}: playing ${this.#tracks.map((t) => t.format.codec).join("+")} over ` +
          this.#s.lower,
      );
      await this.#receive(aggregate, keepAlive);
    } finally {
      await this.#close();
    }
  }

  /**
   * `promise`, or undefined once stopped (a rejection after the stop is ignored); rejects
   * when the play failed meanwhile (media arriving during the set-up).
   */
  async #until<T>(promise: Promise<T>): Promise<T | undefined> {
    promise.catch(() => {});
    const result = await Promise.race([promise, this.#stopped.promise.then(() => undefined)]);
    if (this.#failure && !this.#isStopped) throw this.#failure;
    return result;
  }

  /** OPTIONS; returns the keep-alive method the server supports. */
  async #options(): Promise<string> {
    const response = await this.#conn!.request("OPTIONS", this.#requestUrl);
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      throw new RtspStatusError("OPTIONS", response);
    }
    const methods = (response.headers.get("public") ?? "").toUpperCase().split(/[\s,]+/);
    return methods.includes("GET_PARAMETER") ? "GET_PARAMETER" : "OPTIONS";
  }

  /** A request that must succeed. */
  async #request(
    method: string,
    uri: string,
    headers: readonly (readonly [string, string])[] = [],
  ) {
    const response = await this.#conn!.request(method, uri, headers);
    if (response.status !== 200) throw new RtspStatusError(method, response);
    return response;
  }

  /** DESCRIBE, then SETUP of each track carried; returns the aggregate control URL. */
  async #describeAndSetup(): Promise<string> {
    const described = await this.#request("DESCRIBE", this.#requestUrl, [
      ["Accept", "application/sdp"],
    ]);
    const type = described.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
    if (type !== undefined && type !== "application/sdp") {
      throw new Error(`DESCRIBE answered with ${escapeForLog(type)}, not SDP`);
    }
    const sdp = parseSdp(new TextDecoder().decode(described.body));
    const base = describeBase(this.#requestUrl, described.headers);
    const kinds = new Set<string>();
    const chosen: { format: TrackFormat; url: string }[] = [];
    sdp.media.forEach((media, index) => {
      let format: TrackFormat | string;
      try {
        format = trackFormat(media);
      } catch (error) {
        format = (error as Error).message;
      }
      const what = `track ${index} (${escapeForLog(media.type)})`;
      if (typeof format === "string") {
        return this.#log.info(`rtsp pull: ${what} skipped: ${format}`);
      }
      if (kinds.has(format.kind)) {
        return this.#log.info(`rtsp pull: ${what} skipped: a second ${format.kind} track`);
      }
      kinds.add(format.kind);
      chosen.push({ format, url: controlUrl(base, sdpAttribute(media.attributes, "control")) });
    });
    if (chosen.length === 0) throw new Error("the source has no track that can be carried");
    const timeline = new IngestTimeline(
      this.#sink(),
      chosen.map((c) => c.format.clockRate),
      this.#counters,
    );
    this.#timeline = timeline;
    for (const [i, { format, url }] of chosen.entries()) {
      const ingest = new IngestTrack(format, i, timeline, this.#counters);
      await this.#setup({ format, url, ingest, stats: new ReceptionStats(format.clockRate) }, i);
    }
    return controlUrl(base, sdpAttribute(sdp.attributes, "control"));
  }

  /**
   * Where frames go: through a config gate to the caller. What the caller throws ends the
   * play (frames are also published from the timeline's timer, where nobody would catch it).
   */
  #sink(): IngestSink {
    const gate = new ConfigGate();
    const onFrame = this.#s.onFrame;
    return {
      publish: (frame: MediaFrame): number => {
        if (this.#failure || !gate.admit(frame)) return 0;
        try {
          onFrame(frame);
        } catch (error) {
          this.#fail(error instanceof Error ? error : new Error(String(error)));
        }
        return 0;
      },
      updateMetadata() {},
    };
  }

  async #setup(
    track: Pick<PlayTrack, "format" | "url" | "ingest" | "stats">,
    index: number,
  ): Promise<void> {
    const conn = this.#conn!;
    const t: PlayTrack = { ...track, channel: 2 * index, bye: false };
    let transport: string;
    if (this.#s.lower === "udp") {
      t.udp = await ClientUdpPorts.open(conn.remoteAddress);
      if (this.#closing) {
        t.udp.close(); // stopped meanwhile: the close has run
        throw new Error("stopped");
      }
      this.#tracks.push(t);
      transport = `RTP/AVP;unicast;client_port=${t.udp.rtpPort}-${t.udp.rtcpPort}`;
    } else {
      this.#tracks.push(t);
      transport = `RTP/AVP/TCP;unicast;interleaved=${t.channel}-${t.channel + 1}`;
    }
    const response = await conn.request("SETUP", t.url, [["Transport", transport]]);
    if (response.status === 461 && this.#s.lower === "udp" && this.#s.fallbackAfterMs) {
      throw new UdpUnavailable("the server refused UDP (461)");
    }
    if (response.status !== 200) throw new RtspStatusError("SETUP", response);
    const answer = parseTransport(response.headers.get("transport") ?? "")[0];
    if (answer?.lower === "tcp" && this.#s.lower === "udp" && this.#s.fallbackAfterMs) {
      throw new UdpUnavailable("the server answered a UDP SETUP with TCP");
    }
    if (!answer || answer.lower !== this.#s.lower) {
      throw new Error(`SETUP answered with another transport than ${this.#s.lower}`);
    }
    if (answer.multicast) throw new Error("SETUP answered with multicast, which is not supported");
    const onRtcp = (data: Uint8Array) => this.#rtcp(t, data);
    if (t.udp) {
      t.udp.serverRtcpPort = answer.serverPort?.[1];
      const reorderer = new RtpReorderer((packet) => t.ingest.rtp(packet));
      t.reorderer = reorderer;
      t.udp.listen((data) => this.#rtp(t, data), onRtcp, (error) => this.#fail(error));
    } else {
      if (answer.interleaved) t.channel = answer.interleaved[0];
      if (this.#channels.has(t.channel) || this.#channels.has(t.channel + 1)) {
        throw new Error(`SETUP answered with interleaved channels ${t.channel} already in use`);
      }
      this.#channels.set(t.channel, (data) => this.#rtp(t, data));
      this.#channels.set(t.channel + 1, onRtcp);
    }
  }

  #rtp(track: PlayTrack, data: Uint8Array): void {
    const now = performance.now();
    this.#lastPacketMs = now;
    this.#packets++;
    if (data.length >= 12) track.stats.packet(data, now);
    if (track.reorderer) track.reorderer.push(data);
    else track.ingest.rtp(data);
  }

  #rtcp(track: PlayTrack, data: Uint8Array): void {
    track.ingest.rtcp(data);
    let packets;
    try {
      packets = parseRtcp(data);
    } catch {
      return; // counted by the track
    }
    for (const p of packets) {
      if (p.senderReport) track.stats.senderReport(p.senderReport, performance.now());
      if (p.type === RtcpType.BYE) {
        track.bye = true;
        if (this.#tracks.every((t) => t.bye)) this.#stopped.resolve();
      }
    }
  }

  /** Receive until stopped, the source ends, the connection drops or the source is silent. */
  async #receive(aggregate: string, keepAliveMethod: string): Promise<void> {
    const conn = this.#conn!;
    const started = performance.now();
    this.#lastPacketMs = started;
    const fallback = this.#s.fallbackAfterMs;
    const tick = Math.max(50, Math.min(1000, this.#timeoutMs / 4, (fallback ?? Infinity) / 4));
    let nextReport = started + 1000;
    let nextKeepAlive = started + Math.max(1000, conn.sessionTimeoutMs / 2);
    const fail = (error: Error) => this.#fail(error);
    const timer = setInterval(() => {
      const now = performance.now();
      if (fallback && this.#packets === 0 && now - started > fallback) {
        return fail(new UdpUnavailable(`no RTP over UDP within ${fallback} ms`));
      }
      if (now - this.#lastPacketMs > this.#timeoutMs) {
        return fail(new Error(`no RTP packet from the source for ${this.#timeoutMs} ms`));
      }
      if (now >= nextReport) {
        nextReport = now + REPORT_INTERVAL_MS;
        this.#sendReports(now);
      }
      if (now >= nextKeepAlive) {
        nextKeepAlive = now + Math.max(1000, conn.sessionTimeoutMs / 2);
        conn.request(keepAliveMethod, aggregate).then((response) => {
          if (response.status === 454) fail(new Error("the server lost the session (454)"));
        }, (error: Error) => fail(new Error(`keep-alive failed: ${error.message}`)));
      }
    }, tick);
    const ended = conn.ended.then((why) => {
      if (this.#tracks.every((t) => t.bye)) return;
      fail(why ?? new Error("the server closed the connection"));
    });
    try {
      await Promise.race([this.#stopped.promise, ended]);
    } finally {
      clearInterval(timer);
    }
    if (this.#isStopped) return; // aborted: whatever else happened meanwhile
    if (this.#failure) throw this.#failure;
    this.#log.info(`rtsp pull ${escapeForLog(this.#requestUrl)}: the source ended`);
  }

  #sendReports(now: number): void {
    for (const t of this.#tracks) {
      const block = t.stats.report(now);
      if (!block) continue;
      if (t.udp) {
        const out = new Uint8Array(RECEIVER_REPORT_SIZE);
        writeReceiverReport(out, 0, this.#ssrc, block);
        t.udp.sendRtcp(out);
      } else {
        const out = new Uint8Array(4 + RECEIVER_REPORT_SIZE);
        out.set([0x24, t.channel + 1, 0, RECEIVER_REPORT_SIZE]);
        writeReceiverReport(out, 4, this.#ssrc, block);
        void this.#conn!.write(out);
      }
    }
  }

  /** TEARDOWN (bounded) when a session exists, then close everything. */
  async #close(): Promise<void> {
    this.#closing = true;
    this.#timeline?.flush();
    const conn = this.#conn;
    if (conn?.session !== undefined) {
      const teardown = conn.request("TEARDOWN", this.#aggregate).catch(() => undefined);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([teardown, new Promise((r) => (timer = setTimeout(r, TEARDOWN_WAIT_MS)))]);
      clearTimeout(timer);
    }
    conn?.close();
    for (const t of this.#tracks) t.udp?.close();
    if (this.#tracks.length > 0) {
      const c = this.#counters;
      const dropped = this.#tracks.reduce(
        (sum, t) => sum + t.ingest.dropped + (t.reorderer?.dropped ?? 0),
        c.rtpPacketsDropped,
      );
      const perTrack = this.#tracks.map((t) => `${t.format.codec} ${t.stats.received}`).join(", ");
      this.#log.info(
        `rtsp pull ${escapeForLog(this.#requestUrl)}: closed after ${c.rtpPacketsReceived} RTP ` +
          `packets (${perTrack}; ${dropped} dropped), ${c.rtcpPacketsReceived} RTCP, ` +
          `${c.framesPublished} frames`,
      );
    }
  }
}

/** A URL's percent-encoded user or password as text (as written when it is not valid). */
function decodeUserInfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
