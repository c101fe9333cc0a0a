/**
 * The arcly-stream command line.
 *
 * ```sh
 * deno run -A cli.ts serve              # the live server on embedded defaults
 * deno run -A cli.ts --help
 * ```
 *
 * This is the only module that reads flags, the environment and config files; the server
 * itself is composed by `serve()` of `server/`, the packaging by `packageFile()`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Logger } from "./mod.ts";
import { lineSafeLogger } from "./bus/log.ts";
import type { Server, ServerConfig } from "./server/mod.ts";
// Small and free of the kernel and the protocols, like everything `package` loads.
import { type ConfigLayer, layerConfigs } from "./server/layers.ts";

// Each command loads only what it uses (`package` never loads the server, for one), so the
// modules are imported where they are needed.
const USAGE = `arcly-stream: a live-media streaming server

Usage:
  deno run -A cli.ts serve [options]                 run the server
  deno run -A cli.ts package [INPUT | -] --out DIR   package FLV or MPEG-TS into HLS
  deno run -A cli.ts --help                          show this help

serve options (listeners take PORT, HOST:PORT or off):
  --config FILE     YAML config file (default: ./arcly.yml when there is one; see
                    arcly.example.yml and server/config.schema.json). Edits apply on save
                    or SIGHUP where they can (access, paths, apps, record, quiet)
  --rtmp LISTEN     RTMP publish and play          (default 1935)     rtmp.listen
  --rtsp LISTEN     RTSP publish and read, TCP     (default 8554)     rtsp.listen
  --rtsp-rtp-port N UDP port for RTP over UDP; RTCP uses N+1 (default 8000)  rtsp.rtpPort
  --srt LISTEN      SRT publish and read, UDP      (default 8890)     srt.listen
  --srt-passphrase TEXT  SRT callers must encrypt with this passphrase (10-79 characters)
                                                                      srt.passphrase
  --srt-pbkeylen 16|24|32  the SRT key length callers must use (default: theirs)  srt.pbkeylen
  --http LISTEN     HTTP: HLS, HTTP-FLV, /v1/streams, /metrics  (default 8888)  http.listen
  --hls-segment-type ts|fmp4   live HLS segment format (default ts)   hls.segmentType
  --hls-part-duration SECONDS  Low-Latency HLS with parts this long, e.g. 0.5
                               (fmp4 segments only; default off)      hls.partDuration
  --record DIR                 record every publish to DIR/APP/NAME/<UTC start>/ as
                               HLS (--hls-segment-type segments; default off)  record.dir
  --webrtc-host ADDR           address announced to WHIP/WHEP peers (repeatable;
                               default: this machine's IPv4 addresses)  webrtc.hosts
  --webrtc-ports MIN-MAX       UDP ports for WebRTC media (default: any free port)
                                                                      webrtc.ports
  --rtmps LISTEN    RTMP over TLS                  (default off; 1936 is usual)  rtmps.listen
  --rtsps LISTEN    RTSP over TLS (interleaved TCP) (default off; 8322 is usual)  rtsps.listen
  --https LISTEN    HTTPS: what --http serves      (default off; e.g. 8443)  https.listen
  --tls-cert FILE   PEM certificate chain for the TLS listeners (reloaded on change)  tls.cert
  --tls-key FILE    PEM private key for the TLS listeners                  tls.key
  --play-coalesce-ms N         RTMP, HTTP-FLV and RTSP players, SRT readers: merge what
                               arrives within N ms into one write (fewer writes and
                               datagrams, N ms more latency; default 40)
                                                                      playCoalesceMs
  --cluster-redis URL          join a cluster: the Redis directory, redis://HOST:6379
                               (default: none, a single node)         cluster.redis
  --cluster-advertise URL      where the other nodes pull this node's streams,
                               srt://HOST:8890 or rtmp://HOST:1935    cluster.advertise
  --cluster-node ID            this node's id (default: host name and a random suffix)
                                                                      cluster.node
  --cluster-ttl-ms N           a claim's TTL; a dead node drops out within it (default 10000)
                                                                      cluster.ttlMs
  --workers N       cores that serve: RTMP and HTTP on each, every stream on every one
                    (default: all of this machine's)                  workers
  --quiet           log warnings and errors only                      quiet

  Each flag sets the config key at the end of its line; ARCLY_<FLAG> sets it too
  (ARCLY_RTSP_RTP_PORT=8000, ARCLY_WEBRTC_HOST=a,b; ARCLY_CONFIG=FILE). ARCLY_* variables
  override flags, which override the config file.

URLs: rtmp://HOST:1935/live/NAME, rtsp://HOST:8554/live/NAME,
      srt://HOST:8890?streamid=publish:live/NAME (or read:live/NAME), http://HOST:8888/live/NAME/index.m3u8,
      http://HOST:8888/live/NAME.flv, http://HOST:8888/live/NAME/whip and /whep,
      http://HOST:8888/live/NAME/ (player page), http://HOST:8888/live/NAME/publish,
      http://HOST:8888/v1/streams, http://HOST:8888/metrics

package options (INPUT is a file, or - or nothing for stdin):
  --out DIR                   where the playlists and segments go (required)
  --segment-type ts|fmp4      segment format (default ts)
  --target-duration SECONDS   segment duration to aim for (default 2)
  --playlist-type vod|event   playlist type (default vod)
`;

/** A mistake in the command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

/** Log lines on stderr; `quiet()` says, line by line, whether to drop info lines. */
function makeLogger(quiet: () => boolean): Logger {
  const line = (level: string, message: string) =>
    console.error(`${new Date().toISOString()} ${level} ${message}`);
  return lineSafeLogger({
    info: (message) => quiet() || line("INFO", message),
    warn: (message) => line("WARN", message),
    error: (message) => line("ERROR", message),
  });
}

/** A `serve` flag: the config key it sets and how its text becomes the key's value. */
interface ServeFlag {
  /** The config key, from the top (`["rtmp", "listen"]`). */
  readonly key: readonly string[];
  /** `string` keeps the text; `number` reads a number; `list` gathers every use. */
  readonly type: "string" | "number" | "boolean" | "list";
}

/** Every `serve` flag and its config key; `ARCLY_<FLAG>` (`ARCLY_RTSP_RTP_PORT`) sets it too. */
const SERVE_FLAGS: Record<string, ServeFlag> = {
  rtmp: { key: ["rtmp", "listen"], type: "string" },
  rtsp: { key: ["rtsp", "listen"], type: "string" },
  "rtsp-rtp-port": { key: ["rtsp", "rtpPort"], type: "number" },
  srt: { key: ["srt", "listen"], type: "string" },
  "srt-passphrase": { key: ["srt", "passphrase"], type: "string" },
  "srt-pbkeylen": { key: ["srt", "pbkeylen"], type: "number" },
  http: { key: ["http", "listen"], type: "string" },
  "hls-segment-type": { key: ["hls", "segmentType"], type: "string" },
  "hls-part-duration": { key: ["hls", "partDuration"], type: "number" },
  record: { key: ["record", "dir"], type: "string" },
  "webrtc-host": { key: ["webrtc", "hosts"], type: "list" },
  "webrtc-ports": { key: ["webrtc", "ports"], type: "string" },
  rtmps: { key: ["rtmps", "listen"], type: "string" },
  rtsps: { key: ["rtsps", "listen"], type: "string" },
  https: { key: ["https", "listen"], type: "string" },
  "tls-cert": { key: ["tls", "cert"], type: "string" },
  "tls-key": { key: ["tls", "key"], type: "string" },
  "play-coalesce-ms": { key: ["playCoalesceMs"], type: "number" },
  "cluster-redis": { key: ["cluster", "redis"], type: "string" },
  "cluster-advertise": { key: ["cluster", "advertise"], type: "string" },
  "cluster-node": { key: ["cluster", "node"], type: "string" },
  "cluster-ttl-ms": { key: ["cluster", "ttlMs"], type: "number" },
  workers: { key: ["workers"], type: "number" },
  quiet: { key: ["quiet"], type: "boolean" },
};

/** The config file `serve` reads when no `--config` (or `ARCLY_CONFIG`) names one. */
const DEFAULT_CONFIG_FILE = "arcly.yml";

/** The environment variable for a flag: `ARCLY_` and the flag in capitals, `-` as `_`. */
const envName = (flag: string) => `ARCLY_${flag.toUpperCase().replaceAll("-", "_")}`;

/**
 * A flag's (or variable's) text as its key's value. What does not read as the key's type
 * stays text, for the config check to name.
 */
function flagValue(flag: ServeFlag, value: string | boolean | string[], fromEnv: boolean): unknown {
  if (typeof value !== "string") return value;
  if (flag.type === "number") {
    return value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : value;
  }
  if (fromEnv && flag.type === "list") return value.split(",").map((part) => part.trim());
  if (fromEnv && flag.type === "boolean") {
    return /^(1|true|yes|on)$/i.test(value)
      ? true
      : /^(0|false|no|off|)$/i.test(value)
      ? false
      : value;
  }
  return value;
}

/** A config holding `value` at `key`. */
function atKey(key: readonly string[], value: unknown): Record<string, unknown> {
  return key.reduceRight<Record<string, unknown>>(
    (inner, part) => ({ [part]: inner }),
    value as never,
  );
}

/** The settings given as flags (or as `ARCLY_*` variables when `fromEnv`), as a layer. */
function flagLayer(
  values: Record<string, string | boolean | string[] | undefined>,
  fromEnv: boolean,
): ConfigLayer {
  const layers: ConfigLayer[] = [];
  for (const [name, flag] of Object.entries(SERVE_FLAGS)) {
    const value = values[fromEnv ? envName(name) : name];
    if (value === undefined) continue;
    const config = atKey(flag.key, flagValue(flag, value, fromEnv)) as ServerConfig;
    layers.push({ config, name: () => fromEnv ? envName(name) : `--${name}` });
  }
  return layerConfigs(layers);
}

/** Where `serve` takes its settings from, in the order they override each other. */
interface ServeSources {
  /** The config file to read, if any. */
  readonly file?: string;
  /** The `ARCLY_*` variables. */
  readonly env: Record<string, string>;
  /** The flags given. */
  readonly flags: Record<string, string | boolean | string[] | undefined>;
}

/**
 * Read the config file (when there is one) and lay the flags and the environment over it:
 * the environment wins over the flags, which win over the file.
 */
async function readSources(sources: ServeSources): Promise<ConfigLayer> {
  const { fileLayer, readConfigFile } = await import("./server/mod.ts");
  const file = sources.file === undefined ? [] : [fileLayer(await readConfigFile(sources.file))];
  return layerConfigs([...file, flagLayer(sources.flags, false), flagLayer(sources.env, true)]);
}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...Object.fromEntries(
        Object.entries(SERVE_FLAGS).map(([name, flag]) => [
          name,
          flag.type === "list"
            ? { type: "string" as const, multiple: true as const }
            : { type: flag.type === "boolean" ? "boolean" as const : "string" as const },
        ]),
      ),
      config: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return usage();
  const server = await import("./server/mod.ts");
  let quiet = false; // as the running config says
  const logger = makeLogger(() => quiet);
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([name]) => name.startsWith("ARCLY_")),
  );
  const known = new Set([...Object.keys(SERVE_FLAGS).map(envName), "ARCLY_CONFIG"]);
  for (const name of Object.keys(env)) {
    if (!known.has(name)) logger.warn(`${name}: not a setting, ignored (see --help)`);
  }
  const named = values.config ?? env.ARCLY_CONFIG;
  const file = named ?? (await exists(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const sources: ServeSources = { file, env, flags: values };
  const refuse = (lines: string[]) => {
    for (const line of lines) console.error(line);
    console.error(`serve: not started (${lines.length} problem${lines.length > 1 ? "s" : ""})`);
    return 2;
  };
  let layer: ConfigLayer | undefined;
  let running: Server;
  try {
    layer = await readSources(sources);
    running = server.serve(layer.config, { logger });
    quiet = layer.config.quiet === true;
  } catch (error) {
    if (error instanceof server.ConfigFileError) return refuse(error.message.split("\n"));
    if (!(error instanceof server.ConfigError)) throw error;
    return refuse(server.explainConfigError(error, layer!));
  }
  if (file === undefined) {
    logger.warn(
      `no config file (${DEFAULT_CONFIG_FILE} here, or --config FILE): ` +
        `running on the embedded defaults, open to everyone`,
    );
  } else if (layer.config.access === undefined) {
    logger.warn(`${file} has no access rules: open to everyone`);
  }

  // A reload reads everything again; one at a time, the last change wins.
  let reloading = Promise.resolve();
  const reload = (why: string) =>
    reloading = reloading.then(async () => {
      try {
        const next = layer = await readSources(sources);
        const { applied, restartNeeded } = await running.reload(next.config);
        quiet = next.config.quiet === true;
        logger.info(
          `config ${file ?? "(none)"} reloaded on ${why}: ` +
            (applied.length ? `applied ${applied.join(", ")}` : "no change to apply"),
        );
        if (restartNeeded.length) {
          logger.warn(`config: ${restartNeeded.join(", ")} changed; that takes a restart`);
        }
      } catch (error) {
        const lines = error instanceof server.ConfigError
          ? server.explainConfigError(error, layer!)
          : (error as Error).message.split("\n");
        logger.error(`config not reloaded, the running one stays: ${lines.join("; ")}`);
      }
    });
  const stopWatching = file === undefined
    ? () => {}
    : server.watchConfigFile(file, () => void reload("change"));

  const stop = Promise.withResolvers<string>();
  const handlers = {
    SIGINT: () => stop.resolve("SIGINT"),
    SIGTERM: () => stop.resolve("SIGTERM"),
    SIGHUP: () => void reload("SIGHUP"),
  };
  for (const [signal, handler] of Object.entries(handlers)) {
    Deno.addSignalListener(signal as Deno.Signal, handler);
  }
  try {
    await running.ready;
  } catch (error) {
    logger.error(`cannot start: ${error instanceof Error ? error.message : error}`);
    stopWatching();
    return 1;
  }
  logger.info(`stopping on ${await stop.promise}`);
  stopWatching();
  await reloading;
  await running.close();
  for (const [signal, handler] of Object.entries(handlers)) {
    Deno.removeSignalListener(signal as Deno.Signal, handler);
  }
  logger.info("stopped");
  return 0;
}

/** Whether `path` exists. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function packageCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: "string" },
      "segment-type": { type: "string", default: "ts" },
      "target-duration": { type: "string", default: "2" },
      "playlist-type": { type: "string", default: "vod" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return usage();
  if (!values.out) throw new UsageError("package: --out DIR is required");
  if (positionals.length > 1) throw new UsageError("package: give one input at most");
  const segmentType = values["segment-type"];
  if (segmentType !== "ts" && segmentType !== "fmp4") {
    throw new UsageError(`--segment-type takes ts or fmp4, not "${segmentType}"`);
  }
  const playlistType = values["playlist-type"];
  if (playlistType !== "vod" && playlistType !== "event") {
    throw new UsageError(`--playlist-type takes vod or event, not "${playlistType}"`);
  }
  const targetDuration = Number(values["target-duration"]);
  if (!(targetDuration > 0)) {
    throw new UsageError(`--target-duration takes a positive number of seconds`);
  }
  // Not ./server/mod.ts: that would load the server's modules too.
  const { PackageError, packageFile } = await import("./server/package.ts");
  const out = values.out;
  try {
    const result = await packageFile(positionals[0] ?? "-", {
      out,
      segmentType,
      targetDuration,
      playlistType,
    });
    if (result.endedEarly === undefined) return 0;
    console.error(
      `package: warning: input ended early (${result.endedEarly}); kept ${result.segments} ` +
        `complete segments and closed the playlist in ${out}`,
    );
  } catch (error) {
    if (!(error instanceof PackageError)) throw error;
    console.error(`package: ${error.message}`);
  }
  return 1;
}

/** Print the usage on stdout, as asked for: exit code 0. */
function usage(): number {
  console.log(USAGE);
  return 0;
}

/** Run the command line with `args`; resolves to the process exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        return usage();
      case "serve":
        return await serveCommand(rest);
      case "package":
        return await packageCommand(rest);
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    // parseArgs reports an unknown or malformed flag as a TypeError with an ERR_PARSE_ARGS code.
    if (!(error instanceof UsageError) && !(error instanceof TypeError && "code" in error)) {
      throw error;
    }
    console.error(`${error.message}\n\n${USAGE}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
