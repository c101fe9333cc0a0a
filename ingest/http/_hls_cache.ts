/**
 * How live HLS responses may be cached by HTTP caches in front of the server (a CDN,
 * nginx `proxy_cache`, Varnish) and by browsers: `Cache-Control` per kind of file, strong
 * entity tags and `Last-Modified` with `304 Not Modified`, and CORS.
 *
 * - Playlists change in place: fresh for half a target duration at most (RFC 8216bis
 *   6.2.2 has a client reload them about every target duration), so a cache adds
 *   little staleness and makes one origin request per that time.
 * - A blocking reload (`_HLS_msn`, `_HLS_part`) that got what it waited for names one
 *   playlist update: Apple's Low-Latency HLS guidance has caches keep it for six target
 *   durations, each directive a cache key of its own, and collapse the many clients
 *   asking for the same update into one origin request. One answered because the stream
 *   ended is short-lived (a publisher coming back continues the numbering); refusals are
 *   not stored.
 * - Segments, parts and init segments never change under their name (names are unique
 *   per output, see `StampedFiles`): `immutable`, for a day.
 * - A missing file or stream is fresh for a second at most, so a stream that starts is
 *   seen soon while a cache still absorbs a crowd polling for it.
 *
 * @module
 */

import type { FileStamp } from "./_hls_files.ts";
import { textResponse } from "./server.ts";

/** The kinds of file a live HLS origin serves, as counted per request. */
export type HlsRequestKind = "playlist" | "segment" | "part" | "init";

/** How long segments, parts and init segments stay fresh, in seconds. */
const IMMUTABLE_MAX_AGE = 86_400;
/** A blocking reload that got its update stays fresh this many target durations. */
const BLOCKING_RELOAD_TARGETS = 6;
/** How long a CORS preflight answer may be reused, in seconds. */
const PREFLIGHT_MAX_AGE = 86_400;
/** A part file's name ends with `<sequence>.<part>.m4s`. */
const PART_TAIL = /\d\.\d{1,6}\.m4s$/;

/** The kind of the file `name` with extension `extension`. */
export function requestKind(name: string, extension: string): HlsRequestKind {
  if (extension === "m3u8") return "playlist";
  if (extension === "mp4") return "init";
  return extension === "m4s" && PART_TAIL.test(name) ? "part" : "segment";
}

/** Whether a playlist answers a blocking reload with what it waited for. */
export type PlaylistFreshness = "current" | "update";

/** The caching headers of one LiveHls: its target duration and allowed origin. */
export class HlsCachePolicy {
  readonly #cors: Record<string, string>;
  readonly #preflight: Record<string, string>;
  readonly #playlist: string;
  readonly #update: string;

  /** A policy for playlists of `targetDuration` seconds, readable from `allowOrigin`. */
  constructor(targetDuration: number, allowOrigin: string) {
    this.#cors = {
      "access-control-allow-origin": allowOrigin,
      // Age lets an LL-HLS client tell how old a cached playlist is (RFC 8216bis appendix C).
      "access-control-expose-headers": "Age, Date, ETag",
    };
    this.#preflight = {
      ...this.#cors,
      "access-control-allow-methods": "GET, HEAD, OPTIONS",
      "access-control-allow-headers": "Authorization, Range, If-None-Match, If-Modified-Since",
      "access-control-max-age": String(PREFLIGHT_MAX_AGE),
    };
    const half = Math.floor(targetDuration / 2);
    this.#playlist = half >= 1 ? `public, max-age=${half}` : "no-cache";
    this.#update = `public, max-age=${Math.ceil(BLOCKING_RELOAD_TARGETS * targetDuration)}`;
  }

  /** The answer to a CORS preflight (`OPTIONS`). */
  preflight(): Response {
    return new Response(null, {
      status: 204,
      headers: { ...this.#preflight, allow: "GET, HEAD, OPTIONS" },
    });
  }

  /** A refusal or failure no cache may keep (400, 405, 503). */
  refusal(status: number, message: string, headers: Record<string, string> = {}): Response {
    return textResponse(status, message, {
      ...this.#cors,
      ...headers,
      "cache-control": "no-store",
    });
  }

  /** A 404 for a file or stream not there (yet): short-lived. */
  notFound(message: string): Response {
    return textResponse(404, message, { ...this.#cors, "cache-control": this.#playlist });
  }

  /**
   * The file `data` of `kind` as the answer to `request`: `304 Not Modified` when the
   * request's validators match `stamp`, else `200` (no body for `HEAD`). `freshness`
   * tells a playlist answering a blocking reload with its update from any other.
   */
  file(
    request: Request,
    kind: HlsRequestKind,
    type: string,
    data: Uint8Array,
    stamp: FileStamp | undefined,
    freshness: PlaylistFreshness = "current",
  ): Response {
    const headers: Record<string, string> = {
      ...this.#cors,
      "cache-control": kind !== "playlist"
        ? `public, max-age=${IMMUTABLE_MAX_AGE}, immutable`
        : freshness === "update"
        ? this.#update
        : this.#playlist,
    };
    if (stamp) {
      headers.etag = stamp.etag;
      headers["last-modified"] = stamp.lastModified;
      if (notModified(request.headers, stamp, kind !== "playlist")) {
        return new Response(null, { status: 304, headers });
      }
    }
    headers["content-type"] = type;
    headers["content-length"] = String(data.byteLength);
    const body = request.method === "HEAD" ? null : data as Uint8Array<ArrayBuffer>;
    return new Response(body, { headers });
  }
}

/**
 * Whether a GET or HEAD with these headers may be answered `304` (RFC 9110 13.1.2, 13.1.3,
 * 13.2.2): `If-None-Match` when present (weak comparison), else `If-Modified-Since`. Dates
 * have whole seconds: a file that never changes is unmodified when it was written in or
 * before the second given; a playlist only when written before it, as another version may
 * have been written within the second the client's copy dates from.
 */
function notModified(headers: Headers, stamp: FileStamp, immutable: boolean): boolean {
  const ifNoneMatch = headers.get("if-none-match");
  if (ifNoneMatch !== null) {
    return ifNoneMatch.split(",").some((tag) => {
      const trimmed = tag.trim();
      return trimmed === "*" || trimmed.replace(/^W\//, "") === stamp.etag;
    });
  }
  const ifModifiedSince = headers.get("if-modified-since");
  if (ifModifiedSince === null) return false;
  const since = Date.parse(ifModifiedSince);
  if (Number.isNaN(since)) return false;
  return immutable ? Math.floor(stamp.modifiedMs / 1000) * 1000 <= since : stamp.modifiedMs < since;
}
