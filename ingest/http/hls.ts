/**
 * Live HLS for every published stream, packaged in memory and served at
 * `/APP/NAME/index.m3u8`.
 *
 * @module
 */

import {
  audioConfigOf,
  type TranscodedLease,
  type TranscodedViews,
} from "../../media/transcode/views.ts";
import { type Logger, type Registry, silentLogger, type StreamHandle } from "../../mod.ts";
import { HlsPackager, type HlsSegmentType } from "../../media/hls/mod.ts";
import { HlsCachePolicy, type HlsRequestKind, requestKind } from "./_hls_cache.ts";
import { StampedFiles } from "./_hls_files.ts";
import { parseStreamPath } from "./paths.ts";
import type { HttpRoute } from "./server.ts";

export type { HlsRequestKind } from "./_hls_cache.ts";

/** Options for {@linkcode LiveHls}. */
export interface LiveHlsOptions {
  /** The registry whose streams are packaged. */
  registry: Registry;
  /** `ts` (default) or `fmp4` segments. */
  segmentType?: HlsSegmentType;
  /** Segment duration to aim for, in seconds (default 2). */
  targetDuration?: number;
  /** Segments listed in the sliding window (default 6). */
  windowSize?: number;
  /** How long a stream's playlist stays served after its publisher left (default 60,000 ms). */
  retainMs?: number;
  /**
   * Low-Latency HLS (fMP4 segments only): the duration of partial segments in seconds,
   * below `targetDuration` (e.g. 0.5); off by default. A playlist request with `_HLS_msn`
   * (and `_HLS_part`) is then held until that segment (or part) is listed, for up to three
   * target durations (then 503), and a request for the part the playlist hints at
   * (`EXT-X-PRELOAD-HINT`) is held until it is written.
   */
  partDuration?: number;
  /**
   * Transcoded views for Opus streams (WHIP publishers) with TS segments, which players
   * such as hls.js cannot play with Opus: their audio is packaged as AAC, transcoded once
   * per stream. fMP4 segments keep the Opus. Without it TS segments carry the Opus as is.
   */
  transcode?: TranscodedViews;
  /**
   * The `Access-Control-Allow-Origin` of every answer (default `*`): the origin allowed to
   * read playlists and segments from a web page, e.g. `https://player.example`.
   */
  allowOrigin?: string;
  /**
   * Called for every `GET` or `HEAD` of an HLS file, answered or not, with its kind: the
   * origin load, e.g. for `Metrics.onHlsRequest`.
   */
  onRequest?: (kind: HlsRequestKind) => void;
  /**
   * Packaging errors and what the packagers skip (media before its CONFIG frame, unusable
   * configs, extra tracks: once per condition) go here (default: silent).
   */
  logger?: Logger;
}

const CONTENT_TYPES: Record<string, string> = {
  m3u8: "application/vnd.apple.mpegurl",
  ts: "video/mp2t",
  mp4: "video/mp4",
  m4s: "video/iso.segment",
};

/** How long packaging a transcoded view waits for its first AAC config, at most. */
const AUDIO_CONFIG_WAIT_MS = 3000;

/** The media playlist's name, as the packager writes it by default. */
const MEDIA_PLAYLIST = "stream.m3u8";

/** A part file's name ends with `<sequence>.<part>.m4s`. */
const PART_NAME = /(\d{1,15})\.(\d{1,6})\.m4s$/;

/** A delivery directive's value: a non-negative decimal integer. */
const DIRECTIVE = /^\d{1,15}$/;

/** One key's output: its files, and the packager of the current publish if any. */
interface Output {
  storage: StampedFiles;
  /** The stream being packaged, while it is live. */
  handle?: StreamHandle;
  /** Resolves once the playlist lists a segment (or packaging stopped without one). */
  listed: Promise<unknown>;
  packager?: HlsPackager;
  finished?: Promise<void>;
  expiry?: ReturnType<typeof setTimeout>;
}

/**
 * Packages every live stream of a registry into HLS held in memory, and serves it. Call
 * {@linkcode LiveHls.start} when a publish starts (from an observer's `onPublish`); the
 * playlist gets `EXT-X-ENDLIST` when the publisher leaves, and a publish of the same key
 * within `retainMs` continues the playlist after an `EXT-X-DISCONTINUITY`.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { LiveHls, serveHttp } from "@arcly/stream/http";
 *
 * let hls: LiveHls | undefined;
 * const registry = new Registry({ observer: { onPublish: (key) => hls?.start(key) } });
 * hls = new LiveHls({ registry, segmentType: "fmp4" });
 * const server = serveHttp({ routes: [hls.route], hostname: "127.0.0.1", port: 0 });
 * await server.close();
 * await hls.close();
 * ```
 */
export class LiveHls {
  #options: Required<
    Omit<LiveHlsOptions, "registry" | "partDuration" | "transcode" | "allowOrigin" | "onRequest">
  >;
  #transcode: TranscodedViews | undefined;
  #cache: HlsCachePolicy;
  #onRequest: ((kind: HlsRequestKind) => void) | undefined;
  #partDuration: number | undefined;
  #registry: Registry;
  #outputs = new Map<string, Output>();

  /**
   * Make a packager set; nothing runs until {@linkcode LiveHls.start}.
   *
   * @throws {RangeError} for a `partDuration` that is not below `targetDuration`, or
   * with MPEG-TS segments.
   */
  constructor(options: LiveHlsOptions) {
    this.#registry = options.registry;
    this.#options = {
      segmentType: options.segmentType ?? "ts",
      targetDuration: options.targetDuration ?? 2,
      windowSize: options.windowSize ?? 6,
      retainMs: options.retainMs ?? 60_000,
      logger: options.logger ?? silentLogger,
    };
    const part = options.partDuration;
    if (part !== undefined) {
      if (!(part > 0 && part < this.#options.targetDuration)) {
        throw new RangeError(
          `the part duration must be above 0 and below the target duration ` +
            `(${this.#options.targetDuration} s), got ${part}`,
        );
      }
      if (this.#options.segmentType !== "fmp4") {
        throw new RangeError("Low-Latency HLS (a part duration) needs fmp4 segments");
      }
    }
    this.#partDuration = part;
    this.#cache = new HlsCachePolicy(this.#options.targetDuration, options.allowOrigin ?? "*");
    this.#onRequest = options.onRequest;
    this.#transcode = this.#options.segmentType === "ts" ? options.transcode : undefined;
  }

  /** Start packaging the live stream `key` (`"app/stream"`), or `handle` itself. */
  start(key: string | StreamHandle): void {
    const handle = typeof key === "string" ? this.#registry.lookup(key) : key;
    if (!handle || handle.closed) return;
    const previous = this.#outputs.get(handle.key);
    if (previous?.expiry !== undefined) clearTimeout(previous.expiry);
    // A publish of the same key within `retainMs` goes on with the same playlist, once the
    // previous packager has finished it.
    // Its file names are the output's own (see StampedFiles): a publish after `retainMs`,
    // or after a restart, names its segments apart, so caches may keep them as immutable.
    const storage = previous?.storage ?? new StampedFiles();
    const listed = Promise.withResolvers<unknown>();
    const output: Output = { storage, handle, listed: listed.promise };
    this.#outputs.set(handle.key, output);
    let lease: TranscodedLease | undefined;
    output.finished = (previous?.finished ?? Promise.resolve())
      .then(async () => {
        lease = await this.#transcode?.acquireWhenNeeded(handle, "aac");
        if (lease) {
          this.#options.logger.info(`hls ${handle.key}: Opus audio packaged as AAC`);
          // the packager declares its tracks from the configs: let the AAC one come first
          await audioConfigOf(lease.handle, AUDIO_CONFIG_WAIT_MS);
        }
        output.packager = new HlsPackager({
          storage,
          segmentPrefix: storage.segmentPrefix,
          initPrefix: storage.initPrefix,
          segmentType: this.#options.segmentType,
          targetDuration: this.#options.targetDuration,
          windowSize: this.#options.windowSize,
          partDuration: this.#partDuration,
          playlistType: "live",
          continueFrom: previous?.packager,
          onSkip: (what) => this.#options.logger.warn(`hls ${handle.key}: ${what}`),
        });
        const { mediaSequence, segments } = output.packager.playlist;
        output.packager.waitForSegment(mediaSequence + segments.length).then(listed.resolve);
        return (lease?.handle ?? handle).packageTo(output.packager, { background: true });
      })
      .catch((error) => {
        this.#options.logger.warn(
          `hls ${handle.key}: packaging stopped: ${error instanceof Error ? error.message : error}`,
        );
      })
      .finally(() => {
        listed.resolve(undefined);
        output.handle = undefined;
        lease?.release();
        if (this.#outputs.get(handle.key) !== output) return;
        output.expiry = setTimeout(() => {
          if (this.#outputs.get(handle.key) === output) this.#outputs.delete(handle.key);
        }, this.#options.retainMs);
        Deno.unrefTimer(output.expiry);
      });
  }

  /**
   * Serves `GET /APP/NAME/<file>` from the packaged output (404 for anything else), with
   * the headers HTTP caches need: `Cache-Control` per kind of file, a strong `ETag` and
   * `Last-Modified` (answering `If-None-Match` and `If-Modified-Since` with 304), CORS
   * headers and `OPTIONS` preflights.
   */
  readonly route: HttpRoute = (request, url) => {
    const path = parseStreamPath(url.pathname);
    if (!path || path.rest === "" || path.rest.includes("/")) return undefined;
    const extension = path.rest.slice(path.rest.lastIndexOf(".") + 1);
    const type = CONTENT_TYPES[extension];
    if (!type) return undefined;
    if (request.method === "OPTIONS") return this.#cache.preflight();
    if (request.method !== "GET" && request.method !== "HEAD") {
      return this.#cache.refusal(405, "method not allowed", { allow: "GET, HEAD, OPTIONS" });
    }
    const kind = requestKind(path.rest, extension);
    this.#onRequest?.(kind);
    const key = `${path.app}/${path.stream}`;
    const serve = () => {
      const output = this.#outputs.get(key);
      const file = (updated = false) => {
        const data = output?.storage.read(path.rest);
        if (!data) {
          return this.#cache.notFound(
            `no such ${output ? "file" : "stream"}: ${output ? path.rest : key}`,
          );
        }
        const stamp = output!.storage.stamp(path.rest);
        return this.#cache.file(request, kind, type, data, stamp, updated ? "update" : "current");
      };
      const packager = output?.packager;
      if (this.#partDuration === undefined || !packager || !output.storage.read(MEDIA_PLAYLIST)) {
        return file();
      }
      const held = this.#hold(path.rest, url.searchParams, packager, request.signal);
      return held
        ? held.then((outcome) => typeof outcome === "boolean" ? file(outcome) : outcome)
        : file();
    };
    const output = this.#outputs.get(key);
    output?.handle?.noteRead(); // a player polling the playlist keeps an on-demand source up
    if (extension === "m3u8" && !output?.storage.read(MEDIA_PLAYLIST)) {
      return this.#firstPlaylist(path.app, path.stream, request.signal).then(serve);
    }
    return serve();
  };

  /**
   * Wait for the first playlist of a stream with none yet: it was just published, or it is
   * not live and the registry's demand hook may start it (an on-demand source). Bounded:
   * the demand's wait, then three target durations for the first segment.
   */
  async #firstPlaylist(app: string, stream: string, clientGone: AbortSignal): Promise<void> {
    const handle = await this.#registry.acquire(app, stream, { signal: clientGone });
    const output = handle && this.#outputs.get(handle.key);
    if (!output) return;
    const limitMs = 3 * this.#options.targetDuration * 1000;
    const gone = AbortSignal.any([clientGone, AbortSignal.timeout(limitMs)]);
    const { promise, resolve } = Promise.withResolvers<unknown>();
    gone.addEventListener("abort", resolve, { once: true });
    await Promise.race([output.listed, promise]);
  }

  /**
   * Low-Latency HLS: what a request waits for before its file is served. A blocking
   * playlist reload waits for the segment or part its delivery directives name, a request
   * for the hinted part for that part. Resolves to a refusal (400, 503), or to whether
   * what it waited for is listed (false: the stream ended first) to serve the file as it
   * then is; `undefined` at once when there is nothing to wait for.
   */
  #hold(
    name: string,
    query: URLSearchParams,
    packager: HlsPackager,
    clientGone: AbortSignal,
  ): Promise<Response | boolean> | undefined {
    let sequence: number;
    let part: number;
    if (name === MEDIA_PLAYLIST) {
      const msn = query.get("_HLS_msn");
      const partParam = query.get("_HLS_part");
      if (msn === null) {
        if (partParam === null) return undefined;
        return Promise.resolve(this.#cache.refusal(400, "_HLS_part without _HLS_msn"));
      }
      if (!DIRECTIVE.test(msn) || (partParam !== null && !DIRECTIVE.test(partParam))) {
        return Promise.resolve(
          this.#cache.refusal(400, "_HLS_msn and _HLS_part take whole numbers"),
        );
      }
      const playlist = packager.playlist;
      const last = playlist.mediaSequence + playlist.segments.length - 1;
      sequence = Number(msn);
      if (sequence > last + 2) {
        return Promise.resolve(
          this.#cache.refusal(
            400,
            `_HLS_msn=${msn} is beyond the next two segments (the last is ${last})`,
          ),
        );
      }
      part = partParam === null ? Infinity : Number(partParam);
      // Parts of the segment being written may be asked for up to the advance part limit
      // (RFC 8216bis 6.2.5.2: 3 / PART-TARGET parts when that is under a second, else 3).
      const target = playlist.partTarget ?? 1;
      const limit = target < 1 ? Math.floor(3 / target) : 3;
      const listed = playlist.partial?.parts.length ?? 0;
      if (partParam !== null && sequence === last + 1 && part - (listed - 1) > limit) {
        return Promise.resolve(
          this.#cache.refusal(
            400,
            `_HLS_part=${part} is more than ${limit} parts past the last listed`,
          ),
        );
      }
    } else {
      const hinted = name === packager.playlist.partial?.preloadHint && PART_NAME.exec(name);
      if (!hinted) return undefined;
      sequence = Number(hinted[1]);
      part = Number(hinted[2]);
    }
    const limitMs = 3 * this.#options.targetDuration * 1000;
    const signal = AbortSignal.any([clientGone, AbortSignal.timeout(limitMs)]);
    return packager.waitForPart(sequence, part, signal).then(
      (listed) => listed, // listed, or the stream ended: the file as it is now
      () => this.#cache.refusal(503, `${name}: not available within ${limitMs} ms`),
    );
  }

  /** Wait for every packager to finish (streams must be closed first, e.g. by the registry). */
  async close(): Promise<void> {
    const outputs = [...this.#outputs.values()];
    await Promise.all(outputs.map((o) => o.finished));
    for (const output of outputs) clearTimeout(output.expiry);
    this.#outputs.clear();
  }
}
