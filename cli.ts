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
import type { ServerConfig } from "./server/mod.ts";

// Each command loads only what it uses (`package` never loads the server, for one), so the
// modules are imported where they are needed.
const USAGE = `arcly-stream: a live-media streaming server

Usage:
  deno run -A cli.ts serve [options]                 run the server
  deno run -A cli.ts package [INPUT | -] --out DIR   package FLV or MPEG-TS into HLS
  deno run -A cli.ts --help                          show this help

serve options (listeners take PORT, HOST:PORT or off):
  --rtmp LISTEN     RTMP publish and play          (default 1935)
  --rtsp LISTEN     RTSP publish and read, TCP     (default 8554)
  --rtsp-rtp-port N UDP port for RTP over UDP; RTCP uses N+1 (default 8000)
  --srt LISTEN      SRT publish and read, UDP      (default 8890)
  --http LISTEN     HTTP: HLS, HTTP-FLV, /v1/streams, /metrics  (default 8888)
  --hls-segment-type ts|fmp4   live HLS segment format (default ts)
  --hls-part-duration SECONDS  Low-Latency HLS with parts this long, e.g. 0.5
                               (fmp4 segments only; default off)
  --record DIR                 record every publish to DIR/APP/NAME/<UTC start>/ as
                               HLS (--hls-segment-type segments; default off)
  --webrtc-host ADDR           address announced to WHIP/WHEP peers (repeatable;
                               default: this machine's IPv4 addresses)
  --webrtc-ports MIN-MAX       UDP ports for WebRTC media (default: any free port)
  --quiet           log warnings and errors only

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

function makeLogger(): Logger {
  const line = (level: string, message: string) =>
    console.error(`${new Date().toISOString()} ${level} ${message}`);
  return {
    info: (message) => line("INFO", message),
    warn: (message) => line("WARN", message),
    error: (message) => line("ERROR", message),
  };
}

/** A `serve` flag: the config key it sets and how its text becomes the key's value. */
interface ServeFlag {
  /** The config key, from the top (`["rtmp", "listen"]`). */
  readonly key: readonly string[];
  /** `string` keeps the text; `number` reads a number; `list` gathers every use. */
  readonly type: "string" | "number" | "boolean" | "list";
}

/** Every `serve` flag and its config key. */
const SERVE_FLAGS: Record<string, ServeFlag> = {
  rtmp: { key: ["rtmp", "listen"], type: "string" },
  rtsp: { key: ["rtsp", "listen"], type: "string" },
  "rtsp-rtp-port": { key: ["rtsp", "rtpPort"], type: "number" },
  srt: { key: ["srt", "listen"], type: "string" },
  http: { key: ["http", "listen"], type: "string" },
  "hls-segment-type": { key: ["hls", "segmentType"], type: "string" },
  "hls-part-duration": { key: ["hls", "partDuration"], type: "number" },
  record: { key: ["record", "dir"], type: "string" },
  "webrtc-host": { key: ["webrtc", "hosts"], type: "list" },
  "webrtc-ports": { key: ["webrtc", "ports"], type: "string" },
  quiet: { key: ["quiet"], type: "boolean" },
};

/** A flag's text as its key's value; a number that is not one stays text for the check to name. */
function flagValue(flag: ServeFlag, value: string | boolean | string[]): unknown {
  if (flag.type !== "number" || typeof value !== "string") return value;
  return value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : value;
}

/** Set `value` at `key` in `config`, making the sections on the way. */
function setKey(config: Record<string, unknown>, key: readonly string[], value: unknown): void {
  let section = config;
  for (const part of key.slice(0, -1)) {
    section = (section[part] ??= {}) as Record<string, unknown>;
  }
  section[key.at(-1)!] = value;
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
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return usage();
  const config: Record<string, unknown> = {};
  /** Which flag set each key, to name the flag when its value is wrong. */
  const flagOf = new Map<string, string>();
  for (const [name, flag] of Object.entries(SERVE_FLAGS)) {
    const value = values[name as keyof typeof values];
    if (value === undefined) continue;
    setKey(config, flag.key, flagValue(flag, value));
    flagOf.set(flag.key.join("."), name);
  }
  const { ConfigError, formatProblem, serve } = await import("./server/mod.ts");
  const logger = makeLogger();
  let server;
  try {
    server = serve(config as ServerConfig, { logger });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new UsageError(
      error.problems.map((problem) => {
        const flag = flagOf.get(problem.path.join("."));
        return flag ? `--${flag}: ${problem.reason}` : formatProblem(problem);
      }).join("\n"),
    );
  }
  const stop = Promise.withResolvers<string>();
  const signals = ["SIGINT", "SIGTERM"] as const;
  const onSignal = signals.map((signal) => () => stop.resolve(signal));
  signals.forEach((signal, i) => Deno.addSignalListener(signal, onSignal[i]));
  try {
    await server.ready;
  } catch (error) {
    logger.error(`cannot start: ${error instanceof Error ? error.message : error}`);
    return 1;
  }
  logger.info(`stopping on ${await stop.promise}`);
  await server.close();
  signals.forEach((signal, i) => Deno.removeSignalListener(signal, onSignal[i]));
  logger.info("stopped");
  return 0;
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
