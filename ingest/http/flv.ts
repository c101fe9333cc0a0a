/**
 * HTTP-FLV playback: `GET /APP/NAME.flv` streams the live stream as FLV, starting from the
 * cached configs and GOP like an RTMP player.
 *
 * @module
 */

import { audioConfigOf, type TranscodedViews } from "../../media/transcode/views.ts";
import {
  EncodedFrames,
  escapeForLog,
  type Logger,
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
import { type RawBody, type RawBodyTarget, withRawBody } from "./_raw_body.ts";
import { writeAll } from "./_write_response.ts";
import { joinBytes } from "./_bytes.ts";

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
  /** Where each play is logged, with the player's address, as RTMP does (default: nowhere). */
  logger?: Logger;
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
  return (request, url, info) => {
    const path = parseStreamPath(url.pathname);
    if (!path || path.rest !== "" || !path.stream.endsWith(".flv")) return undefined;
    const stream = path.stream.slice(0, -".flv".length);
    if (!isSafeName(stream)) return undefined;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return textResponse(405, "method not allowed", { allow: "GET, HEAD" });
    }
    const live = registry.get(path.app, stream);
    // A HEAD starts no on-demand source.
    if (request.method === "HEAD") {
      return live
        ? new Response(null, { headers: FLV_HEADERS })
        : textResponse(404, `no such stream: ${path.app}/${stream}`);
    }
    if (live) return respond(live, info.remoteAddr);
    return registry.acquire(path.app, stream, { signal: request.signal }).then((source) =>
      source
        ? respond(source, info.remoteAddr)
        : textResponse(404, `no such stream: ${path.app}/${stream}`)
    );
  };
  /** The response playing `source`. */
  function respond(source: StreamHandle, peer: Deno.NetAddr): Response | Promise<Response> {
    options.logger?.info(
      `http-flv ${peer.hostname}:${peer.port}: play ${escapeForLog(source.key)}`,
    );
    const play = {
      maxLag: options.maxLag ?? 512,
      stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
      coalesceMs: options.coalesceMs ?? 0,
    };
    const transcode = options.transcode;
    if (!transcode?.needed(source, "aac")) return flvResponse(source, play);
    // An Opus stream plays from its AAC view, once that has its config (for the FLV header).
    const lease = transcode.acquire(source, "aac");
    return audioConfigOf(lease.handle, TRANSCODE_CONFIG_WAIT_MS).then(() =>
      flvResponse(lease.handle, play, () => lease.release())
    );
  }
}

/** How long a play waits for its transcoded view's first AAC config, at most. */
const TRANSCODE_CONFIG_WAIT_MS = 3000;

/** The headers of every HTTP-FLV answer. */
const FLV_HEADERS = {
  "content-type": "video/x-flv",
  "cache-control": "no-store",
  "access-control-allow-origin": "*",
};

/**
 * The response of one player: an FLV body stream (what `Deno.serve` and HTTPS send) with a
 * raw form beside it that the connection guard writes straight to the socket. Whichever is
 * used starts the play; the other is never started.
 */
function flvResponse(handle: StreamHandle, options: PlayOptions, done?: () => void): Response {
  const play = new FlvPlay(handle, options, done);
  return withRawBody(new Response(play.stream(), { headers: FLV_HEADERS }), play);
}

const encoder = new TextEncoder();
const LAST_CHUNK = encoder.encode("0\r\n\r\n");

/** The FLV tag of `frame` as one HTTP/1.1 chunk. */
function chunkedTag(frame: MediaFrame): Uint8Array {
  return chunk(flvTag(frame));
}

/** `bytes` as one chunk of chunked transfer coding. */
function chunk(bytes: Uint8Array): Uint8Array {
  const size = encoder.encode(`${bytes.length.toString(16)}\r\n`);
  const out = new Uint8Array(size.length + bytes.length + 2);
  out.set(size);
  out.set(bytes, size.length);
  out.set([0x0d, 0x0a], size.length + bytes.length);
  return out;
}

/**
 * One player's FLV: the header, then the stream's shared tags batch by batch, either into a
 * body stream or ({@linkcode RawBody}) straight to a connection.
 */
class FlvPlay implements RawBody {
  readonly #handle: StreamHandle;
  readonly #options: PlayOptions;
  #done: (() => void) | undefined;
  readonly #tracks = new FlvTrackSelector();
  /** The frames of the batch being written that FLV carries (reused). */
  readonly #due: Uint8Array[] = [];

  constructor(handle: StreamHandle, options: PlayOptions, done?: () => void) {
    this.#handle = handle;
    this.#options = options;
    this.#done = done;
  }

  /** The play is over (or will never start): let go of what it held, once. */
  #finish(): void {
    const done = this.#done;
    this.#done = undefined;
    done?.();
  }

  /** The FLV header for the tracks the stream has now. */
  #header(): Uint8Array {
    const { video, audio } = this.#handle.cachedConfigs();
    return flvHeader(!!video || !audio, !!audio);
  }

  /**
   * The bytes of one batch in `tags`' form: the stream's shared bytes when the player takes
   * every frame of it, else its own join of the frames it takes; `undefined` for none.
   */
  #batch(tags: EncodedFrames, frames: readonly MediaFrame[], count: number) {
    let all = true;
    for (let i = 0; i < count && all; i++) all = this.#tracks.accepts(frames[i]);
    if (all) return tags.concat(frames, count);
    const due = this.#due;
    for (let i = 0; i < count; i++) {
      if (this.#tracks.accepts(frames[i])) due.push(tags.get(frames[i]));
    }
    const bytes = due.length === 0 ? undefined : joinBytes(due);
    due.length = 0;
    return bytes;
  }

  /**
   * Write the head and the FLV to `target.conn` (see {@linkcode RawBody.send}). A chain of
   * callbacks, not an async function: thousands of players wait here at once.
   */
  send({ conn, head, chunked, signal }: RawBodyTarget): Promise<boolean> {
    if (signal.aborted) {
      this.#finish();
      return Promise.resolve(false);
    }
    const shared = this.#handle.derive(
      chunked ? "flv/chunked" : "flv",
      () => new EncodedFrames(chunked ? chunkedTag : flvTag),
    );
    const tags = shared.value;
    const write = (bytes: Uint8Array): Promise<void> =>
      conn.write(bytes).then((n) =>
        n < bytes.length ? writeAll(conn, bytes.subarray(n)) : undefined
      );
    const sink: PlaySink = {
      write: (frames, count) => {
        const bytes = this.#batch(tags, frames, count);
        return bytes && write(bytes);
      },
    };
    const played = ({ end }: PlayResult): Promise<boolean> | boolean => {
      if (end !== "ended") return false;
      return chunked ? writeAll(conn, LAST_CHUNK).then(() => true) : true;
    };
    const done = (whole: boolean): boolean => {
      shared.release();
      this.#finish();
      return whole;
    };
    // The head goes out at once: a client waits for it before it reads the body.
    const header = chunked ? chunk(this.#header()) : this.#header();
    return writeAll(conn, joinBytes([head, header]))
      .then(() => this.#handle.play(sink, { ...this.#options, signal }))
      .then(played)
      .then(done, () => done(false));
  }

  /** The FLV as a body stream; the play starts when it is first read. */
  stream(): ReadableStream<Uint8Array> {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let playing = false;
    let pulled: PromiseWithResolvers<void> | undefined;
    const cancelled = new AbortController();
    const start = () => {
      playing = true;
      const shared = this.#handle.derive("flv", () => new EncodedFrames(flvTag));
      const tags = shared.value;
      let header: Uint8Array | undefined = this.#header();
      const sink: PlaySink = {
        write: (frames, count) => {
          const first = header !== undefined;
          if (header) controller.enqueue(header);
          header = undefined;
          const bytes = this.#batch(tags, frames, count);
          // Nothing enqueued (a batch of other tracks): no read will pull, so wait for none.
          if (bytes === undefined && !first) return;
          if (bytes) controller.enqueue(bytes);
          if ((controller.desiredSize ?? 0) > 0) return;
          pulled = Promise.withResolvers();
          return pulled.promise;
        },
      };
      const ended = (result: PlayResult) => {
        shared.release();
        this.#finish();
        pulled?.resolve();
        if (result.end === "aborted") return;
        try {
          if (result.end === "ended") {
            if (header) controller.enqueue(header);
            controller.close();
          } else controller.error(new Error(`http-flv player ${result.end}`));
        } catch {
          // the response is already gone
        }
      };
      void this.#handle.play(sink, { ...this.#options, signal: cancelled.signal }).then(ended);
    };
    return new ReadableStream<Uint8Array>({
      start(started) {
        controller = started;
      },
      pull() {
        if (!playing) return start();
        const waiting = pulled;
        pulled = undefined;
        waiting?.resolve();
      },
      cancel: () => {
        if (playing) cancelled.abort();
        else this.#finish();
      },
    }, { highWaterMark: 0 });
  }
}
