/**
 * One RTSP connection on the server: requests in, responses out, interleaved RTP and
 * RTCP both ways, and the sessions the connection created.
 *
 * @module
 */

import { setTimeout as delay } from "node:timers/promises";
import {
  escapeForLog,
  FrameFlags,
  type Logger,
  type MediaFrame,
  PublishError,
  type Registry,
  type StreamHandle,
} from "../../mod.ts";
import {
  formatResponse,
  RtspError,
  RtspReader,
  type RtspReaderLimits,
  type RtspRequest,
} from "./message.ts";
import { formatSdp, parseSdp, sdpAttribute, SdpError } from "../../media/rtp/sdp.ts";
import { parseTransport } from "./transport.ts";
import type { RtspAuthenticator } from "./auth.ts";
import { randomHex } from "./_digest.ts";
import { PublishSession, ReadSession, type RtspSession, type SessionContext } from "./_session.ts";
import {
  canDescribe,
  type DescribedTrack,
  describeTrack,
  type TrackFormat,
  trackFormat,
} from "./_formats.ts";
import type { Counters } from "./_ingest.ts";
import type { UdpPair } from "./_udp.ts";
import { baseOf, parseTarget, type Target } from "./_target.ts";

/** What every connection of one server shares. */
export interface ConnectionSettings {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly counters: Counters;
  readonly auth: RtspAuthenticator | undefined;
  /** The UDP port pair once bound; undefined when UDP is off or failed to bind. */
  readonly udp: Promise<UdpPair | undefined>;
  readonly sessionTimeoutMs: number;
  readonly describeTimeoutMs: number;
  /** A message must be complete this long after its first byte (or after the accept). */
  readonly requestTimeoutMs: number;
  /** A session must PLAY or RECORD this long after it was created. */
  readonly startTimeoutMs: number;
  /** A recording publisher must send an RTP packet at least this often. */
  readonly mediaTimeoutMs: number;
  /** A write to the peer may be stuck this long. */
  readonly stallTimeoutMs: number;
  readonly maxLag: number;
  /** How long a player's new frames wait for more to join them in one write (ms). */
  readonly coalesceMs: number;
  readonly catchUpSpeed: number;
  readonly maxPayload: number;
  readonly limits: RtspReaderLimits;
}

/** The methods the server implements, for `Public`. */
const PUBLIC = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, PAUSE, TEARDOWN, " +
  "GET_PARAMETER, SET_PARAMETER";

/** More sessions on one connection are refused. */
const MAX_SESSIONS = 8;

/** With this many answers waiting to be written, the connection stops reading requests. */
const MAX_UNANSWERED = 16;

/**
 * Read buffer sizes: a connection starts with a small one (requests are short, and a server
 * holds thousands of players); one that records gets the large one (interleaved RTP).
 */
const SMALL_READ = 4 * 1024;
const RECORD_READ = 64 * 1024;
/**
 * A playing connection's read buffer: a player sends RTCP receiver reports, keep-alives and
 * TEARDOWN. A read that fills it is followed by one of {@linkcode SMALL_READ} bytes, made for
 * that read only, so a larger request is not read 64 bytes at a time.
 */
const PLAYER_READ = 64;

interface Answer {
  status?: number;
  headers?: [string, string][];
  body?: string;
  /** Runs once the answer is queued (a play's first packets go out behind it). */
  answered?: () => void;
}

/** A read described on this connection: what SETUP may then pick from. */
interface Description {
  readonly handle: StreamHandle;
  readonly tracks: readonly DescribedTrack[];
}

/**
 * The server side of one RTSP connection. {@linkcode RtspConnection.run} serves it until
 * the peer leaves or a fatal error; {@linkcode RtspConnection.close} ends it from outside.
 */
export class RtspConnection {
  /** `host:port` of the peer. */
  readonly peer: string;
  #conn: Deno.Conn<Deno.NetAddr>;
  #s: ConnectionSettings;
  #log: Logger;
  #reader: RtspReader;
  #writes: Promise<void> = Promise.resolve();
  #writeSince = -1;
  /** What reads go into; see {@linkcode RtspConnection.#readBuffer}. */
  #buffer = new Uint8Array(0);
  /** Responses queued and not yet written. */
  #unanswered = 0;
  #closed = false;
  #nonce = randomHex(16);
  #sessions = new Set<RtspSession>();
  #described = new Map<string, Description>();
  #authorized = new Set<string>();
  #lastRequest = performance.now();
  /**
   * Since when the reader holds part of a message, -1 when it holds none. A connection
   * starts waiting for its first request.
   */
  #partialSince = performance.now();
  #messages = 0;
  #context: SessionContext;

  /** Wrap an accepted connection. */
  constructor(conn: Deno.Conn<Deno.NetAddr>, settings: ConnectionSettings) {
    this.#conn = conn;
    this.#s = settings;
    this.#log = settings.logger;
    const addr = conn.remoteAddr;
    this.peer = `${addr.hostname}:${addr.port}`;
    this.#reader = new RtspReader((ch, data) => this.#interleaved(ch, data), settings.limits);
    this.#context = {
      registry: settings.registry,
      logger: settings.logger,
      counters: settings.counters,
      maxLag: settings.maxLag,
      coalesceMs: settings.coalesceMs,
      stallTimeoutMs: settings.stallTimeoutMs,
      catchUpSpeed: settings.catchUpSpeed,
      maxPayload: settings.maxPayload,
      write: (bytes) => this.#write(bytes),
      peerAddress: addr.hostname,
      peer: this.peer,
      closeConnection: (why) => this.close(why),
    };
  }

  /** The sessions this connection created and has not closed. */
  get sessions(): ReadonlySet<RtspSession> {
    return this.#sessions;
  }

  /** Serve the connection until it ends; never rejects. */
  async run(): Promise<void> {
    let burst: Uint8Array | undefined;
    try {
      while (!this.#closed) {
        const buf = burst ?? this.#readBuffer();
        const n = await this.#conn.read(buf);
        if (n === null) {
          this.close("peer closed the connection", "info");
          break;
        }
        let requests: RtspRequest[];
        const before = this.#messages;
        try {
          requests = this.#reader.push(buf.subarray(0, n));
          // A read that filled a player's small buffer leaves more waiting: read it at once.
          burst = n === PLAYER_READ && buf.length === PLAYER_READ
            ? new Uint8Array(SMALL_READ)
            : undefined;
        } catch (error) {
          if (!(error instanceof RtspError)) throw error;
          await this.#respondError(error, null);
          break;
        }
        this.#messages += requests.length;
        this.#notePartial(this.#messages > before);
        for (const request of requests) {
          await this.#request(request);
          if (this.#closed) break;
        }
        // Answers queue behind media writes, so requests (keep-alives above all) are read on
        // while a write is stuck; a peer that stops reading its answers stops being read too.
        if (this.#unanswered >= MAX_UNANSWERED) await this.#writes;
      }
    } catch (error) {
      this.close(error instanceof Error ? error.message : String(error), "info");
    }
  }

  /** Close sessions that timed out, and the connection when idle or stalled. */
  checkTimeouts(now: number): void {
    const { sessionTimeoutMs: timeout, requestTimeoutMs, stallTimeoutMs } = this.#s;
    for (const session of this.#sessions) {
      const why = this.#sessionTimeout(session, now);
      if (why) {
        this.#sessions.delete(session);
        session.close(why, "warn");
      }
    }
    if (this.#writeSince >= 0 && now - this.#writeSince > stallTimeoutMs) {
      this.close(`the peer accepted no data for ${stallTimeoutMs} ms`);
    } else if (this.#partialSince >= 0 && now - this.#partialSince > requestTimeoutMs) {
      this.close(
        this.#messages === 0
          ? `no request within ${requestTimeoutMs} ms of connecting`
          : `a message not complete within ${requestTimeoutMs} ms of its first byte`,
      );
    } else if (this.#sessions.size === 0 && now - this.#lastRequest > timeout) {
      this.close(`no request for ${timeout} ms`, "info");
    }
  }

  /** Why `session` is to be closed at `now`, if it is. */
  #sessionTimeout(session: RtspSession, now: number): string | undefined {
    const { sessionTimeoutMs, startTimeoutMs, mediaTimeoutMs } = this.#s;
    if (now - session.lastActivity > sessionTimeoutMs) {
      return `no request or packet for ${sessionTimeoutMs} ms`;
    }
    if (!session.started && now - session.createdAt > startTimeoutMs) {
      const what = session instanceof PublishSession ? "RECORD" : "PLAY";
      return `no ${what} within ${startTimeoutMs} ms of its setup`;
    }
    if (
      session instanceof PublishSession && session.recording &&
      now - session.lastMedia > mediaTimeoutMs
    ) {
      return `no RTP packet from the publisher for ${mediaTimeoutMs} ms`;
    }
    return undefined;
  }

  /** Track whether the reader holds part of a message, and since when. */
  #notePartial(completed: boolean): void {
    if (this.#reader.buffered === 0) {
      if (this.#messages > 0) this.#partialSince = -1;
    } else if (completed || this.#partialSince < 0) {
      this.#partialSince = performance.now();
    }
  }

  /** End the connection and its sessions (idempotent). */
  close(why: string, level: "info" | "warn" = "warn"): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#log[level](`rtsp ${this.peer}: closed: ${why}`);
    for (const session of this.#sessions) session.close("connection closed");
    this.#sessions.clear();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  #interleaved(channel: number, data: Uint8Array): void {
    this.#messages++;
    for (const session of this.#sessions) {
      const handler = session.channels.get(channel);
      if (handler) return handler(data);
    }
    this.#s.counters.rtpPacketsDropped++;
  }

  async #request(req: RtspRequest): Promise<void> {
    this.#lastRequest = performance.now();
    const cseq = req.headers.get("cseq");
    if (cseq === null || !/^\d{1,10}$/.test(cseq.trim())) {
      return this.#respondError(new RtspError(400, "missing or malformed CSeq"), null);
    }
    let answer: Answer;
    try {
      if (req.version !== "RTSP/1.0") {
        throw new RtspError(505, `${escapeForLog(req.version)} is not supported`);
      }
      answer = await this.#dispatch(req);
    } catch (error) {
      if (error instanceof RtspError) return this.#respondError(error, cseq.trim(), req.method);
      if (error instanceof SdpError) {
        return this.#respondError(new RtspError(400, error.message), cseq.trim(), req.method);
      }
      throw error;
    }
    const headers: [string, string][] = [["CSeq", cseq.trim()], ["Server", "arcly-stream"]];
    headers.push(...(answer.headers ?? []));
    void this.#answer(formatResponse(answer.status ?? 200, headers, answer.body ?? ""));
    answer.answered?.();
  }

  async #respondError(error: RtspError, cseq: string | null, method?: string): Promise<void> {
    const headers: (readonly [string, string])[] = cseq === null ? [] : [["CSeq", cseq]];
    headers.push(["Server", "arcly-stream"], ...error.headers);
    const what = method ? `${escapeForLog(method)} ` : "";
    this.#log[error.status === 401 ? "info" : "warn"](
      `rtsp ${this.peer}: ${what}refused with ${error.status}: ${error.message}`,
    );
    const answered = this.#answer(formatResponse(error.status, headers, "", error.reason));
    if (!error.fatal) return;
    await answered;
    this.close(`bad request: ${error.message}`);
  }

  #dispatch(req: RtspRequest): Promise<Answer> | Answer {
    switch (req.method) {
      case "OPTIONS":
        return { headers: [["Public", PUBLIC]] };
      case "DESCRIBE":
        return this.#describe(req);
      case "ANNOUNCE":
        return this.#announce(req);
      case "SETUP":
        return this.#setup(req);
      case "PLAY":
        return this.#play(req);
      case "RECORD":
        return this.#record(req);
      case "PAUSE":
        return this.#pause(req);
      case "TEARDOWN":
        return this.#teardown(req);
      case "GET_PARAMETER":
      case "SET_PARAMETER":
        return this.#parameter(req);
      default:
        throw new RtspError(501, `method ${escapeForLog(req.method)} is not implemented`, {
          headers: [["Public", PUBLIC]],
        });
    }
  }

  // ---- reading ----

  async #describe(req: RtspRequest): Promise<Answer> {
    const target = parseTarget(req.uri);
    await this.#authorize(req, "read", target);
    const description = await this.#describeStream(target);
    this.#described.set(keyOf(target), description);
    const sdp = formatSdp({
      origin: `- ${Date.now()} 1 IN IP4 ${this.#conn.localAddr.hostname}`,
      name: keyOf(target),
      lines: ["c=IN IP4 0.0.0.0", "t=0 0"],
      attributes: [{ name: "tool", value: "arcly-stream" }, { name: "control", value: "*" }],
      media: description.tracks.map((t) => t.media),
    });
    return {
      headers: [["Content-Base", target.base], ["Content-Type", "application/sdp"]],
      body: sdp,
    };
  }

  /** The stream's tracks, waiting a little for its configs when it just started. */
  async #describeStream(target: Target): Promise<Description> {
    const handle = await this.#s.registry.acquire(target.app, target.stream);
    if (!handle || handle.closed) throw new RtspError(404, `stream ${shownKey(target)} not found`);
    const deadline = performance.now() + this.#s.describeTimeoutMs;
    while (!describable(handle) && !handle.closed && performance.now() < deadline) {
      await delay(50);
    }
    const { video, audio } = handle.cachedConfigs();
    const configs = [video, audio].filter((c): c is MediaFrame => c !== undefined);
    if (configs.length === 0) {
      throw new RtspError(503, `stream ${shownKey(target)} has no decoder configuration yet`);
    }
    const tracks: DescribedTrack[] = [];
    for (const config of configs) {
      if (!canDescribe(config)) continue;
      try {
        tracks.push(describeTrack(config, `trackID=${tracks.length}`));
      } catch (error) {
        this.#log.warn(`rtsp ${this.peer}: ${shownKey(target)}: ${(error as Error).message}`);
      }
    }
    if (tracks.length === 0) {
      throw new RtspError(415, `no track of ${shownKey(target)} can be sent over RTP`);
    }
    return { handle, tracks };
  }

  #play(req: RtspRequest): Answer {
    const session = this.#session(req);
    if (!(session instanceof ReadSession)) {
      throw new RtspError(455, "PLAY on a session that publishes");
    }
    const target = parseTarget(req.uri);
    const { rtpInfo, start } = session.play(target.control ? target.base : baseOf(req.uri));
    return {
      headers: [["Session", session.id], ["Range", "npt=0.000-"], ["RTP-Info", rtpInfo]],
      answered: start,
    };
  }

  // ---- publishing ----

  async #announce(req: RtspRequest): Promise<Answer> {
    const target = parseTarget(req.uri);
    if (!target.stream) throw new RtspError(400, "ANNOUNCE needs a path /APP/NAME");
    const type = req.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
    if (type !== "application/sdp") {
      throw new RtspError(415, `ANNOUNCE with Content-Type ${type ?? "(none)"}; expected SDP`);
    }
    const sdp = parseSdp(new TextDecoder().decode(req.body));
    const formats = sdp.media.map(trackFormat);
    const controls = sdp.media.map((m) => sdpAttribute(m.attributes, "control"));
    if (!formats.some((f) => typeof f !== "string")) {
      throw new RtspError(415, `no announced track can be received: ${formats.join("; ")}`);
    }
    await this.#authorize(req, "publish", target);
    this.#checkSessionRoom();
    let handle: StreamHandle;
    try {
      handle = this.#s.registry.startPublish(target.app, target.stream, {
        protocol: "rtsp",
        peer: this.peer,
      });
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      if (error.code === "busy") {
        throw new RtspError(400, error.message, { reason: "Stream Already Published" });
      }
      if (error.code === "bad-name") throw new RtspError(400, error.message);
      throw new RtspError(404, error.message);
    }
    const udp = await this.#s.udp;
    const session = new PublishSession(this.#context, handle, formats, controls, udp);
    this.#sessions.add(session);
    // The server ending the stream (idle reaper, shutdown) disconnects its publisher.
    handle.signal.addEventListener("abort", () => {
      if (!session.closed) this.close(`stream ${session.key} was ended by the server`);
    }, { once: true });
    this.#log.info(`rtsp ${this.peer}: publish ${session.key} (${describeFormats(formats)})`);
    return {};
  }

  #record(req: RtspRequest): Answer {
    const session = this.#session(req);
    if (!(session instanceof PublishSession)) {
      throw new RtspError(455, "RECORD on a session that reads");
    }
    session.record();
    return { headers: [["Session", session.id]] };
  }

  // ---- both ----

  async #setup(req: RtspRequest): Promise<Answer> {
    const target = parseTarget(req.uri);
    const transportHeader = req.headers.get("transport");
    if (!transportHeader) throw new RtspError(400, "SETUP without a Transport header");
    const specs = parseTransport(transportHeader).filter((s) => !s.multicast);
    const udp = await this.#s.udp;
    const spec = specs.find((s) => s.lower === "tcp" || (udp && s.clientPort));
    if (!spec) {
      throw new RtspError(461, `no supported transport in ${JSON.stringify(transportHeader)}`);
    }
    const existing = req.headers.has("session") ? this.#session(req) : undefined;
    const publish = existing instanceof PublishSession
      ? existing
      : existing
      ? undefined
      : this.#pendingPublish(target);
    let transport: string;
    let session: RtspSession;
    if (publish) {
      const index = trackIndex(publish.controls, target.control);
      transport = publish.setup(index, spec);
      session = publish;
    } else {
      const read = existing as ReadSession | undefined ?? await this.#newRead(req, target);
      if (keyOf(target) !== read.key) {
        throw new RtspError(455, `SETUP of ${shownKey(target)} in a session reading ${read.key}`);
      }
      const index = trackIndex(read.described.map((t) => t.control), target.control);
      transport = read.setup(index, spec);
      session = read;
    }
    const timeout = Math.max(1, Math.round(this.#s.sessionTimeoutMs / 1000));
    return { headers: [["Transport", transport], ["Session", `${session.id};timeout=${timeout}`]] };
  }

  /** The announced publish on this connection that has no track set up yet for `target`. */
  #pendingPublish(target: Target): PublishSession | undefined {
    for (const session of this.#sessions) {
      if (
        session instanceof PublishSession && !session.recording && session.key === keyOf(target)
      ) {
        return session;
      }
    }
    return undefined;
  }

  async #newRead(req: RtspRequest, target: Target): Promise<ReadSession> {
    let description = this.#described.get(keyOf(target));
    if (!description || description.handle.closed) {
      await this.#authorize(req, "read", target);
      description = await this.#describeStream(target);
    }
    this.#checkSessionRoom();
    const session = new ReadSession(
      this.#context,
      description.handle,
      description.tracks,
      await this.#s.udp,
    );
    this.#sessions.add(session);
    return session;
  }

  #pause(req: RtspRequest): Answer {
    const session = this.#session(req);
    if (session instanceof ReadSession) session.pause();
    return { headers: [["Session", session.id]] };
  }

  #teardown(req: RtspRequest): Answer {
    const session = this.#session(req);
    this.#sessions.delete(session);
    session.close("TEARDOWN");
    return {};
  }

  #parameter(req: RtspRequest): Answer {
    if (!req.headers.has("session")) return {};
    const session = this.#session(req);
    return { headers: [["Session", session.id]] };
  }

  /** The session the request names (and note its activity). */
  #session(req: RtspRequest): RtspSession {
    const header = req.headers.get("session");
    if (!header) throw new RtspError(454, `${req.method} without a Session header`);
    const id = header.split(";")[0].trim();
    for (const session of this.#sessions) {
      if (session.id === id) {
        session.touch();
        return session;
      }
    }
    throw new RtspError(454, `session ${JSON.stringify(id.slice(0, 40))} not found`);
  }

  #checkSessionRoom(): void {
    if (this.#sessions.size >= MAX_SESSIONS) {
      throw new RtspError(453, `more than ${MAX_SESSIONS} sessions on one connection`, {
        reason: "Not Enough Bandwidth",
      });
    }
  }

  /** Ask the registry; with an `auth` option, refusals become challenges. */
  async #authorize(req: RtspRequest, action: "publish" | "read", target: Target): Promise<void> {
    const key = `${action}:${keyOf(target)}`;
    if (this.#authorized.has(key)) return;
    const auth = this.#s.auth;
    const header = req.headers.get("authorization");
    let credentials;
    if (auth && header) {
      const check = await auth.check(req.method, header, this.#nonce);
      if (!check.ok) throw this.#challenge(check.reason);
      credentials = check.credentials;
    }
    const allowed = await this.#s.registry.authorize({
      action,
      app: target.app,
      stream: target.stream,
      query: target.query,
      protocol: "rtsp",
      peer: this.peer,
      credentials,
    });
    if (this.#closed) throw new RtspError(500, "connection closed");
    if (allowed) {
      this.#authorized.add(key);
      return;
    }
    if (auth) throw this.#challenge(`${action} ${shownKey(target)} needs credentials`);
    throw new RtspError(403, `${action} ${shownKey(target)} not authorized`);
  }

  #challenge(why: string): RtspError {
    const challenges = this.#s.auth!.challenges(this.#nonce);
    return new RtspError(401, why, {
      headers: challenges.map((c) => ["WWW-Authenticate", c] as const),
    });
  }

  /** Queue a response; {@linkcode RtspConnection.run} stops reading while too many wait. */
  #answer(bytes: Uint8Array): Promise<void> {
    this.#unanswered++;
    return this.#write(bytes).then(() => void this.#unanswered--);
  }

  /** Queue bytes behind earlier writes; resolves (never rejects) once written or failed. */
  #write(bytes: Uint8Array): Promise<void> {
    this.#writes = this.#writes.then(async () => {
      if (this.#closed) return;
      this.#writeSince = performance.now();
      try {
        for (let o = 0; o < bytes.length;) o += await this.#conn.write(bytes.subarray(o));
      } catch (error) {
        this.close(`write failed: ${error instanceof Error ? error.message : error}`, "info");
      } finally {
        this.#writeSince = -1;
      }
    });
    return this.#writes;
  }

  /**
   * What the next read goes into: the large buffer while a session records, the player's
   * tiny one while a session plays, else the small one (kept while its size fits).
   */
  #readBuffer(): Uint8Array {
    let size = SMALL_READ;
    for (const session of this.#sessions) {
      if (session instanceof PublishSession && session.recording) {
        size = RECORD_READ;
        break;
      }
      if (session instanceof ReadSession && session.started) size = PLAYER_READ;
    }
    if (this.#buffer.length !== size) this.#buffer = new Uint8Array(size);
    return this.#buffer;
  }
}

/** Whether a stream has what a description needs: both configs, or one and media. */
function describable(handle: StreamHandle): boolean {
  const { video, audio } = handle.cachedConfigs();
  if (video && audio) return true;
  if (!video && !audio) return false;
  return handle.replayBuffer().some((f) => !(f.flags & FrameFlags.CONFIG));
}

function describeFormats(formats: readonly (TrackFormat | string)[]): string {
  return formats.map((f) => typeof f === "string" ? `unsupported: ${f}` : f.codec).join(", ");
}

function keyOf(target: Target): string {
  return `${target.app}/${target.stream}`;
}

/** The key `target` names as messages and log lines show it (escaped). */
function shownKey(target: Target): string {
  return escapeForLog(keyOf(target));
}

/**
 * The track a control names: its index among `controls` (absolute controls compare by
 * their last path segment). An empty control names the only track.
 */
function trackIndex(controls: readonly (string | undefined)[], control: string): number {
  if (control === "") {
    if (controls.length === 1) return 0;
    throw new RtspError(459, "SETUP of the aggregate URL; name a track");
  }
  const index = controls.findIndex((c) => c !== undefined && lastSegment(c) === control);
  if (index < 0) {
    throw new RtspError(404, `track ${JSON.stringify(control.slice(0, 60))} not found`);
  }
  return index;
}

function lastSegment(control: string): string {
  const trimmed = control.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}
