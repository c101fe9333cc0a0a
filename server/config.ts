/**
 * The server's configuration: what `serve()` takes, what a config file holds (the same
 * shape, as YAML), its defaults (today's `cli.ts serve` defaults) and its checking.
 *
 * @module
 */

import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import schema from "./config.schema.json" with { type: "json" };
import type { HlsSegmentType } from "../media/hls/mod.ts";
import type { HttpFlvOptions, HttpServerOptions, LiveHlsOptions } from "../ingest/http/mod.ts";
import type { RtmpServerOptions } from "../ingest/rtmp/mod.ts";
import type { RtspServerOptions } from "../ingest/rtsp/mod.ts";
import type { SrtServerOptions } from "../ingest/srt/mod.ts";
import type { WebRtcServerOptions } from "../ingest/webrtc/mod.ts";
import { parsePortRange } from "../ingest/webrtc/port_range.ts";
import { readTlsPair } from "../ingest/tls.ts";
import { type Listen, type ListenSetting, parseListen } from "./listen.ts";
import { PathRules } from "./paths.ts";
import { type AccessConfig, AccessConfigError, AccessPolicy } from "./access/mod.ts";
import accessSchema from "./access/access.schema.json" with { type: "json" };
import { ConfigError, type ConfigProblem } from "./error.ts";

/** A listener section: where it binds. */
export interface ListenerConfig {
  /** `PORT`, `HOST:PORT`, `[V6]:PORT`, or `off` / `false`. */
  listen?: ListenSetting;
}

/**
 * The options of each protocol's library that a config may set, by section: they go to
 * `serveRtmp()`, `serveRtsp()`, `serveSrt()`, `new WebRtcServer()` and `new LiveHls()` as
 * they are (see those for what each does and its default). A new option of a protocol is
 * one name here, one entry in `config.schema.json`.
 */
export const PROTOCOL_OPTIONS = {
  rtmp: [
    "handshakeTimeoutMs",
    "connectTimeoutMs",
    "commandTimeoutMs",
    "idleTimeoutMs",
    "maxBufferedBytes",
    "maxConnectionsPerIp",
    "chunkSize",
    "windowAckSize",
    "maxMessageLength",
    "maxLag",
  ],
  rtsp: [
    "udp",
    "sessionTimeoutMs",
    "describeTimeoutMs",
    "maxLag",
    "maxPacketSize",
    "maxConnectionsPerIp",
    "catchUpSpeed",
    "requestTimeoutMs",
    "startTimeoutMs",
    "mediaTimeoutMs",
    "stallTimeoutMs",
  ],
  srt: [
    "latencyMs",
    "peerIdleTimeoutMs",
    "maxConnections",
    "maxPackets",
    "maxLag",
    "pbkeylen",
    "catchUpSpeed",
    "keyRefreshPackets",
  ],
  http: ["requestTimeoutMs", "keepAliveTimeoutMs", "maxConnectionsPerIp"],
  httpFlv: ["maxLag", "stallTimeoutMs"],
  webrtc: [
    "maxOfferBytes",
    "connectTimeoutMs",
    "keyframeIntervalMs",
    "allowOrigin",
    "peerTimeoutMs",
    "maxLag",
    "stallTimeoutMs",
    "catchUpSpeed",
  ],
  hls: ["targetDuration", "windowSize", "retainMs", "allowOrigin"],
} as const satisfies {
  rtmp: readonly (keyof RtmpServerOptions)[];
  rtsp: readonly (keyof RtspServerOptions)[];
  srt: readonly (keyof SrtServerOptions)[];
  http: readonly (keyof HttpServerOptions)[];
  httpFlv: readonly (keyof HttpFlvOptions)[];
  webrtc: readonly (keyof WebRtcServerOptions)[];
  hls: readonly (keyof LiveHlsOptions)[];
};

/** RTMP: the listener and `serveRtmp()`'s options. */
export interface RtmpConfig
  extends ListenerConfig, Pick<RtmpServerOptions, typeof PROTOCOL_OPTIONS.rtmp[number]> {}

/** RTSP: the TCP listener, the UDP ports for RTP over UDP and `serveRtsp()`'s options. */
export interface RtspConfig
  extends ListenerConfig, Pick<RtspServerOptions, typeof PROTOCOL_OPTIONS.rtsp[number]> {
  /** UDP port for RTP over UDP; RTCP uses the next one (default 8000). */
  rtpPort?: number;
}

/** HTTP: the listener and `serveHttp()`'s options. */
export interface HttpConfig
  extends ListenerConfig, Pick<HttpServerOptions, typeof PROTOCOL_OPTIONS.http[number]> {}

/** HTTP-FLV players: `httpFlv()`'s options. */
export type HttpFlvConfig = Pick<HttpFlvOptions, typeof PROTOCOL_OPTIONS.httpFlv[number]>;

/** SRT: the listener, the passphrase and `serveSrt()`'s options. */
export interface SrtConfig
  extends ListenerConfig, Pick<SrtServerOptions, typeof PROTOCOL_OPTIONS.srt[number]> {
  /**
   * Callers must encrypt with this passphrase (10 to 79 characters; AES-CTR), unless their
   * stream's path sets `srtPassphrase` of its own (default: none, in clear).
   */
  passphrase?: string;
}

/** Live HLS served over HTTP: `LiveHls`'s options. */
export interface HlsConfig extends Pick<LiveHlsOptions, typeof PROTOCOL_OPTIONS.hls[number]> {
  /** Segment format (default `ts`). */
  segmentType?: HlsSegmentType;
  /** Low-Latency HLS with parts this many seconds long, e.g. 0.5 (fmp4 only; default off). */
  partDuration?: number;
}

/** WHIP/WHEP: `WebRtcServer`'s options. */
export interface WebRtcConfig
  extends Pick<WebRtcServerOptions, typeof PROTOCOL_OPTIONS.webrtc[number]> {
  /** Addresses announced to peers (default: this machine's IPv4 addresses). */
  hosts?: string[];
  /** UDP ports for media, `MIN-MAX` (default: any free port). */
  ports?: string;
}

/** The certificate and key of the TLS listeners (`rtmps`, `rtsps`, `https`). */
export interface TlsConfig {
  /** The certificate chain in PEM, leaf first; checked every 2 s, a renewal applies to new connections. */
  cert?: string;
  /** The private key in PEM (PKCS#8, RSA or EC). */
  key?: string;
  /** A client must finish the TLS handshake within this many ms (default 10,000). */
  handshakeTimeoutMs?: number;
}

/** Recording publishes to disk. */
export interface RecordConfig {
  /**
   * Record publishes to `DIR/APP/NAME/<UTC start>/` as HLS in the `hls.segmentType` format
   * (default: no recording). Paths may turn it off (or on) per stream with `record`.
   */
  dir?: string;
}

/** The origin/edge cluster this node is part of. */
export interface ClusterConfig {
  /** The Redis server holding the directory: `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, or `rediss://`. */
  redis: string;
  /**
   * Where the other nodes pull this node's streams from: `rtmp://HOST[:PORT]` or
   * `srt://HOST:PORT`, an address they reach (this node's RTMP or SRT listener).
   */
  advertise: string;
  /**
   * How long a claim lives unless refreshed (every third of it), in ms (default 10,000): a
   * node that dies stops appearing within this time, and its streams may be published
   * elsewhere after it.
   */
  ttlMs?: number;
  /** This node's id, unique in the cluster (default: the host name and a random suffix). */
  node?: string;
}

/**
 * Settings for the streams whose names match one entry of {@linkcode ServerConfig.paths}.
 * Later issues add more here (sources, relays): every path setting is optional, and a
 * stream matching no entry gets the defaults.
 */
export interface PathConfig {
  /** Record these streams (needs `record.dir`; default: whether `record.dir` is set). */
  record?: boolean;
  /** Frames of the current GOP kept for late joiners (default 1024; 0 turns instant start off). */
  gopCache?: number;
  /**
   * SRT callers of these streams must encrypt with this passphrase (10 to 79 characters)
   * instead of `srt.passphrase`; `false` serves them in clear.
   */
  srtPassphrase?: string | false;
  /**
   * Pull the stream from this URL instead of waiting for a publisher (exact paths only):
   * `rtsp(s)://` (credentials as `user:pass@`), `rtmp(s)://`, `srt://` (caller: `streamid`,
   * `passphrase`, `latency` in the query), `http(s)://…m3u8` (HLS) or `http(s)://…/whep`.
   * The source is the stream's publisher; it reconnects with back-off when the remote drops.
   */
  source?: string;
  /**
   * Start the source when the first reader comes (readers meanwhile wait, up to 10 s) and
   * stop it `sourceCloseAfterMs` after the last one left (default false: pulled from
   * start-up on).
   */
  sourceOnDemand?: boolean;
  /** On demand: how long the source runs with no reader, in ms (default 10,000). */
  sourceCloseAfterMs?: number;
  /**
   * How long the stream stays published while its source is lost, in ms (default 10,000,
   * at most 25,000): a source back within it continues the stream after a discontinuity.
   */
  sourceRetryWindowMs?: number;
  /** RTP transport of an `rtsp://` source (default `automatic`: UDP, then TCP). */
  rtspTransport?: "tcp" | "udp" | "automatic";
  /**
   * Push relays: each publish of these streams is forwarded to every URL here for as long
   * as it lives (restreaming): `rtmp://HOST/APP/KEY`, `rtmps://…` (TLS, the system's
   * roots) or `srt://HOST:PORT?streamid=publish:APP/NAME` (`passphrase`, `pbkeylen`,
   * `latency` in the query). Each target has its own connection, reconnects with a
   * back-off that doubles from 1 s to 30 s, and never slows the stream or the other
   * targets; its state shows in `/v1/streams` as `relays`. Default: none.
   */
  push?: string[];
}

/**
 * The whole server, as `serve()` takes it and a config file holds it. Every field is
 * optional; the defaults are those of `cli.ts serve` with no flags.
 *
 * @example
 * ```ts
 * import type { ServerConfig } from "@arcly/stream/server";
 *
 * const config: ServerConfig = {
 *   rtmp: { listen: 1935 },
 *   rtsp: { listen: "off" },
 *   hls: { segmentType: "fmp4", partDuration: 0.5 },
 *   paths: { "live/cam*": { record: true }, "~^live/test-": { gopCache: 0 } },
 *   record: { dir: "recordings" },
 * };
 * ```
 */
export interface ServerConfig {
  /** Log warnings and errors only (default false). */
  quiet?: boolean;
  /**
   * Audio transcoded where a player cannot take the stream's codec, once per stream while
   * anyone needs it (default true): WHEP players of an AAC stream get Opus; RTMP, HTTP-FLV
   * and TS-HLS players of an Opus stream (a WHIP publish) get AAC. False: such players get
   * the video only (TS segments carry the Opus as is).
   */
  transcodeAudio?: boolean;
  /**
   * RTMP, HTTP-FLV and RTSP players and SRT readers: what arrives within this many ms goes
   * out in one write or burst (fewer writes and datagrams, that much more latency; the join
   * is never delayed). Default 40.
   */
  playCoalesceMs?: number;
  /**
   * How many cores serve (default: all of this machine's, `navigator.hardwareConcurrency`).
   * Each worker runs RTMP and HTTP on the same ports (the kernel spreads connections over
   * them) and every stream is mirrored to every worker, so a player starts on the same
   * replay buffer whichever core takes it. RTSP, SRT, the TLS listeners, live HLS,
   * recording, WHIP/WHEP, the streams API and the metrics run on the first worker; the
   * others forward those HTTP requests to it. More than 1 needs Deno's `net` unstable flag
   * (`"unstable": ["net"]` in deno.json, or `--unstable-net`); without it the server runs
   * on one and says so.
   */
  workers?: number;
  /** RTMP publish and play (default port 1935). */
  rtmp?: RtmpConfig;
  /** RTSP publish and read, TCP (default port 8554) with RTP over UDP. */
  rtsp?: RtspConfig;
  /** SRT publish and read, UDP (default port 8890). */
  srt?: SrtConfig;
  /** HTTP: HLS, HTTP-FLV, WHIP/WHEP, `/v1/streams`, `/metrics` (default port 8888). */
  http?: HttpConfig;
  /** HTTP-FLV players. */
  httpFlv?: HttpFlvConfig;
  /** RTMP over TLS (default off; 1936 is usual). Needs `tls`. */
  rtmps?: ListenerConfig;
  /** RTSP over TLS, media interleaved (default off; 8322 is usual). Needs `tls`. */
  rtsps?: ListenerConfig;
  /** HTTPS: what `http` serves (default off; e.g. 8443). Needs `tls`. */
  https?: ListenerConfig;
  /** The certificate and key of the TLS listeners. */
  tls?: TlsConfig;
  /** Live HLS. */
  hls?: HlsConfig;
  /** WHIP/WHEP. */
  webrtc?: WebRtcConfig;
  /** Recording. */
  record?: RecordConfig;
  /** The apps streams may be published to (default `["live"]`). */
  apps?: string[];
  /**
   * Settings per stream name or pattern, matched against `APP/NAME`: an exact name
   * (`live/cam`), a glob (`live/*`: `*` matches within one name, `**` across `/`) or a
   * regular expression after `~` (`~^live/cam[0-9]+$`, unanchored unless anchored). An
   * exact name wins; otherwise the first pattern that matches, in the order written.
   */
  paths?: Record<string, PathConfig>;
  /**
   * An origin/edge cluster on Redis (default: none, a single node). Each publish is claimed in
   * Redis before it is accepted, so a key has one publisher across the cluster; a reader of a
   * stream this node does not have gets it pulled from the node that has it (one upstream per
   * stream per node, shared by its readers).
   */
  cluster?: ClusterConfig;
  /**
   * Who may publish, read, use the API and read the metrics: grants (users with hashed or
   * plain secrets, tokens, CIDR ranges, each with `{ action, path }` permissions whose paths
   * are patterns like those of `paths`), JWTs and an HTTP hook (see `@arcly/stream/access`).
   * A request is allowed when any grant, the JWT or the hook allows it. Default: open,
   * everyone may do everything.
   */
  access?: AccessConfig;
}

/** A config that {@linkcode resolveConfig} checked and filled in with the defaults. */
export interface ResolvedConfig {
  /** Log warnings and errors only. */
  readonly quiet: boolean;
  /** Where each listener binds; absent when off. */
  readonly listen: {
    readonly rtmp?: Listen;
    readonly rtsp?: Listen;
    readonly srt?: Listen;
    readonly http?: Listen;
    readonly rtmps?: Listen;
    readonly rtsps?: Listen;
    readonly https?: Listen;
  };
  /** The TLS listeners' certificate and key files, when a TLS listener is on. */
  readonly tls?: {
    readonly certFile: string;
    readonly keyFile: string;
    readonly handshakeTimeoutMs?: number;
  };
  /** UDP port for RTSP's RTP over UDP (RTCP: the next one). */
  readonly rtpPort: number;
  /** Live HLS segment format. */
  readonly segmentType: HlsSegmentType;
  /** Low-Latency HLS part duration in seconds, when on. */
  readonly partDuration?: number;
  /** WebRTC addresses announced to peers, when given. */
  readonly webrtcHosts?: readonly string[];
  /** WebRTC media UDP ports, when given. */
  readonly webrtcPorts?: readonly [number, number];
  /** How long RTMP and HTTP-FLV players' new frames are held to go out in one write, in ms. */
  readonly playCoalesceMs: number;
  /** How many workers (cores) serve. */
  readonly workers: number;
  /** Whether audio is transcoded for players that cannot take the stream's (AAC ↔ Opus). */
  readonly transcodeAudio: boolean;
  /** The SRT passphrase of streams no path gives one of their own, when set. */
  readonly srtPassphrase?: string;
  /** Where recordings go, when recording is on. */
  readonly recordDir?: string;
  /** Apps streams may be published to. */
  readonly apps: readonly string[];
  /** Per-stream settings. */
  readonly paths: PathRules;
  /** The access rules, when the config has any (none: open to everyone). */
  readonly access?: AccessConfig;
  /** The cluster, when on. */
  readonly cluster?: Readonly<ClusterConfig>;
  /** The protocols' own options given, by section (see {@linkcode PROTOCOL_OPTIONS}). */
  readonly options: ProtocolOptions;
}

/** The protocol options a config gave, by section: only those it set. */
export interface ProtocolOptions {
  /** For `serveRtmp()`. */
  readonly rtmp: Readonly<Pick<RtmpServerOptions, typeof PROTOCOL_OPTIONS.rtmp[number]>>;
  /** For `serveRtsp()`. */
  readonly rtsp: Readonly<Pick<RtspServerOptions, typeof PROTOCOL_OPTIONS.rtsp[number]>>;
  /** For `serveSrt()`. */
  readonly srt: Readonly<Pick<SrtServerOptions, typeof PROTOCOL_OPTIONS.srt[number]>>;
  /** For `serveHttp()`. */
  readonly http: Readonly<Pick<HttpServerOptions, typeof PROTOCOL_OPTIONS.http[number]>>;
  /** For `httpFlv()`. */
  readonly httpFlv: Readonly<HttpFlvConfig>;
  /** For `new WebRtcServer()`. */
  readonly webrtc: Readonly<Pick<WebRtcServerOptions, typeof PROTOCOL_OPTIONS.webrtc[number]>>;
  /** For `new LiveHls()`. */
  readonly hls: Readonly<Pick<LiveHlsOptions, typeof PROTOCOL_OPTIONS.hls[number]>>;
}

/** The settings that have defaults: all but the access rules and the cluster. */
export type DefaultedConfig = Required<Omit<ServerConfig, "access" | "cluster">>;

/** The defaults: `cli.ts serve` with no flags and no config file. */
export const DEFAULT_CONFIG: Readonly<DefaultedConfig> = Object.freeze({
  quiet: false,
  transcodeAudio: true,
  playCoalesceMs: 40,
  workers: navigator.hardwareConcurrency,
  httpFlv: {},
  rtmp: { listen: 1935 },
  rtsp: { listen: 8554, rtpPort: 8000 },
  srt: { listen: 8890 },
  http: { listen: 8888 },
  rtmps: { listen: false as const },
  rtsps: { listen: false as const },
  https: { listen: false as const },
  tls: {},
  hls: { segmentType: "ts" as HlsSegmentType },
  webrtc: {},
  record: {},
  apps: ["live"],
  paths: {},
});

/** LiveHls's default target duration, in seconds. */
const HLS_TARGET_DURATION = 2;

let validator: ValidateFunction | undefined;

/**
 * Check `config` against the schema (`config.schema.json`) and the rules no schema states,
 * and fill in the defaults.
 *
 * @throws {ConfigError} naming the settings that cannot run.
 * @example
 * ```ts
 * import { resolveConfig } from "@arcly/stream/server";
 *
 * const config = resolveConfig({ rtmp: { listen: "127.0.0.1:0" }, srt: { listen: "off" } });
 * config.listen.rtmp; // { hostname: "127.0.0.1", port: 0 }
 * config.listen.srt; // undefined
 * ```
 */
export function resolveConfig(config: ServerConfig): ResolvedConfig {
  const validate = validator ??= new Ajv({
    allErrors: true,
    strict: true,
    strictRequired: false,
    verbose: true,
  })
    // The access rules' own schema, under the name config.schema.json refers to it by.
    .addSchema({ ...accessSchema, $id: undefined }, "access/access.schema.json")
    .compile(schema);
  if (!validate(config)) {
    const [first, ...more] = schemaProblems(validate.errors ?? []);
    throw new ConfigError(first.path, first.reason, more);
  }
  const section = <K extends keyof typeof DEFAULT_CONFIG>(key: K) =>
    ({ ...DEFAULT_CONFIG[key] as object, ...config[key] as object }) as Required<ServerConfig>[K];
  const listen = (key: "rtmp" | "rtsp" | "srt" | "http" | "rtmps" | "rtsps" | "https") =>
    at([key, "listen"], () => parseListen(section(key).listen ?? false, "it"));
  const hls = section("hls");
  const partDuration = hls.partDuration;
  if (partDuration !== undefined) {
    const target = hls.targetDuration ?? HLS_TARGET_DURATION;
    if (!(partDuration < target)) {
      throw new ConfigError(
        ["hls", "partDuration"],
        `must be below the target duration, hls.targetDuration (${target} s)`,
      );
    }
    if (hls.segmentType !== "fmp4") {
      throw new ConfigError(["hls", "partDuration"], "Low-Latency HLS needs hls.segmentType fmp4");
    }
  }
  const secure = tlsListeners(config, listen);
  if (config.cluster) checkAdvertise(config.cluster.advertise);
  const recordDir = config.record?.dir;
  const apps = config.apps ?? DEFAULT_CONFIG.apps;
  const paths = new PathRules(config.paths ?? {}, recordDir !== undefined);
  for (const key of paths.sources().keys()) {
    const app = key.slice(0, key.indexOf("/"));
    if (!apps.includes(app)) {
      throw new ConfigError(["paths", key, "source"], `app ${app} is not one of apps`);
    }
  }
  const ports = config.webrtc?.ports;
  return {
    quiet: config.quiet ?? DEFAULT_CONFIG.quiet,
    listen: {
      rtmp: listen("rtmp"),
      rtsp: listen("rtsp"),
      srt: listen("srt"),
      http: listen("http"),
      rtmps: secure.rtmps,
      rtsps: secure.rtsps,
      https: secure.https,
    },
    tls: secure.tls,
    rtpPort: section("rtsp").rtpPort!,
    segmentType: hls.segmentType!,
    partDuration,
    webrtcHosts: config.webrtc?.hosts,
    transcodeAudio: config.transcodeAudio ?? DEFAULT_CONFIG.transcodeAudio,
    playCoalesceMs: config.playCoalesceMs ?? DEFAULT_CONFIG.playCoalesceMs,
    workers: config.workers ?? DEFAULT_CONFIG.workers,
    webrtcPorts: ports === undefined
      ? undefined
      : at(["webrtc", "ports"], () => parsePortRange(ports)),
    recordDir,
    srtPassphrase: config.srt?.passphrase,
    apps,
    paths,
    access: config.access && checkedAccess(config.access),
    cluster: config.cluster ?? undefined,
    options: Object.fromEntries(
      Object.entries(PROTOCOL_OPTIONS).map(([name, keys]) => {
        const given = (config[name as keyof typeof PROTOCOL_OPTIONS] ?? {}) as Record<
          string,
          unknown
        >;
        return [name, Object.fromEntries(keys.flatMap((k) => k in given ? [[k, given[k]]] : []))];
      }),
    ) as unknown as ProtocolOptions,
  };
}

/** Check that other nodes can pull from `advertise`: a URL with a host (and, for SRT, a port). */
function checkAdvertise(advertise: string): void {
  let url: URL | undefined;
  try {
    url = new URL(advertise);
  } catch {
    // said below
  }
  if (!url?.hostname) {
    throw new ConfigError(["cluster", "advertise"], `${JSON.stringify(advertise)} is not a URL`);
  }
  if (url.protocol === "srt:" && url.port === "") {
    throw new ConfigError(["cluster", "advertise"], "an srt:// URL needs its port");
  }
  if (url.hostname === "0.0.0.0" || url.hostname === "[::]") {
    throw new ConfigError(
      ["cluster", "advertise"],
      "must be an address the other nodes reach, not a wildcard",
    );
  }
}

/** `access` if an {@linkcode AccessPolicy} can be made of it. */
function checkedAccess(access: AccessConfig): AccessConfig {
  try {
    new AccessPolicy(access);
  } catch (error) {
    if (!(error instanceof AccessConfigError)) throw error;
    // `grants[1].ips[0]` is the setting access.grants.1.ips.0.
    const path = error.key.split(/\.|\[(\d+)\]/).filter(Boolean).map((part) =>
      /^\d+$/.test(part) ? Number(part) : part
    );
    const reason = error.message.slice(error.key.length + 2);
    throw new ConfigError(["access", ...path], reason);
  }
  return access;
}

/**
 * The TLS listeners that are on and the certificate and key they need, read and checked as a
 * pair: a missing file or a key of another certificate is said before anything starts.
 */
function tlsListeners(
  config: ServerConfig,
  listen: (key: "rtmps" | "rtsps" | "https") => Listen | undefined,
): Pick<ResolvedConfig["listen"], "rtmps" | "rtsps" | "https"> & Pick<ResolvedConfig, "tls"> {
  const on = { rtmps: listen("rtmps"), rtsps: listen("rtsps"), https: listen("https") };
  const first = Object.entries(on).find(([, value]) => value)?.[0];
  if (first === undefined) return on;
  const { cert, key, handshakeTimeoutMs } = config.tls ?? {};
  if (cert === undefined || key === undefined) {
    throw new ConfigError([first, "listen"], "a TLS listener needs tls.cert and tls.key");
  }
  try {
    readTlsPair({ port: 0, certFile: cert, keyFile: key });
  } catch (error) {
    const message = (error as Error).message;
    const which = /^TLS certificate file/.test(message)
      ? ["tls", "cert"]
      : /^TLS key file/.test(message)
      ? ["tls", "key"]
      : ["tls"];
    throw new ConfigError(which, message);
  }
  return { ...on, tls: { certFile: cert, keyFile: key, handshakeTimeoutMs } };
}

/** Run `read`, turning what it throws into a {@linkcode ConfigError} at `path`. */
function at<T>(path: (string | number)[], read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    // The readers say "it takes ...", "a UDP port range is ...": drop their own subject.
    const reason = (error as Error).message.replace(/^it /, "");
    throw new ConfigError(path, reason);
  }
}

/**
 * Ajv's errors as problems: one per setting, said in words (an `anyOf`'s branches are one
 * problem named after the setting's description).
 */
function schemaProblems(errors: ErrorObject[]): ConfigProblem[] {
  const anyOf = new Set(errors.filter((e) => e.keyword === "anyOf").map((e) => e.instancePath));
  return errors
    .filter((e) => e.keyword === "anyOf" || !anyOf.has(e.instancePath))
    .map((error) => {
      const path = error.instancePath.split("/").slice(1).map((part: string) =>
        part.replaceAll("~1", "/").replaceAll("~0", "~")
      );
      const value = `, not ${JSON.stringify(error.data)}`;
      switch (error.keyword) {
        case "additionalProperties":
          return { path: [...path, error.params.additionalProperty], reason: "unknown setting" };
        case "anyOf":
        case "pattern": {
          const said = String(error.parentSchema?.description ?? "a valid value").replace(
            /\.$/,
            "",
          );
          // "What is allowed: ..." reads on as "what is allowed: ...", "PORT, ..." as it is.
          const description = /^[A-Z][a-z]/.test(said)
            ? said[0].toLowerCase() + said.slice(1)
            : said;
          return { path, reason: `${JSON.stringify(error.data)} is not ${description}` };
        }
        case "enum": {
          const allowed = (error.params.allowedValues as unknown[]).join(", ");
          return { path, reason: `must be one of ${allowed}${value}` };
        }
        case "type":
          return { path, reason: `${error.message}${value}` };
        default:
          return { path, reason: error.message ?? "invalid" };
      }
    });
}
