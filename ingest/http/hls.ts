/**
 * Live HLS for every published stream, packaged in memory and served at
 * `/APP/NAME/index.m3u8`.
 *
 * @module
 */

import { type Logger, type Registry, silentLogger, type StreamHandle } from "../../mod.ts";
import { HlsPackager, type HlsSegmentType, MemoryStorage } from "../../media/hls/mod.ts";
import { parseStreamPath } from "./_paths.ts";
import { type HttpRoute, textResponse } from "./server.ts";

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
  /** Packaging errors go here (default: silent). */
  logger?: Logger;
}

const CONTENT_TYPES: Record<string, string> = {
  m3u8: "application/vnd.apple.mpegurl",
  ts: "video/mp2t",
  mp4: "video/mp4",
  m4s: "video/iso.segment",
};

/** One key's output: its files, and the packager of the current publish if any. */
interface Output {
  storage: MemoryStorage;
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
  #options: Required<Omit<LiveHlsOptions, "registry">>;
  #registry: Registry;
  #outputs = new Map<string, Output>();

  /** Make a packager set; nothing runs until {@linkcode LiveHls.start}. */
  constructor(options: LiveHlsOptions) {
    this.#registry = options.registry;
    this.#options = {
      segmentType: options.segmentType ?? "ts",
      targetDuration: options.targetDuration ?? 2,
      windowSize: options.windowSize ?? 6,
      retainMs: options.retainMs ?? 60_000,
      logger: options.logger ?? silentLogger,
    };
  }

  /** Start packaging the live stream `key` (`"app/stream"`), or `handle` itself. */
  start(key: string | StreamHandle): void {
    const handle = typeof key === "string" ? this.#lookup(key) : key;
    if (!handle || handle.closed) return;
    const previous = this.#outputs.get(handle.key);
    if (previous?.expiry !== undefined) clearTimeout(previous.expiry);
    // A publish of the same key within `retainMs` goes on with the same playlist, once the
    // previous packager has finished it.
    const storage = previous?.storage ?? new MemoryStorage();
    const output: Output = { storage };
    this.#outputs.set(handle.key, output);
    output.finished = (previous?.finished ?? Promise.resolve())
      .then(() => {
        output.packager = new HlsPackager({
          storage,
          segmentType: this.#options.segmentType,
          targetDuration: this.#options.targetDuration,
          windowSize: this.#options.windowSize,
          playlistType: "live",
          continueFrom: previous?.packager,
        });
        return handle.packageTo(output.packager);
      })
      .catch((error) => {
        this.#options.logger.warn(
          `hls ${handle.key}: packaging stopped: ${error instanceof Error ? error.message : error}`,
        );
      })
      .finally(() => {
        if (this.#outputs.get(handle.key) !== output) return;
        output.expiry = setTimeout(() => {
          if (this.#outputs.get(handle.key) === output) this.#outputs.delete(handle.key);
        }, this.#options.retainMs);
        Deno.unrefTimer(output.expiry);
      });
  }

  /** Serves `GET /APP/NAME/<file>` from the packaged output (404 for anything else). */
  readonly route: HttpRoute = (request, url) => {
    const path = parseStreamPath(url.pathname);
    if (!path || path.rest === "" || path.rest.includes("/")) return undefined;
    const extension = path.rest.slice(path.rest.lastIndexOf(".") + 1);
    const type = CONTENT_TYPES[extension];
    if (!type) return undefined;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return textResponse(405, "method not allowed", { allow: "GET, HEAD" });
    }
    const output = this.#outputs.get(`${path.app}/${path.stream}`);
    const data = output?.storage.read(path.rest);
    if (!data) {
      const what = output ? path.rest : `stream ${path.app}/${path.stream}`;
      return textResponse(404, `no such ${output ? "file" : "stream"}: ${what}`);
    }
    return new Response(request.method === "HEAD" ? null : data as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": type,
        "content-length": String(data.byteLength),
        "cache-control": extension === "m3u8" ? "no-cache" : "max-age=60",
        "access-control-allow-origin": "*",
      },
    });
  };

  /** Wait for every packager to finish (streams must be closed first, e.g. by the registry). */
  async close(): Promise<void> {
    const outputs = [...this.#outputs.values()];
    await Promise.all(outputs.map((o) => o.finished));
    for (const output of outputs) clearTimeout(output.expiry);
    this.#outputs.clear();
  }

  #lookup(key: string): StreamHandle | undefined {
    const slash = key.indexOf("/");
    return this.#registry.get(key.slice(0, slash), key.slice(slash + 1));
  }
}
