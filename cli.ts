/**
 * The arcly-stream command line.
 *
 * ```sh
 * deno run -A cli.ts serve              # the live server on embedded defaults
 * deno run -A cli.ts --help
 * ```
 *
 * This is the only module that reads flags, the environment and config files, and the
 * one that wires protocols to the kernel and to packagers.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { Logger, MediaFrame, StreamHandle } from "./mod.ts";
import { lineSafeLogger } from "./bus/log.ts";
import type { HlsPackagerOptions, HlsSegmentType } from "./media/hls/mod.ts";
import type { HttpRoute, LiveHls, TlsListenOptions } from "./ingest/http/mod.ts";
import type { WebRtcServer } from "./ingest/webrtc/mod.ts";
import { readTlsPair } from "./ingest/tls.ts";

// Each command loads only what it uses (`package` never loads WebRTC, for one), so the
// protocol and media modules are imported where they are needed.
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
  --srt-passphrase TEXT  SRT callers must encrypt with this passphrase (10-79 characters)
  --srt-pbkeylen 16|24|32  the SRT key length callers must use (default: theirs)
  --http LISTEN     HTTP: HLS, HTTP-FLV, /v1/streams, /metrics  (default 8888)
  --hls-segment-type ts|fmp4   live HLS segment format (default ts)
  --hls-part-duration SECONDS  Low-Latency HLS with parts this long, e.g. 0.5
                               (fmp4 segments only; default off)
  --record DIR                 record every publish to DIR/APP/NAME/<UTC start>/ as
                               HLS (--hls-segment-type segments; default off)
  --webrtc-host ADDR           address announced to WHIP/WHEP peers (repeatable;
                               default: this machine's IPv4 addresses)
  --webrtc-ports MIN-MAX       UDP ports for WebRTC media (default: any free port)
  --rtmps LISTEN    RTMP over TLS                  (default off; 1936 is usual)
  --rtsps LISTEN    RTSP over TLS (interleaved TCP) (default off; 8322 is usual)
  --https LISTEN    HTTPS: what --http serves      (default off; e.g. 8443)
  --tls-cert FILE   PEM certificate chain for the TLS listeners (reloaded on change)
  --tls-key FILE    PEM private key for the TLS listeners
  --play-coalesce-ms N         RTMP and HTTP-FLV players: merge what arrives within N ms
                               into one write (fewer writes, N ms more latency; default 40)
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

/** Where a listener binds ({@linkcode parseListen} gives `undefined` for `off`). */
export interface Listen {
  /** The address to bind, e.g. `0.0.0.0` or `::1`. */
  hostname: string;
  /** The port; 0 picks a free one. */
  port: number;
}

/**
 * Read a listener flag: `PORT`, `HOST:PORT` (`[V6]:PORT` too) or `off`.
 *
 * @example
 * ```ts
 * import { parseListen } from "./cli.ts";
 *
 * parseListen("127.0.0.1:1935", "rtmp"); // { hostname: "127.0.0.1", port: 1935 }
 * parseListen("off", "rtmp"); // undefined
 * ```
 */
export function parseListen(value: string, flag: string): Listen | undefined {
  if (value === "off") return undefined;
  const match = /^(?:\[?([^\]]*?)\]?:)?(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) {
    throw new UsageError(`--${flag} takes PORT, HOST:PORT or off, not "${value}"`);
  }
  return { hostname: match[1] || "0.0.0.0", port };
}

// ---- TLS listeners (--rtmps, --rtsps, --https with --tls-cert and --tls-key) ----

/** A TLS listener flag with the certificate and key flags, or undefined for `off`. */
function tlsListen(
  values: { "tls-cert"?: string; "tls-key"?: string } & Record<string, unknown>,
  flag: "rtmps" | "rtsps" | "https",
): TlsListenOptions | undefined {
  const listen = parseListen(String(values[flag]), flag);
  if (!listen) return undefined;
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  if (!certFile || !keyFile) throw new UsageError(`--${flag} needs --tls-cert and --tls-key`);
  const options = { ...listen, certFile, keyFile };
  try {
    readTlsPair(options); // a missing file or a key of another certificate, said up front
  } catch (error) {
    throw new UsageError(`--${flag}: ${(error as Error).message}`);
  }
  return options;
}

function logTlsListener(logger: Logger, name: string, addr: Deno.NetAddr | undefined): void {
  if (addr) logger.info(`${name} listening on ${addr.hostname}:${addr.port}`);
}

/** A mistake in the command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

function makeLogger(quiet: boolean): Logger {
  const line = (level: string, message: string) =>
    console.error(`${new Date().toISOString()} ${level} ${message}`);
  return lineSafeLogger({
    info: quiet ? () => {} : (message) => line("INFO", message),
    warn: (message) => line("WARN", message),
    error: (message) => line("ERROR", message),
  });
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      rtmp: { type: "string", default: "1935" },
      http: { type: "string", default: "8888" },
      rtsp: { type: "string", default: "8554" },
      "rtsp-rtp-port": { type: "string", default: "8000" },
      srt: { type: "string", default: "8890" },
      "srt-passphrase": { type: "string" },
      "srt-pbkeylen": { type: "string" },
      quiet: { type: "boolean", default: false },
      "play-coalesce-ms": { type: "string", default: "40" },
      "hls-segment-type": { type: "string", default: "ts" },
      "hls-part-duration": { type: "string" },
      record: { type: "string" },
      "webrtc-host": { type: "string", multiple: true },
      "webrtc-ports": { type: "string" },
      rtmps: { type: "string", default: "off" },
      rtsps: { type: "string", default: "off" },
      https: { type: "string", default: "off" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return usage();
  const coalesceMs = Number(values["play-coalesce-ms"]);
  if (!(coalesceMs >= 0)) throw new UsageError("--play-coalesce-ms takes a number of ms >= 0");
  const segmentType = values["hls-segment-type"];
  if (segmentType !== "ts" && segmentType !== "fmp4") {
    throw new UsageError(`--hls-segment-type takes ts or fmp4, not "${segmentType}"`);
  }
  const part = values["hls-part-duration"];
  const partDuration = part === undefined ? undefined : Number(part);
  const rtmpListen = parseListen(values.rtmp, "rtmp");
  const httpListen = parseListen(values.http, "http");
  const rtspListen = parseListen(values.rtsp, "rtsp");
  const srtListen = parseListen(values.srt, "srt");
  const keyLength = values["srt-pbkeylen"];
  if (keyLength !== undefined && !["16", "24", "32"].includes(keyLength)) {
    throw new UsageError(`--srt-pbkeylen takes 16, 24 or 32, not "${keyLength}"`);
  }
  const passphrase = values["srt-passphrase"];
  if (passphrase !== undefined && (passphrase.length < 10 || passphrase.length > 79)) {
    throw new UsageError(`--srt-passphrase takes 10 to 79 characters`);
  }
  const srtSecurity = {
    passphrase,
    pbkeylen: keyLength === undefined ? undefined : Number(keyLength) as 16 | 24 | 32,
  };
  const tls = (flag: "rtmps" | "rtsps" | "https") => tlsListen(values, flag);
  const [rtmpsListen, rtspsListen, httpsListen] = [tls("rtmps"), tls("rtsps"), tls("https")];
  const rtpPort = Number(values["rtsp-rtp-port"]);
  if (!Number.isInteger(rtpPort) || rtpPort < 1 || rtpPort > 65534) {
    throw new UsageError(`--rtsp-rtp-port takes a UDP port from 1 to 65534`);
  }
  const logger = makeLogger(values.quiet);
  const { combineObservers, Registry } = await import("./mod.ts");
  const { describeConfig } = await import("./media/codec/mod.ts");
  const web = (httpListen || httpsListen) && await import("./ingest/http/mod.ts");
  const metrics = web && new web.Metrics();
  let hls: LiveHls | undefined;
  const recordTo = values.record;
  const recordings = new Set<Promise<void>>();
  const registry = new Registry({
    describeConfig,
    observer: combineObservers(...(metrics ? [metrics] : []), {
      onPublish: (key, info) => {
        logger.info(`publish ${key} via ${info.protocol} from ${info.peer}`);
        hls?.start(key);
        const handle = recordTo === undefined ? undefined : registry.lookup(key);
        if (handle) {
          const recording = record(handle, recordTo!, segmentType, logger);
          recordings.add(recording);
          recording.finally(() => recordings.delete(recording));
        }
      },
      onUnpublish: (key, reason) => logger.info(`unpublish ${key} (${reason})`),
    }),
  });
  let webrtc: WebRtcServer | undefined;
  if (web) {
    try {
      hls = new web.LiveHls({ registry, segmentType, partDuration, logger });
    } catch (error) {
      throw new UsageError(`--hls-part-duration: ${(error as Error).message}`);
    }
    const { parsePortRange, WebRtcServer } = await import("./ingest/webrtc/mod.ts");
    let portRange: [number, number] | undefined;
    try {
      portRange = values["webrtc-ports"] ? parsePortRange(values["webrtc-ports"]) : undefined;
    } catch (error) {
      throw new UsageError(`--webrtc-ports: ${(error as Error).message}`);
    }
    webrtc = new WebRtcServer({ registry, logger, hosts: values["webrtc-host"], portRange });
  }
  const stopReaper = registry.startReaper();

  const rtmp = (rtmpListen || rtmpsListen) &&
    (await import("./ingest/rtmp/mod.ts")).serveRtmp({
      registry,
      ...(rtmpListen ?? { port: null }),
      tls: rtmpsListen,
      logger,
      coalesceMs,
    });
  if (rtmp && rtmpListen) logger.info(`rtmp listening on ${rtmp.addr.hostname}:${rtmp.addr.port}`);
  logTlsListener(logger, "rtmps", rtmp?.tlsAddr);
  const rtsp = (rtspListen || rtspsListen) &&
    (await import("./ingest/rtsp/mod.ts")).serveRtsp({
      registry,
      ...(rtspListen ?? { port: null }),
      tls: rtspsListen,
      rtpPort,
      logger,
    });
  if (rtsp) await rtsp.ready; // the RTP/RTCP UDP ports are bound (or TCP-only was logged)
  if (rtsp && rtspListen) logger.info(`rtsp listening on ${rtsp.addr.hostname}:${rtsp.addr.port}`);
  logTlsListener(logger, "rtsps", rtsp?.tlsAddr);
  const srt = srtListen &&
    await (await import("./ingest/srt/mod.ts")).serveSrt({
      registry,
      ...srtListen,
      ...srtSecurity,
      logger,
    });
  if (srt) logger.info(`srt listening on ${srt.addr.hostname}:${srt.addr.port}/udp`);
  const routes: HttpRoute[] = web && metrics && hls && webrtc
    ? [
      web.streamsApi(registry),
      web.metricsRoute(metrics, registry),
      web.httpFlv(registry, { coalesceMs }),
      hls.route,
      webrtc.route,
    ]
    : [];
  const http = web &&
    web.serveHttp({ routes, ...(httpListen ?? { port: null }), tls: httpsListen, logger });
  if (http && httpListen) logger.info(`http listening on ${http.addr.hostname}:${http.addr.port}`);
  logTlsListener(logger, "https", http?.tlsAddr);

  const stop = Promise.withResolvers<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop.resolve(signal));
  }
  logger.info(`stopping on ${await stop.promise}`);
  stopReaper();
  await Promise.all([rtmp?.close(), rtsp?.close(), srt?.close()]);
  await webrtc?.close();
  registry.closeAll();
  await Promise.all([hls?.close(), ...recordings]);
  await http?.close();
  logger.info("stopped");
  return 0;
}

/**
 * Record a publish into a directory of its own, `ROOT/APP/NAME/<UTC start>/`, as HLS with an
 * EVENT playlist that gets `EXT-X-ENDLIST` when the publish ends. Resolves once the recording
 * is finished; failures are logged, never thrown.
 */
async function record(
  handle: StreamHandle,
  root: string,
  segmentType: HlsSegmentType,
  logger: Logger,
): Promise<void> {
  const { isSafeName } = await import("./ingest/http/paths.ts");
  if (!isSafeName(handle.app) || !isSafeName(handle.stream)) {
    logger.warn(`record ${handle.key}: not recorded, the name cannot be a directory name`);
    return;
  }
  try {
    const { DirectoryStorage, HlsPackager } = await import("./media/hls/mod.ts");
    const parent = `${root}/${handle.app}/${handle.stream}`;
    await Deno.mkdir(parent, { recursive: true });
    const stamp = new Date().toISOString().slice(0, 19).replaceAll(":", "-") + "Z";
    let dir = `${parent}/${stamp}`;
    // Claim a directory of our own: a publish within the same second gets a suffix.
    for (let n = 2;; n++) {
      try {
        await Deno.mkdir(dir);
        break;
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists) || n > 100) throw error;
        dir = `${parent}/${stamp}-${n}`;
      }
    }
    logger.info(`record ${handle.key} to ${dir}`);
    using _recording = handle.beginRecording();
    const packager = new HlsPackager({
      storage: new DirectoryStorage(dir),
      segmentType,
      playlistType: "event",
      onSkip: (what) => logger.warn(`record ${handle.key}: ${what}`),
    });
    await handle.packageTo(packager);
    const { segments, duration } = packager.stats;
    logger.info(`record ${handle.key}: ${segments} segments, ${duration.toFixed(1)} s in ${dir}`);
  } catch (error) {
    logger.error(`record ${handle.key}: ${error instanceof Error ? error.message : error}`);
  }
}

/** Which demuxer reads an input, judged from its first bytes. */
function sniffContainer(head: Uint8Array): "flv" | "ts" | undefined {
  if (head[0] === 0x46 && head[1] === 0x4c && head[2] === 0x56) return "flv";
  if (head[0] === 0x47 && (head.length <= 188 || head[188] === 0x47)) return "ts";
  return undefined;
}

/** Counts bytes and media time for the progress line. */
class Progress {
  bytes = 0;
  mediaSeconds = 0;
  #firstDts: number | undefined;
  #started = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(show: boolean) {
    if (show) this.#timer = setInterval(() => this.#print("\r"), 500);
  }

  frame(dts: number, bytes: number): void {
    if (this.#timer === undefined) return;
    this.bytes = bytes;
    this.#firstDts ??= dts;
    this.mediaSeconds = Math.max(this.mediaSeconds, (dts - this.#firstDts) / 90_000);
  }

  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#print("\r");
    console.error();
  }

  #print(prefix: string): void {
    const elapsed = (performance.now() - this.#started) / 1000;
    const speed = elapsed > 0 ? this.mediaSeconds / elapsed : 0;
    const text = `${prefix}media ${this.mediaSeconds.toFixed(1)} s, ${
      (this.bytes / 2 ** 20).toFixed(1)
    } MiB read, ${speed.toFixed(1)}x`;
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  }
}

async function packageFile(args: string[]): Promise<number> {
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
  // The packager's modules load while the input is opened and sniffed.
  const hls = import("./media/hls/mod.ts");
  hls.catch(() => {}); // awaited below
  const input = positionals[0] ?? "-";
  let file: Deno.FsFile | typeof Deno.stdin = Deno.stdin;
  // A regular file is opened and read synchronously: from the page cache that takes
  // microseconds, while an async call waits for a thread hop (most of the wall time of a 60 s
  // input when every read did).
  let regular = false;
  try {
    if (input !== "-") {
      const opened = Deno.openSync(input);
      file = opened;
      regular = opened.statSync().isFile;
    }
  } catch (error) {
    console.error(`package: cannot read ${input}: ${(error as Error).message}`);
    return 1;
  }
  try {
    return await packageInput(file, regular, input, values.out, hls, {
      segmentType,
      targetDuration,
      playlistType,
    });
  } finally {
    if (file !== Deno.stdin) file.close();
  }
}

/** Bytes read from the input at a time. */
const READ_CHUNK_SIZE = 256 * 1024;

/**
 * Reads `file` (synchronously when `regular`), demuxes it and packages it into `out`.
 * Frames are views into the read buffers; the packager reports each frame it is done with
 * (`onRelease`), and a buffer no frame views any more is read into again, so a long input
 * cycles a few buffers instead of touching fresh memory for every chunk.
 */
async function packageInput(
  file: Deno.FsFile | typeof Deno.stdin,
  regular: boolean,
  input: string,
  out: string,
  hls: Promise<typeof import("./media/hls/mod.ts")>,
  options: Pick<HlsPackagerOptions, "segmentType" | "targetDuration" | "playlistType">,
): Promise<number> {
  /** Read buffers free to be read into again. */
  const spare: Uint8Array[] = [];
  /** Per read buffer in use: the frames viewing it not yet released, plus one while it is decoded. */
  const viewers = new Map<ArrayBufferLike, { chunk: Uint8Array; count: number }>();
  const unview = (buffer: ArrayBufferLike) => {
    const use = viewers.get(buffer);
    if (use === undefined || --use.count > 0) return;
    viewers.delete(buffer);
    spare.push(use.chunk);
  };
  const fill = async (chunk: Uint8Array, from: number) =>
    (regular ? file.readSync(chunk.subarray(from)) : await file.read(chunk.subarray(from))) ?? 0;

  let chunk: Uint8Array = new Uint8Array(READ_CHUNK_SIZE);
  let length = 0;
  try {
    for (let n = 1; length < 189 && n > 0; length += n) n = await fill(chunk, length);
  } catch (error) {
    console.error(`package: cannot read ${input}: ${(error as Error).message}`);
    return 1;
  }
  const container = sniffContainer(chunk.subarray(0, length));
  if (!container) {
    console.error(`package: ${input === "-" ? "stdin" : input} is neither FLV nor MPEG-TS`);
    return 1;
  }
  const frames: MediaFrame[] = [];
  const emit = (frame: MediaFrame) => {
    const use = viewers.get(frame.data.buffer);
    if (use) use.count++;
    frames.push(frame);
  };
  const [demuxer, { DirectoryStorage, HlsPackager }] = await Promise.all([
    container === "flv"
      ? import("./media/flv/mod.ts").then(({ FlvDecoder }) => {
        const decoder = new FlvDecoder();
        return { decode: (c: Uint8Array) => decoder.decode(c, emit), end: () => decoder.flush() };
      })
      : import("./media/ts/mod.ts").then(({ TsDecoder }) => {
        const decoder = new TsDecoder();
        return {
          decode: (c: Uint8Array) => decoder.decode(c, emit),
          end: () => decoder.flush(emit),
        };
      }),
    hls,
  ]);
  const packager = new HlsPackager({
    // Nothing else runs meanwhile: synchronous writes save a thread hop per call.
    storage: new DirectoryStorage(out, { sync: true }),
    ...options,
    onRelease: (data) => unview(data.buffer),
  });
  const writer = packager.getWriter();
  const progress = new Progress(Deno.stderr.isTerminal());
  let read = 0;
  const writeFrames = async () => {
    for (const frame of frames) {
      progress.frame(frame.dts, read);
      await writer.write(frame);
    }
    frames.length = 0;
  };
  try {
    while (length > 0) {
      read += length;
      viewers.set(chunk.buffer, { chunk, count: 1 });
      demuxer.decode(chunk.subarray(0, length));
      unview(chunk.buffer); // decoded: only its frames view it now
      await writeFrames();
      chunk = spare.pop() ?? new Uint8Array(READ_CHUNK_SIZE);
      length = await fill(chunk, 0);
    }
    demuxer.end();
    await writeFrames();
    await writer.close();
  } catch (error) {
    await writer.abort(error).catch(() => {}); // finishes the output with the segments written
    progress.stop();
    const reason = error instanceof Error ? error.message : String(error);
    console.error(
      `package: warning: input ended early (${reason}); kept ${packager.stats.segments} ` +
        `complete segments and closed the playlist in ${out}`,
    );
    return 1;
  }
  progress.stop();
  return 0;
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
        return await serve(rest);
      case "package":
        return await packageFile(rest);
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
