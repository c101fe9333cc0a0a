/**
 * The whole server composed from a config: RTMP, RTSP, SRT and HTTP listeners (live HLS,
 * HTTP-FLV, WHIP/WHEP, the player pages, `/v1/streams`, `/metrics`), recording, and the
 * lifecycle wiring between them.
 *
 * @module
 */

import {
  type DemandHook,
  lineSafeLogger,
  type Logger,
  Registry,
  silentLogger,
  type StreamHandle,
} from "../mod.ts";
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
import { PushRelays } from "./relays.ts";
import { Sources } from "./sources.ts";
import { pullClientFor } from "./pull_clients.ts";
import { AccessPolicy, OPEN_ACCESS, rtspAuth } from "./access/mod.ts";
import type { ClusterNode } from "./cluster/mod.ts";
import type { WorkerGroup } from "./_workers.ts";
import type { ForwardTarget } from "./_forward.ts";
import { MIRROR_PROTOCOL, withoutMirrors } from "./_mirror.ts";
import type { MetricsCounts } from "../ingest/http/metrics.ts";

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
    workers: config.workers,
    "srt.passphrase": config.srtPassphrase,
    quiet: config.quiet,
    apps: config.apps,
    paths: config.paths,
    "record.dir": config.recordDir,
    access: config.access,
    cluster: config.cluster,
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
  return new Composition(config, resolveConfig(config), options.logger ?? silentLogger);
}

/**
 * One worker's part of a multi-core server (`_worker.ts` runs it): RTMP and HTTP only, on
 * ports the primary bound with `reusePort`; HTTP requests other than HTTP-FLV go to the
 * primary through `forward`. Not part of the public API.
 */
export function serveAsWorker(
  config: ServerConfig,
  logger: Logger,
  forward: ForwardTarget | undefined,
): Server & { counts(): MetricsCounts } {
  return new Composition(config, resolveConfig(config), logger, { forward });
}

/** The config a worker runs: the primary's, with only its RTMP and HTTP listeners, to share. */
function workerConfig(
  config: ServerConfig,
  rtmp: Deno.NetAddr | undefined,
  http: Deno.NetAddr | undefined,
): ServerConfig {
  const off = { listen: false as const };
  const { tls: _tls, ...rest } = config;
  return {
    ...rest,
    workers: 1,
    rtmp: { ...config.rtmp, listen: rtmp ? { hostname: rtmp.hostname, port: rtmp.port } : false },
    http: { ...config.http, listen: http ? { hostname: http.hostname, port: http.port } : false },
    rtsp: { ...config.rtsp, listen: false },
    srt: { ...config.srt, listen: false },
    rtmps: off,
    rtsps: off,
    https: off,
    record: {},
  };
}

class Composition implements Server {
  readonly ready: Promise<void>;
  readonly addresses: ServerAddresses = {};
  readonly registry: Registry;
  /** The config as given, what the workers of a multi-core server start from. */
  #given: ServerConfig;
  #config: ResolvedConfig;
  /** Set when this is a worker of a multi-core server (not the primary). */
  #worker?: { readonly forward?: ForwardTarget };
  #workerGroup?: WorkerGroup;
  #forwarded?: HttpServer;
  #mirrors = new WeakSet<StreamHandle>();
  #logger: Logger;
  /** Counts every worker's viewers and publishes (the workers report theirs). */
  #metrics = new Metrics({
    elsewhere: () => this.#workerGroup?.metricsElsewhere() ?? [],
    subscribers: (handle) => this.#subscribers(handle),
  });
  #access: AccessPolicy;
  #hls?: LiveHls;
  #webrtc?: WebRtcServer;
  #transcode?: TranscodedViews;
  #rtmp?: RtmpServer;
  #rtsp?: RtspServer;
  #srt?: SrtServer;
  #http?: HttpServer;
  #cluster?: ClusterNode;
  /** The registry's demand hook: the paths' sources, and the cluster's edge copies once joined. */
  #demand: DemandHook = (app, stream) => this.#sources?.demand(app, stream) ?? false;
  #stopReaper?: () => void;
  #recordings = new Set<Promise<void>>();
  /** The paths' sources (the primary's alone: a worker asks it, see `_workers.ts`). */
  #sources?: Sources;
  /** The paths' push relays (the primary's alone: it has a mirror of every stream). */
  #relays?: PushRelays;
  #closing?: Promise<void>;

  constructor(
    givenConfig: ServerConfig,
    config: ResolvedConfig,
    given: Logger,
    worker?: { readonly forward?: ForwardTarget },
  ) {
    this.#given = givenConfig;
    this.#config = config;
    this.#worker = worker;
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
      // telemetry only (the lifecycle goes through registry events); a mirror is counted
      // where it is published
      observer: withoutMirrors(this.#metrics),
    });
    if (!worker) {
      this.#relays = new PushRelays({ logger: this.#logger });
      this.#sources = new Sources(this.registry, {
        clientFor: pullClientFor,
        logger: this.#logger,
      });
    }
    this.registry.on("publish", (handle, info) => {
      // A stream mirrored from another worker was logged there, where it is published.
      if (info.protocol === MIRROR_PROTOCOL) this.#mirrors.add(handle);
      else this.#logger.info(`publish ${handle.key} via ${info.protocol} from ${info.peer}`);
      this.#hls?.start(handle);
      this.#maybeRecord(handle);
      this.#relays?.start(handle, this.#config.paths.match(handle.key).push ?? []);
    });
    this.registry.on("unpublish", (handle, reason) => {
      if (!this.#mirrors.has(handle)) this.#logger.info(`unpublish ${handle.key} (${reason})`);
      this.#relays?.stop(handle);
    });
    this.ready = this.#start();
    this.ready.catch(() => {}); // a caller that never awaits it still gets close()
  }

  #registrySettings() {
    const { apps, paths } = this.#config;
    return {
      apps: Object.fromEntries(apps.map((app) => [app, {}])),
      // A reader of a stream that is not live may start its path's on-demand source or, in
      // a cluster, an edge copy of another node's stream (a worker's registry asks the
      // primary's instead, set by its WorkerLink).
      ...this.#worker ? {} : {
        demand: (app: string, stream: string) => this.#demand(app, stream),
      },
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
      this.#sources?.apply(this.#config.paths);
    } catch (error) {
      await this.#shutdown();
      throw error;
    }
  }

  async #listen(): Promise<void> {
    const config = this.#config;
    const logger = this.#logger;
    const registry = this.registry;
    if (this.#worker) return this.#listenAsWorker(this.#worker.forward);
    const workers = this.#workers();
    /** Whether RTMP and HTTP share their ports with the workers. */
    const reusePort = workers > 1;
    const { rtmp, rtsp, srt, http, rtmps, rtsps, https } = config.listen;
    /** The TLS listener at `listen`, with the certificate and key. */
    const tls = (listen: Listen | undefined) => listen && { ...listen, ...config.tls! };
    /** A plain listener, or none (`port: null`) when only its TLS one is on. */
    const plain = (listen: Listen | undefined) => listen ?? { port: null };
    const web = (http || https) && await import("../ingest/http/mod.ts");
    this.#stopReaper = registry.startReaper();
    if (config.cluster) await this.#joinCluster(config.cluster);
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
        ...this.#rtmpOptions(),
        ...plain(rtmp),
        reusePort,
        tls: tls(rtmps),
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
        coalesceMs: config.playCoalesceMs,
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
        coalesceMs: config.playCoalesceMs,
        ...srt,
        logger,
      });
      this.#bound("srt", this.#srt.addr);
    }
    if (web) {
      const routes = [
        web.streamsApi(registry, {
          subscribers: (handle) => this.#subscribers(handle),
          describe: (handle) => this.#describe(handle),
        }),
        web.metricsRoute(this.#metrics, registry),
        web.httpFlv(registry, this.#httpFlvOptions()),
        this.#hls!.route,
        this.#webrtc!.route,
      ];
      this.#http = web.serveHttp({
        ...config.options.http,
        // Every request is put to the access policy first, open or not: a reload may
        // close what is open now.
        routes: [web.withAccessControl(registry, routes)],
        ...plain(http),
        reusePort,
        tls: tls(https),
        logger,
      });
      this.#bound("http", http && this.#http.addr);
      this.#bound("https", this.#http.tlsAddr);
      if (reusePort && http) {
        // What the workers forward, access checked there with the client's address.
        const { forwardedRoute, newForwardSecret } = await import("./_forward.ts");
        const secret = newForwardSecret();
        this.#forwarded = web.serveHttp({
          ...config.options.http,
          routes: [forwardedRoute(secret, routes)],
          hostname: "127.0.0.1",
          port: 0,
          maxConnectionsPerIp: 0, // every worker comes from loopback
          logger,
        });
        this.#forward = { origin: `http://127.0.0.1:${this.#forwarded.addr.port}`, secret };
      }
    }
    if (reusePort && (this.addresses.rtmp || this.addresses.http)) {
      const { WorkerGroup } = await import("./_workers.ts");
      this.#workerGroup = await WorkerGroup.start(
        registry,
        logger,
        workers - 1,
        workerConfig(this.#given, this.addresses.rtmp, this.addresses.http),
        this.#forward,
      );
      logger.info(`${workers} workers: RTMP and HTTP on every one, the rest on worker 0`);
    }
  }

  #forward?: ForwardTarget;

  /** What `/v1/streams` adds to a stream's summary: its source's and relays' state. */
  #describe(handle: StreamHandle): Record<string, unknown> | undefined {
    const relays = this.#relays?.status(handle);
    const source = this.#sources?.status(handle.key);
    if (!relays && !source) return undefined;
    return { ...(source && { source }), ...(relays && { relays }) };
  }

  /** A stream's viewers on every worker. */
  #subscribers(handle: StreamHandle): number {
    return this.#workerGroup?.subscribers(handle) ?? handle.subscriberCount;
  }

  /** This worker's metrics counters (a worker reports them to the primary). */
  counts(): MetricsCounts {
    return this.#metrics.counts();
  }

  /** What every worker's RTMP server takes, whatever it listens on. */
  #rtmpOptions() {
    return {
      ...this.#config.options.rtmp,
      coalesceMs: this.#config.playCoalesceMs,
      transcode: this.#transcode,
      registry: this.registry,
      logger: this.#logger,
    };
  }

  /** What every worker's HTTP-FLV route takes. */
  #httpFlvOptions() {
    return {
      ...this.#config.options.httpFlv,
      coalesceMs: this.#config.playCoalesceMs,
      transcode: this.#transcode,
      logger: this.#logger,
    };
  }

  /**
   * How many workers to run: the config's, or 1 when the runtime cannot share a port
   * (Deno's `net` unstable flag is off) or nothing would be shared.
   */
  #workers(): number {
    const { workers, listen } = this.#config;
    if (workers <= 1 || !(listen.rtmp || listen.http)) return 1;
    if (this.#config.cluster) {
      // A publish is claimed in the cluster before it is accepted, by the primary's
      // registry; a worker's publishes would be accepted unclaimed.
      const say = this.#given.workers === undefined ? this.#logger.info : this.#logger.warn;
      say(`workers: a cluster node serves on one worker (claims are taken by the primary)`);
      return 1;
    }
    if (typeof (Deno as { listenDatagram?: unknown }).listenDatagram !== "function") {
      this.#logger.warn(
        `workers: ${workers} needs Deno's net unstable flag to share ports ` +
          `(deno.json "unstable": ["net"] or --unstable-net); running on one worker`,
      );
      return 1;
    }
    return workers;
  }

  /** A worker's listeners: plain RTMP and HTTP on the primary's ports, shared. */
  async #listenAsWorker(forward: ForwardTarget | undefined): Promise<void> {
    const config = this.#config;
    const logger = this.#logger;
    const registry = this.registry;
    const { rtmp, http } = config.listen;
    this.#stopReaper = registry.startReaper();
    if (config.transcodeAudio) {
      const { TranscodedViews } = await import("../media/transcode/mod.ts");
      this.#transcode = new TranscodedViews({ logger });
    }
    if (rtmp) {
      const { serveRtmp } = await import("../ingest/rtmp/mod.ts");
      this.#rtmp = serveRtmp({ ...this.#rtmpOptions(), ...rtmp, reusePort: true });
      this.addresses.rtmp = this.#rtmp.addr;
    }
    if (http) {
      const web = await import("../ingest/http/mod.ts");
      const { forwardRoute } = await import("./_forward.ts");
      const flv = web.httpFlv(registry, this.#httpFlvOptions());
      this.#http = web.serveHttp({
        ...config.options.http,
        routes: [web.withAccessControl(registry, forward ? [flv, forwardRoute(forward)] : [flv])],
        ...http,
        reusePort: true,
        logger,
      });
      this.addresses.http = this.#http.addr;
    }
  }

  /**
   * Claim every publish in the cluster's Redis directory before it is accepted (after the
   * access policy), before any listener is up. Redis may be down: the node starts all the
   * same (after a short wait for the connection) and says so.
   */
  async #joinCluster(cluster: NonNullable<ResolvedConfig["cluster"]>): Promise<void> {
    const { ClusterNode } = await import("./cluster/mod.ts");
    const node = cluster.node ?? `${Deno.hostname()}-${crypto.randomUUID().slice(0, 8)}`;
    this.#cluster = new ClusterNode(this.registry, { ...cluster, node, logger: this.#logger });
    this.registry.configure({ authorize: this.#cluster.authorize(this.#access.authorize) });
    if (this.#sources) this.#demand = this.#cluster.demand(this.#sources);
    await this.#cluster.directory.connected(2000);
    this.#logger.info(
      `cluster: node ${
        JSON.stringify(node)
      } joined; other nodes pull its streams from ${cluster.advertise}`,
    );
  }

  /** Note where `listener` is bound, and log it. */
  #bound(listener: keyof ServerAddresses & string, addr: Deno.NetAddr | undefined): void {
    if (!addr) return;
    (this.addresses as Record<string, Deno.NetAddr>)[listener] = addr;
    const udp = listener === "srt" ? "/udp" : "";
    this.#logger.info(`${listener} listening on ${addr.hostname}:${addr.port}${udp}`);
  }

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
    this.#given = config;
    this.#sources?.apply(paths);
    // Every worker has taken it before the reload resolves: what comes next, on any core,
    // meets the new rules.
    await this.#workerGroup?.reload(
      workerConfig(config, this.addresses.rtmp, this.addresses.http),
    );
    return { applied, restartNeeded };
  }

  async close(): Promise<void> {
    await this.ready.catch(() => {}); // a failed start has shut down already
    await this.#shutdown();
  }

  #shutdown(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopReaper?.();
      await this.#workerGroup?.close(); // the workers end their players and publishers first
      await this.#relays?.close();
      await this.#sources?.close();
      await Promise.all([this.#rtmp?.close(), this.#rtsp?.close(), this.#srt?.close()]);
      await this.#webrtc?.close();
      this.#transcode?.close();
      this.registry.closeAll();
      await Promise.all([this.#hls?.close(), ...this.#recordings, this.#cluster?.close()]);
      await Promise.all([this.#http?.close(), this.#forwarded?.close()]);
    })();
    return this.#closing;
  }
}
