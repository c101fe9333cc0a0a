/**
 * HTTP-FLV playback: `GET /APP/NAME.flv` streams the live stream as FLV, starting from the
 * cached configs and GOP like an RTMP player.
 *
 * @module
 */

import { audioConfigOf, type TranscodedViews } from "../../media/transcode/views.ts";
import {
  EncodedFrames,
  type MediaFrame,
  type PlayOptions,
  type PlayResult,
  type PlaySink,
  type Registry,
  type StreamHandle,
} from "../../mod.ts";
import { flvHeader, flvTag, FlvTrackSelector } from "../../media/flv/mod.ts";
import { isSafeName, parseStreamPath } from "./paths.ts";
import { type HttpRoute, textResponse } from "./server.ts";

/** Options for {@linkcode httpFlv}. */
export interface HttpFlvOptions {
  /** A player that skips more than this many frames in all is disconnected (default 512). */
  maxLag?: number;
  /**
   * A player whose connection has taken nothing for this long while frames were due is
   * disconnected (default 10,000 ms; checked every 250 ms).
   */
  stallTimeoutMs?: number;
  /**
   * Hold a player's new frames this long (ms) so that what arrives meanwhile goes out in
   * one chunk; the join is never delayed. Default 0.
   */
  coalesceMs?: number;
  /**
   * Transcoded views for players of Opus streams (WHIP publishers): they get the audio as
   * AAC, transcoded once per stream. Without it they get the Opus as Enhanced FLV carries it.
   */
  transcode?: TranscodedViews;
}

/**
 * The HTTP-FLV route. The response ends when the publisher leaves; a player that cannot
 * keep up skips ahead and is disconnected past `maxLag`, one whose connection stops taking
 * bytes is disconnected after `stallTimeoutMs`. Each frame is made an FLV tag once per
 * stream and the same bytes go to every player; what is due at once goes out as one chunk.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 * import { httpFlv, serveHttp } from "@arcly/stream/http";
 *
 * const server = serveHttp({ routes: [httpFlv(new Registry())], hostname: "127.0.0.1", port: 0 });
 * await server.close();
 * ```
 */
export function httpFlv(registry: Registry, options: HttpFlvOptions = {}): HttpRoute {
  return (request, url) => {
    const path = parseStreamPath(url.pathname);
    if (!path || path.rest !== "" || !path.stream.endsWith(".flv")) return undefined;
    const stream = path.stream.slice(0, -".flv".length);
    if (!isSafeName(stream)) return undefined;
    if (request.method !== "GET") return textResponse(405, "method not allowed", { allow: "GET" });
    const live = registry.get(path.app, stream);
    if (live) return respond(live);
    return registry.acquire(path.app, stream, { signal: request.signal }).then((source) =>
      source ? respond(source) : textResponse(404, `no such stream: ${path.app}/${stream}`)
    );
  };
  /** The response playing `source`. */
  function respond(source: StreamHandle): Response | Promise<Response> {
    const play = {
      maxLag: options.maxLag ?? 512,
      stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
      coalesceMs: options.coalesceMs ?? 0,
    };
    const transcode = options.transcode;
    if (!transcode?.needed(source, "aac")) return flvResponse(flvBody(source, play));
    // An Opus stream plays from its AAC view, once that has its config (for the FLV header).
    const lease = transcode.acquire(source, "aac");
    return audioConfigOf(lease.handle, TRANSCODE_CONFIG_WAIT_MS).then(() =>
      flvResponse(flvBody(lease.handle, play, () => lease.release()))
    );
  }
}

/** How long a play waits for its transcoded view's first AAC config, at most. */
const TRANSCODE_CONFIG_WAIT_MS = 3000;

/** The response carrying one player's FLV body. */
function flvResponse(body: ReadableStream<Uint8Array>): Response {
  return new Response(body, {
    headers: {
      "content-type": "video/x-flv",
      "cache-control": "no-store",
      "access-control-allow-origin": "*",
    },
  });
}

/** The FLV bytes of one player: the header, then the stream's shared tags, batch by batch. */
function flvBody(
  handle: StreamHandle,
  options: PlayOptions,
  done?: () => void,
): ReadableStream<Uint8Array> {
  const { video, audio } = handle.cachedConfigs();
  const header = flvHeader(!!video || !audio, !!audio);
  const shared = handle.derive("flv", () => new EncodedFrames(flvTag));
  const tags = shared.value;
  const tracks = new FlvTrackSelector();
  const cancelled = new AbortController();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let started = false;
  let pulled: PromiseWithResolvers<void> | undefined;
  /** The tags of the batch being written (reused). */
  const due: Uint8Array[] = [];
  /** The tags of one batch: one shared tag as it is, several copied into one chunk. */
  const chunkOf = (frames: readonly MediaFrame[], count: number): Uint8Array | undefined => {
    let total = 0;
    for (let i = 0; i < count; i++) {
      if (!tracks.accepts(frames[i])) continue;
      const tag = tags.get(frames[i]);
      due.push(tag);
      total += tag.length;
    }
    if (due.length <= 1) return due.pop();
    const chunk = new Uint8Array(total);
    let o = 0;
    for (const tag of due) {
      chunk.set(tag, o);
      o += tag.length;
    }
    due.length = 0;
    return chunk;
  };
  const sink: PlaySink = {
    write: (frames, count) => {
      const first = !started;
      if (first) {
        started = true;
        controller.enqueue(header);
      }
      const chunk = chunkOf(frames, count);
      // Nothing enqueued (a batch of other tracks): no read will pull, so do not wait for one.
      if (chunk === undefined && !first) return;
      if (chunk) controller.enqueue(chunk);
      if ((controller.desiredSize ?? 0) > 0) return;
      pulled = Promise.withResolvers();
      return pulled.promise;
    },
  };
  const ended = (result: PlayResult) => {
    shared.release();
    done?.();
    pulled?.resolve();
    if (result.end === "aborted") return;
    try {
      if (result.end === "ended") {
        if (!started) controller.enqueue(header);
        controller.close();
      } else controller.error(new Error(`http-flv player ${result.end}`));
    } catch {
      // the response is already gone
    }
  };
  return new ReadableStream<Uint8Array>({
    start(started) {
      controller = started;
      void handle.play(sink, { ...options, signal: cancelled.signal }).then(ended);
    },
    pull() {
      const waiting = pulled;
      pulled = undefined;
      waiting?.resolve();
    },
    cancel() {
      cancelled.abort();
    },
  }, { highWaterMark: 0 });
}
