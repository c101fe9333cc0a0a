/**
 * WHIP (RFC 9725) and WHEP endpoints as one HTTP route: `POST /APP/NAME/whip` publishes,
 * `POST /APP/NAME/whep` plays, `DELETE` on the returned session URL ends a session, and
 * `GET /APP/NAME/` and `/APP/NAME/publish` serve a player and a camera publisher page.
 *
 * @module
 */

import { createRequire } from "node:module";
import type { RTCPeerConnection } from "werift";
import {
  escapeForLog,
  type Logger,
  PublishError,
  type Registry,
  silentLogger,
  type StreamHandle,
} from "../../mod.ts";
import type { HttpRoute } from "../http/server.ts";
import type { TranscodedViews } from "../../media/transcode/views.ts";
import { isSafeName, parseStreamPath } from "../http/paths.ts";
import { readBoundedBody } from "../http/body.ts";
import { WebRtcError } from "./error.ts";
import { inspectOffer, type OfferSummary } from "./_offer.ts";
import { answerOffer, messageOf, type PeerNetwork } from "./_peer.ts";
import { PeerMediaReceiver } from "./_receiver.ts";
import { WhepPlayer } from "./_player.ts";
import { playerPage, publishPage } from "./_pages.ts";

/** Options for {@linkcode WebRtcServer}. */
export interface WebRtcServerOptions {
  /** Where WHIP publishes and WHEP plays from. */
  registry: Registry;
  /**
   * Addresses announced as ICE host candidates (`--webrtc-host`), e.g. a public address
   * in front of a NAT. Default: every non-loopback IPv4 interface address (127.0.0.1 when
   * there is none).
   */
  hosts?: readonly string[];
  /** UDP ports for sessions, inclusive (`--webrtc-ports`). Default: any free port. */
  portRange?: readonly [number, number];
  /** Where sessions are logged. */
  logger?: Logger;
  /** Largest SDP offer accepted, in bytes (default 64 KiB). */
  maxOfferBytes?: number;
  /**
   * A session whose ICE/DTLS connection is not up this long after its answer is closed,
   * freeing a WHIP stream key the offer claimed (default 5,000 ms). A connection that
   * fails (a DTLS handshake that does not verify) ends its session at once.
   */
  connectTimeoutMs?: number;
  /**
   * A connected session from whose peer no packet (RTP, RTCP or DTLS) arrives this long
   * is ended: a WHEP player that vanished or stalled (players send RTCP receiver reports
   * every second or so), a WHIP publisher that went silent. ICE-lite sends no consent
   * checks of its own, so nothing else notices (default 30,000 ms).
   */
  peerTimeoutMs?: number;
  /**
   * A WHEP player that has skipped more than this many frames in all (its sends fell a ring
   * behind the live edge) is disconnected as too slow (default 2048).
   */
  maxLag?: number;
  /**
   * A WHEP player one of whose sends has stayed pending this long while frames were due is
   * disconnected (default 10,000 ms; checked every 250 ms). UDP sends settle at once unless
   * the socket is stuck: a player that vanished is found by `peerTimeoutMs`.
   */
  stallTimeoutMs?: number;
  /**
   * A WHEP player starts on the GOP replay at once and catches up with the live frames at
   * this multiple of real time; 0 (the default) sends the replay in one burst.
   */
  catchUpSpeed?: number;
  /** How often a WHIP publisher is asked for a keyframe, in ms; 0 never (default 2000). */
  keyframeIntervalMs?: number;
  /** `Access-Control-Allow-Origin` for cross-origin publishers and players (default `*`). */
  allowOrigin?: string;
  /**
   * Transcoded views for players of AAC streams, which WebRTC cannot carry: their audio is
   * transcoded to Opus once per stream while anyone plays it. Without it such players get
   * video only.
   */
  transcode?: TranscodedViews;
}

/** One WHIP or WHEP session. */
interface Session {
  readonly id: string;
  readonly kind: "whip" | "whep";
  readonly handle: StreamHandle;
  readonly pc: RTCPeerConnection;
  readonly peer: string;
  /** The Bearer token the offer carried: ending the session takes the same one. */
  readonly token: string | undefined;
  end(reason: string): void;
}

/** A checked offer for a stream. */
interface Offer {
  readonly offer: string;
  readonly summary: OfferSummary;
  readonly app: string;
  readonly stream: string;
  readonly peer: string;
  readonly token: string | undefined;
}

const SDP = "application/sdp";

/**
 * The WHIP and WHEP endpoints over werift: each session is an ICE-lite, DTLS, SRTP peer
 * whose H.264 and Opus media is mapped to and from the kernel's frames. Add
 * {@linkcode WebRtcServer.route} to the HTTP server's routes; call
 * {@linkcode WebRtcServer.close} on shutdown.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { serveHttp } from "@arcly/stream/http";
 * import { WebRtcServer } from "@arcly/stream/webrtc";
 *
 * const registry = new Registry();
 * const webrtc = new WebRtcServer({ registry, hosts: ["127.0.0.1"], portRange: [8189, 8289] });
 * const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0 });
 * // browsers publish to http://127.0.0.1:PORT/live/cam/whip and play /live/cam/whep
 * await webrtc.close();
 * await http.close();
 * ```
 */
export class WebRtcServer {
  /** The HTTP route answering WHIP, WHEP, their session URLs and the two pages. */
  readonly route: HttpRoute;
  readonly #registry: Registry;
  readonly #network: PeerNetwork;
  readonly #logger: Logger;
  readonly #maxOfferBytes: number;
  readonly #connectTimeoutMs: number;
  readonly #peerTimeoutMs: number;
  readonly #maxLag: number;
  readonly #stallTimeoutMs: number;
  readonly #catchUpSpeed: number;
  readonly #transcode: TranscodedViews | undefined;
  readonly #keyframeIntervalMs: number;
  readonly #cors: Record<string, string>;
  readonly #sessions = new Map<string, Session>();
  #hlsJs: Promise<Uint8Array<ArrayBuffer>> | undefined;
  #closed = false;

  /** Make the endpoints; nothing listens until a session binds its UDP ports. */
  constructor(options: WebRtcServerOptions) {
    this.#registry = options.registry;
    this.#network = {
      hosts: options.hosts?.length ? [...options.hosts] : defaultHosts(),
      portRange: options.portRange,
    };
    this.#logger = options.logger ?? silentLogger;
    this.#maxOfferBytes = options.maxOfferBytes ?? 64 * 1024;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.#peerTimeoutMs = options.peerTimeoutMs ?? 30_000;
    this.#maxLag = options.maxLag ?? 2048;
    this.#stallTimeoutMs = options.stallTimeoutMs ?? 10_000;
    this.#catchUpSpeed = options.catchUpSpeed ?? 0;
    this.#transcode = options.transcode;
    this.#keyframeIntervalMs = options.keyframeIntervalMs ?? 2000;
    this.#cors = {
      "access-control-allow-origin": options.allowOrigin ?? "*",
      "access-control-allow-methods": "OPTIONS, POST, DELETE, PATCH",
      "access-control-allow-headers": "Authorization, Content-Type, If-Match",
      "access-control-expose-headers": "Location",
    };
    this.route = (request, url, info) => this.#route(request, url, info);
  }

  /** Open sessions (connecting or connected). */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The announced host addresses. */
  get hosts(): readonly string[] {
    return this.#network.hosts;
  }

  /** End every session and refuse new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    const pcs = [...this.#sessions.values()].map((s) => {
      s.end("server closing");
      return s.pc;
    });
    await Promise.all(pcs.map((pc) => pc.close().catch(() => {})));
  }

  async #route(
    request: Request,
    url: URL,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response | undefined> {
    if (url.pathname === "/assets/hls.min.js" && request.method === "GET") {
      return await this.#asset();
    }
    const path = parseStreamPath(url.pathname);
    if (!path || !this.#registry.apps.includes(path.app)) return;
    if (!isSafeName(path.stream)) {
      // A WHIP or WHEP endpoint with a name no stream can have (e.g. escapes) is a bad request.
      if (!/^(whip|whep)$/.test(path.rest)) return;
      return this.#text(400, "the stream name may only have letters, digits and . _ ~ -");
    }
    const { app, stream, rest } = path;
    const peer = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
    if (request.method === "GET" && (rest === "" || rest === "publish")) {
      const html = rest === "" ? playerPage(app, stream) : publishPage(app, stream);
      return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    const endpoint = /^(whip|whep)(?:\/([0-9a-f-]{36}))?$/.exec(rest);
    if (!endpoint) return;
    const kind = endpoint[1] as "whip" | "whep";
    const id = endpoint[2];
    if (request.method === "OPTIONS") {
      return new Response(null, {
        status: 204,
        headers: { ...this.#cors, allow: id ? "OPTIONS, DELETE" : "OPTIONS, POST" },
      });
    }
    try {
      if (id !== undefined) return this.#resource(request, kind, id, `${app}/${stream}`);
      if (request.method !== "POST") {
        return this.#text(405, `${request.method} not allowed here`, { allow: "OPTIONS, POST" });
      }
      return await this.#offer(request, url, kind, app, stream, peer);
    } catch (error) {
      if (!(error instanceof WebRtcError)) throw error;
      // The message may quote the offer (SDP lines, media types): escaped, it stays one line.
      this.#logger.warn(
        `${kind} ${app}/${stream} from ${peer}: ${error.status} ${escapeForLog(error.message)}`,
      );
      const headers: Record<string, string> = error.status === 401
        ? { "www-authenticate": "Bearer" }
        : {};
      return this.#text(error.status, error.message, headers);
    }
  }

  /** DELETE ends a session; PATCH (trickle ICE, ICE restart) is not offered. */
  #resource(request: Request, kind: string, id: string, key: string): Response {
    const session = this.#sessions.get(id);
    if (!session || session.kind !== kind || session.handle.key !== key) {
      return this.#text(404, `no ${kind} session ${id}`);
    }
    if (request.method === "DELETE") {
      // The session URL alone is not enough to end a session opened with a token.
      if (session.token !== undefined) {
        const token = bearerToken(request);
        if (token === undefined) {
          return this.#text(401, "a Bearer token is required", { "www-authenticate": "Bearer" });
        }
        if (!sameSecret(token, session.token)) {
          return this.#text(403, `the token is not the one that opened session ${id}`);
        }
      }
      session.end("ended by the client");
      return new Response(null, { status: 200, headers: this.#cors });
    }
    return this.#text(405, `${request.method} not allowed on a session: no trickle ICE`, {
      allow: "OPTIONS, DELETE",
    });
  }

  async #offer(
    request: Request,
    url: URL,
    kind: "whip" | "whep",
    app: string,
    stream: string,
    peer: string,
  ): Promise<Response> {
    if (this.#closed) throw new WebRtcError(503, "the server is shutting down");
    const type = request.headers.get("content-type")?.split(";")[0].trim().toLowerCase();
    if (type !== SDP) {
      throw new WebRtcError(415, `the offer must be ${SDP}, not ${type ?? "untyped"}`);
    }
    const offer = await readText(request, this.#maxOfferBytes);
    const token = bearerToken(request);
    const allowed = await this.#registry.authorize({
      action: kind === "whip" ? "publish" : "read",
      app,
      stream,
      query: url.search.slice(1),
      protocol: kind,
      peer,
      credentials: token === undefined ? undefined : { token },
    });
    if (!allowed) {
      throw token === undefined
        ? new WebRtcError(401, "a Bearer token is required")
        : new WebRtcError(403, "the token does not allow this");
    }
    const checked: Offer = { offer, summary: inspectOffer(offer), app, stream, peer, token };
    const session = kind === "whip" ? await this.#publish(checked) : await this.#play(checked);
    const location = `/${app}/${stream}/${kind}/${session.id}`;
    return new Response(session.pc.localDescription?.sdp, {
      status: 201,
      headers: { ...this.#cors, "content-type": SDP, location },
    });
  }

  async #publish({ offer, summary, app, stream, peer, token }: Offer): Promise<Session> {
    if (this.#registry.get(app, stream)) {
      throw new WebRtcError(409, `stream ${app}/${stream} already has a publisher`);
    }
    const { pc } = await answerOffer(offer, this.#network, {
      direction: "recvonly",
      video: summary.h264,
      audio: summary.opus,
    }, this.#connectTimeoutMs);
    let handle: StreamHandle;
    try {
      handle = this.#registry.startPublish(app, stream, { protocol: "webrtc", peer });
    } catch (error) {
      await pc.close().catch(() => {});
      if (!(error instanceof PublishError)) throw error;
      const status = error.code === "busy" ? 409 : error.code === "bad-name" ? 400 : 404;
      throw new WebRtcError(status, error.message);
    }
    const ingest = new PeerMediaReceiver(pc, {
      frame: (frame) => handle.publish(frame),
      metadata: (update) => handle.updateMetadata(update),
      logger: this.#logger,
      label: `whip ${handle.key}`,
      keyframeIntervalMs: this.#keyframeIntervalMs,
    });
    const session = this.#open("whip", handle, pc, peer, token, () => {
      ingest.close();
      this.#registry.endPublish(handle);
    });
    handle.signal.addEventListener("abort", () => session.end("stream ended"), { once: true });
    if (!summary.h264) this.#logger.info(`whip ${handle.key}: the offer has no H.264; audio only`);
    return session;
  }

  async #play({ offer, summary, app, stream, peer, token }: Offer): Promise<Session> {
    const handle = await this.#registry.acquire(app, stream);
    if (!handle) throw new WebRtcError(404, `stream ${app}/${stream} is not live`);
    const configs = handle.cachedConfigs();
    const videoCodec = configs.video?.codec;
    const audioCodec = configs.audio?.codec;
    if (videoCodec !== undefined && videoCodec !== "h264") {
      throw new WebRtcError(406, `stream ${handle.key} is ${videoCodec}; WHEP here carries H.264`);
    }
    const transcode = summary.opus && this.#transcode?.needed(handle, "opus") === true;
    const audio = summary.opus &&
      (audioCodec === undefined || audioCodec === "opus" || transcode);
    if (summary.opus && !audio) {
      this.#logger.info(
        `whep ${handle.key}: audio is ${audioCodec}, which WebRTC cannot carry; video only`,
      );
    }
    if (!summary.h264 && !audio) {
      throw new WebRtcError(406, `stream ${handle.key} has nothing the offer can receive`);
    }
    const { pc } = await answerOffer(offer, this.#network, {
      direction: "sendonly",
      video: summary.h264,
      audio,
    }, this.#connectTimeoutMs);
    const lease = transcode ? this.#transcode!.acquire(handle, "opus") : undefined;
    if (lease) this.#logger.info(`whep ${handle.key}: audio is ${audioCodec}, sent as Opus`);
    const player = new WhepPlayer(pc, lease?.handle ?? handle, this.#logger, {
      maxLag: this.#maxLag,
      stallTimeoutMs: this.#stallTimeoutMs,
      catchUpSpeed: this.#catchUpSpeed,
    });
    const session = this.#open("whep", handle, pc, peer, token, () => {
      player.close();
      lease?.release();
    });
    let playing = false;
    pc.connectionStateChange.subscribe((state) => {
      if (state !== "connected" || playing) return;
      playing = true;
      // A DELETE, a failed or silent peer or the server's close end the session, which
      // closes the player: its play ends as aborted and there is nothing more to do.
      void player.run().then((reason) => reason && session.end(reason));
    });
    return session;
  }

  /**
   * Register a session: reaped if it does not connect in time, ended when its peer fails
   * or, once connected, falls silent.
   */
  #open(
    kind: "whip" | "whep",
    handle: StreamHandle,
    pc: RTCPeerConnection,
    peer: string,
    token: string | undefined,
    stop: () => void,
  ): Session {
    const id = crypto.randomUUID();
    let ended = false;
    const timer = setTimeout(
      () => session.end(`no ICE/DTLS connection within ${this.#connectTimeoutMs} ms`),
      this.#connectTimeoutMs,
    );
    let stopWatching = () => {};
    const session: Session = {
      id,
      kind,
      handle,
      pc,
      peer,
      token,
      end: (reason) => {
        if (ended) return;
        ended = true;
        clearTimeout(timer);
        stopWatching();
        this.#sessions.delete(id);
        stop();
        pc.close().catch(() => {});
        this.#logger.info(`${kind} ${handle.key} session ${id} from ${peer} ended: ${reason}`);
      },
    };
    pc.connectionStateChange.subscribe((state) => {
      if (state === "connected") {
        clearTimeout(timer);
        stopWatching();
        stopWatching = watchPeer(
          pc,
          this.#peerTimeoutMs,
          () => session.end(`no packet from the peer for ${this.#peerTimeoutMs} ms`),
        );
        this.#logger.info(`${kind} ${handle.key} session ${id} from ${peer} connected`);
      } else if (state === "failed" || state === "closed") {
        session.end(`peer connection ${state}`);
      }
    });
    this.#sessions.set(id, session);
    this.#logger.info(`${kind} ${handle.key} session ${id} from ${peer} answered`);
    return session;
  }

  #text(status: number, text: string, headers: Record<string, string> = {}): Response {
    const response = new Response(`${text}\n`, { status, headers: { ...this.#cors, ...headers } });
    response.headers.set("content-type", "text/plain; charset=utf-8");
    return response;
  }

  /** hls.js for the player page's fallback, from the npm package, read once. */
  async #asset(): Promise<Response> {
    this.#hlsJs ??= loadHlsJs();
    try {
      return new Response(await this.#hlsJs, {
        headers: {
          "content-type": "text/javascript; charset=utf-8",
          "cache-control": "max-age=86400",
        },
      });
    } catch (error) {
      this.#hlsJs = undefined;
      this.#logger.error(`webrtc: cannot load hls.js: ${messageOf(error)}`);
      return this.#text(503, "hls.js is not available");
    }
  }
}

/**
 * Call `silent` once no packet has come from the peer of `pc` for `timeoutMs`; returns
 * what stops watching. Checks run a few times per timeout, not per packet.
 */
function watchPeer(pc: RTCPeerConnection, timeoutMs: number, silent: () => void): () => void {
  let heard = true;
  const subscriptions = pc.dtlsTransports.map((transport) =>
    transport.iceTransport.connection.onData.subscribe(() => void (heard = true))
  );
  let quietSince = performance.now();
  const check = setInterval(() => {
    const now = performance.now();
    if (heard) quietSince = now;
    heard = false;
    if (now - quietSince >= timeoutMs) silent();
  }, Math.max(10, Math.min(1000, timeoutMs / 4)));
  return () => {
    clearInterval(check);
    for (const subscription of subscriptions) subscription.unSubscribe();
  };
}

async function loadHlsJs(): Promise<Uint8Array<ArrayBuffer>> {
  await import("hls.js"); // puts the package in the module graph so it can be resolved
  const path = createRequire(import.meta.url).resolve("hls.js/dist/hls.min.js");
  return await Deno.readFile(path);
}

/**
 * Every non-loopback, non-link-local IPv4 interface address, or 127.0.0.1 when there is
 * none. Loopback is left out otherwise: a browser pairs its LAN candidate with it, gets
 * answers from the LAN address and the session never connects.
 */
function defaultHosts(): string[] {
  const hosts = Deno.networkInterfaces()
    .filter((n) => n.family === "IPv4" && !/^(127|169\.254)\./.test(n.address))
    .map((n) => n.address);
  return hosts.length > 0 ? [...new Set(hosts)] : ["127.0.0.1"];
}

/** The request body as text, refusing more than `max` bytes. */
async function readText(request: Request, max: number): Promise<string> {
  const declared = Number(request.headers.get("content-length"));
  const body = declared > max ? undefined : await readBoundedBody(request.body, max);
  if (!body) throw new WebRtcError(413, `the offer is larger than ${max} bytes`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new WebRtcError(400, "the offer is not UTF-8 text");
  }
}

/** The token of an `Authorization: Bearer TOKEN` header, if the request has one. */
function bearerToken(request: Request): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
}

/** Whether two secrets are equal, in a time that does not depend on where they differ. */
function sameSecret(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let differ = 0;
  for (let i = 0; i < a.length; i++) differ |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return differ === 0;
}
