/**
 * The whole server composed from a config: RTMP, RTSP, SRT and HTTP listeners (live HLS,
 * HTTP-FLV, WHIP/WHEP, the player pages, `/v1/streams`, `/metrics`), recording, and the
 * lifecycle wiring between them.
 *
 * @module
 */

import { lineSafeLogger, type Logger, Registry, silentLogger, type StreamHandle } from "../mod.ts";
import { describeConfig } from "../media/codec/mod.ts";
import type { HttpServer, LiveHls } from "../ingest/http/mod.ts";
import { Metrics } from "../ingest/http/metrics.ts";
import type { RtmpServer } from "../ingest/rtmp/mod.ts";
import type { RtspServer } from "../ingest/rtsp/mod.ts";
import type { SrtServer } from "../ingest/srt/mod.ts";
import type { WebRtcServer } from "../ingest/webrtc/mod.ts";
import type { TranscodedViews } from "../media/transcode/mod.ts";
import { resolveConfig, type ResolvedConfig, type ServerConfig } from "./config.ts";
import type { Listen } from "./listen.ts";
import { record } from "./record.ts";
import { Sources } from "./sources.ts";
import { pullClientFor } from "./pull_clients.ts";
import { AccessPolicy, OPEN_ACCESS, rtspAuth } from "./access/mod.ts";

/** Options for {@linkcode serve} that are code, not config. */
export interface ServeOptions {
  /**
   * Where log lines go (default: nowhere), each one line (control characters escaped).
   * `quiet` in the config drops the `info` lines.
   */
  logger?: Logger;
}

/** Where a running server's listeners are bound (filled in once `ready` resolves). */
export interface ServerAddresses {
  /** RTMP, when on. */
  rtmp?: Deno.NetAddr;
  /** RTSP over TCP, when on. */
  rtsp?: Deno.NetAddr;
  /** RTSP's RTP and RTCP UDP ports, when bound. */
  rtspUdp?: { readonly rtpPort: number; readonly rtcpPort: number };
  /** SRT (UDP), when on. */
  srt?: Deno.NetAddr;
  /** HTTP, when on. */
  http?: Deno.NetAddr;
  /** RTMP over TLS, when on. */
  rtmps?: Deno.NetAddr;
  /** RTSP over TLS, when on. */
  rtsps?: Deno.NetAddr;
  /** HTTPS, when on. */
  https?: Deno.NetAddr;
}

/** What {@linkcode Server.reload} did with a new config. */
export interface ReloadResult {
  /** Settings that changed and apply from now on (dotted keys, e.g. `paths`). */
  readonly applied: readonly string[];
  /** Settings that changed but take a restart (listeners, formats); they were left as they are. */
  readonly restartNeeded: readonly string[];
}

/** A running server, as {@linkcode serve} returns it. */
export interface Server {
  /** Resolves once every listener is bound; rejects (with everything closed) when one fails. */
  readonly ready: Promise<void>;
  /** The bound addresses; read them after `ready`. */
  readonly addresses: Readonly<ServerAddresses>;
  /** The registry every protocol publishes into and plays from. */
  readonly registry: Registry;
  /**
   * Apply a new config. Access rules, paths, apps, recording, the SRT passphrase and
   * `quiet` apply at once to what comes next (the next publish, read, request or SRT
   * caller); live streams and their players are not touched, even those the new rules
   * would refuse. Listeners, media formats and protocol options take a restart and are
   * reported in `restartNeeded`.
   *
   * Rejects with a {@linkcode ConfigError} when the new config cannot run; the old one
   * stays in force.
   */
  reload(config: ServerConfig): Promise<ReloadResult>;
  /** Stop every listener, end every stream, wait for recordings to finish. */
  close(): Promise<void>;
}

/** What {@linkcode Server.reload} compares, as config keys: the old and new value of each. */
function reloadKeys(config: ResolvedConfig): Record<string, unknown> {
  return {
    "rtmp.listen": config.listen.rtmp,
    "rtsp.listen": config.listen.rtsp,
    "srt.listen": config.listen.srt,
    "http.listen": config.listen.http,
    "rtmps.listen": config.listen.rtmps,
    "rtsps.listen": config.listen.rtsps,
    "https.listen": config.listen.https,
    tls: config.tls,
    "rtsp.rtpPort": config.rtpPort,
    "hls.segmentType": config.segmentType,
    "hls.partDuration": config.partDuration,
    "webrtc.hosts": config.webrtcHosts,
    "webrtc.ports": config.webrtcPorts,
    transcodeAudio: config.transcodeAudio,
    playCoalesceMs: config.playCoalesceMs,
    "srt.passphrase": config.srtPassphrase,
    quiet: config.quiet,
    apps: config.apps,
    paths: config.paths,
    "record.dir": config.recordDir,
    access: config.access,
    ...Object.fromEntries(
      Object.entries(config.options).flatMap(([section, options]) =>
        Object.entries(options).map(([key, value]) => [`${section}.${key}`, value])
      ),
    ),
  };
}

/** The config keys {@linkcode Server.reload} applies at once; the others take a restart. */
const LIVE_KEYS = new Set(["quiet", "apps", "paths", "record.dir", "access", "srt.passphrase"]);

/**
 * Start the whole server from `config` (defaults: `cli.ts serve`'s, open to everyone).
 *
 * @throws {ConfigError} when the config cannot run; nothing was started.
 * @example Serve on free loopback ports
 * ```ts
 * import { serve } from "@arcly/stream/server";
 *
 * const server = serve({
 *   rtmp: { listen: "127.0.0.1:0" },
 *   http: { listen: "127.0.0.1:0" },
 *   rtsp: { listen: "off" },
 *   srt: { listen: "off" },
 * }, { logger: console });
 * await server.ready;
 * console.log(`rtmp://127.0.0.1:${server.addresses.rtmp!.port}/live/NAME`);
 * await server.close();
 * ```
 */
export function serve(config: ServerConfig = {}, options: ServeOptions = {}): Server {
  return new Composition(resolveConfig(config), options.logger ?? silentLogger);
}

class Composition implements Server {
  readonly ready: Promise<void>;
  readonly addresses: ServerAddresses = {};
  readonly registry: Registry;
  #config: ResolvedConfig;
  #logger: Logger;
  #metrics = new Metrics();
  #access: AccessPolicy;
  #hls?: LiveHls;
  #webrtc?: WebRtcServer;
  #transcode?: TranscodedViews;
  #rtmp?: RtmpServer;
  #rtsp?: RtspServer;
  #srt?: SrtServer;
  #http?: HttpServer;
  #stopReaper?: () => void;
  #recordings = new Set<Promise<void>>();
  #sources: Sources;
  #closing?: Promise<void>;

  constructor(config: ResolvedConfig, given: Logger) {
    this.#config = config;
    // One message stays one line whatever a peer put in a name (idempotent over cli.ts's).
    const logger = lineSafeLogger(given);
    this.#logger = {
      info: (message) => this.#config.quiet || logger.info(message),
      warn: (message) => logger.warn(message),
      error: (message) => logger.error(message),
    };
    this.#access = new AccessPolicy(config.access ?? OPEN_ACCESS, { logger: this.#logger });
    this.registry = new Registry({
      ...this.#registrySettings(),
      authorize: this.#access.authorize,
      describeConfig,
      observer: this.#metrics, // telemetry only; the lifecycle goes through registry events
    });
    this.#sources = new Sources(this.registry, { clientFor: pullClientFor, logger: this.#logger });
    this.registry.on("publish", (handle, info) => {
      this.#logger.info(`publish ${handle.key} via ${info.protocol} from ${info.peer}`);
      this.#hls?.start(handle);
      this.#maybeRecord(handle);
    });
    this.registry.on("unpublish", (handle, reason) => {
      this.#logger.info(`unpublish ${handle.key} (${reason})`);
    });
    this.ready = this.#start();
    this.ready.catch(() => {}); // a caller that never awaits it still gets close()
  }

  #registrySettings() {
    const { apps, paths } = this.#config;
    return {
      apps: Object.fromEntries(apps.map((app) => [app, {}])),
      // A reader of a stream that is not live may start its path's on-demand source.
      demand: (app: string, stream: string) => this.#sources.demand(app, stream),
      streamOptions: (app: string, stream: string) => {
        const gopCapacity = paths.match(`${app}/${stream}`).gopCache;
        return gopCapacity === undefined ? undefined : { gopCapacity };
      },
    };
  }

  #maybeRecord(handle: StreamHandle): void {
    const dir = this.#config.recordDir;
    if (dir === undefined || !this.#config.paths.match(handle.key).record) return;
    const recording = record(handle, dir, this.#config.segmentType, this.#logger);
    this.#recordings.add(recording);
    recording.finally(() => this.#recordings.delete(recording));
  }

  async #start(): Promise<void> {
    try {
      await this.#listen();
      this.#sources.apply(this.#config.paths);
    } catch (error) {
      await this.#shutdown();
      throw error;
    }
  }

  async #listen(): Promise<void> {
    const config = this.#config;
    const logger = this.#logger;
    const registry = this.registry;
    const { rtmp, rtsp, srt, http, rtmps, rtsps, https } = config.listen;
    /** The TLS listener at `listen`, with the certificate and key. */
    const tls = (listen: Listen | undefined) => listen && { ...listen, ...config.tls! };
    /** A plain listener, or none (`port: null`) when only its TLS one is on. */
    const plain = (listen: Listen | undefined) => listen ?? { port: null };
    const web = (http || https) && await import("../ingest/http/mod.ts");
    this.#stopReaper = registry.startReaper();
    if (config.transcodeAudio && (web || rtmp || rtmps)) {
      const { TranscodedViews } = await import("../media/transcode/mod.ts");
      this.#transcode = new TranscodedViews({ logger });
    }
    if (web) {
      this.#hls = new web.LiveHls({
        ...config.options.hls,
        transcode: this.#transcode,
        registry,
        onRequest: (kind) => this.#metrics.onHlsRequest(kind),
        segmentType: config.segmentType,
        partDuration: config.partDuration,
        logger,
      });
      const { WebRtcServer } = await import("../ingest/webrtc/mod.ts");
      this.#webrtc = new WebRtcServer({
        ...config.options.webrtc,
        transcode: this.#transcode,
        registry,
        logger,
        hosts: config.webrtcHosts,
        portRange: config.webrtcPorts as [number, number] | undefined,
      });
    }
    if (rtmp || rtmps) {
      const { serveRtmp } = await import("../ingest/rtmp/mod.ts");
      this.#rtmp = serveRtmp({
        ...config.options.rtmp,
        coalesceMs: config.playCoalesceMs,
        transcode: this.#transcode,
        registry,
        ...plain(rtmp),
        tls: tls(rtmps),
        logger,
      });
      this.#bound("rtmp", rtmp && this.#rtmp.addr);
      this.#bound("rtmps", this.#rtmp.tlsAddr);
    }
    if (rtsp || rtsps) {
      const { serveRtsp } = await import("../ingest/rtsp/mod.ts");
      this.#rtsp = serveRtsp({
        ...config.options.rtsp,
        registry,
        ...plain(rtsp),
        tls: tls(rtsps),
        rtpPort: config.rtpPort,
        logger,
        auth: rtspAuth(this.#access),
      });
      await this.#rtsp.ready; // the RTP/RTCP UDP ports are bound (or TCP-only was logged)
      this.addresses.rtspUdp = this.#rtsp.udp;
      this.#bound("rtsp", rtsp && this.#rtsp.addr);
      this.#bound("rtsps", this.#rtsp.tlsAddr);
    }
    if (srt) {
      const { serveSrt } = await import("../ingest/srt/mod.ts");
      this.#srt = await serveSrt({
        ...config.options.srt,
        // Read at every handshake, so that a reload applies to the next caller.
        passphrase: ({ key }) => {
          const own = this.#config.paths.match(key).srtPassphrase;
          return own === false ? undefined : own ?? this.#config.srtPassphrase;
        },
        registry,
        ...srt,
        logger,
      });
      this.#bound("srt", this.#srt.addr);
    }
    if (web) {
      this.#http = web.serveHttp({
        ...config.options.http,
        // Every request is put to the access policy first, open or not: a reload may
        // close what is open now.
        routes: [web.withAccessControl(registry, [
          web.streamsApi(registry),
          web.metricsRoute(this.#metrics, registry),
          web.httpFlv(registry, {
            ...config.options.httpFlv,
            coalesceMs: config.playCoalesceMs,
            transcode: this.#transcode,
          }),
          this.#hls!.route,
          this.#webrtc!.route,
        ])],
        ...plain(http),
        tls: tls(https),
        logger,
      });
      this.#bound("http", http && this.#http.addr);
      this.#bound("https", this.#http.tlsAddr);
    }
  }

  /** Note where `listener` is bound, and log it. */
  #bound(listener: keyof ServerAddresses & string, addr: Deno.NetAddr | undefined): void {
    if (!addr) return;
    (this.addresses as Record<string, Deno.NetAddr>)[listener] = addr;
    const udp = listener === "srt" ? "/udp" : "";
    this.#logger.info(`${listener} listening on ${addr.hostname}:${addr.port}${udp}`);
  }

  // deno-lint-ignore require-await -- a ConfigError rejects, as the interface says
  async reload(config: ServerConfig): Promise<ReloadResult> {
    const next = resolveConfig(config);
    const before = reloadKeys(this.#config), after = reloadKeys(next);
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) =>
      JSON.stringify(before[key]) !== JSON.stringify(after[key])
    );
    // Only what applies live is taken; the rest stays as the server runs it.
    const { quiet, apps, paths, recordDir, access, srtPassphrase } = next;
    this.#config = { ...this.#config, quiet, apps, paths, recordDir, access, srtPassphrase };
    this.#access.update(access ?? OPEN_ACCESS);
    const applied = changed.filter((key) => LIVE_KEYS.has(key));
    const restartNeeded = changed.filter((key) => !LIVE_KEYS.has(key));
    this.registry.configure(this.#registrySettings());
    this.#sources.apply(paths);
    return { applied, restartNeeded };
  }

  async close(): Promise<void> {
    await this.ready.catch(() => {}); // a failed start has shut down already
    await this.#shutdown();
  }

  #shutdown(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopReaper?.();
      await this.#sources.close();
      await Promise.all([this.#rtmp?.close(), this.#rtsp?.close(), this.#srt?.close()]);
      await this.#webrtc?.close();
      this.#transcode?.close();
      this.registry.closeAll();
      await Promise.all([this.#hls?.close(), ...this.#recordings]);
      await this.#http?.close();
    })();
    return this.#closing;
  }
}
