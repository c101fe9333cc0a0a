/**
 * The HLS pull client: another server's (or a CDN's) `…m3u8` read as a live source.
 *
 * @module
 */

import { setTimeout as sleep } from "node:timers/promises";
import { escapeForLog } from "../../mod.ts";
import type { PullOptions } from "../pull.ts";
import {
  type HlsAudioRendition,
  type HlsByteRange,
  type HlsListedSegment,
  type HlsListedVariant,
  type ParsedMediaPlaylist,
  type ParsedPlaylist,
  parsePlaylist,
} from "../../media/hls/mod.ts";
import { readBoundedBody } from "./body.ts";
import { HlsSegmentReader } from "./_hls_segment_reader.ts";

/** Options of {@linkcode pullHls}. */
export interface HlsPullOptions extends PullOptions {
  /** The largest playlist read, in bytes (default 1 MiB): a larger one fails the pull. */
  maxPlaylistBytes?: number;
  /**
   * The largest media or initialization segment read, in bytes (default 64 MiB): a larger
   * one is skipped (a discontinuity).
   */
  maxSegmentBytes?: number;
  /**
   * How many segments from the end of a live playlist the pull starts (default 3, as RFC
   * 8216 6.3.3 advises): the stream starts about that many target durations behind live.
   */
  liveEdgeSegments?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_PLAYLIST = 1024 * 1024;
const DEFAULT_MAX_SEGMENT = 64 * 1024 * 1024;
const DEFAULT_LIVE_EDGE = 3;
/** The range a target duration is taken in, in ms. */
const MIN_TARGET_MS = 500;
const MAX_TARGET_MS = 60_000;
/** A reload that sees no new segment waits half as long (RFC 8216bis 6.3.4). */
const UNCHANGED_RELOAD_FACTOR = 0.5;
/** Codec string prefixes (RFC 6381) of what the demuxers deliver. */
const READABLE_CODECS = /^(avc1|avc3|hvc1|hev1|mp4a\.40|mp4a\.6[678]|opus|Opus)(\.|$)/;
/** Statuses that mean the source refuses or is gone, not a passing failure. */
const REFUSALS = new Set([401, 403, 404, 410]);

/**
 * Pulls an HLS stream (a `PullClient` for `http(s)://…m3u8`). A multivariant
 * playlist leads to its highest-`BANDWIDTH` variant whose `CODECS` the demuxers read
 * (H.264/H.265, AAC/Opus; a variant without `CODECS` is taken as readable). When the
 * variant's audio is a rendition of its own (`EXT-X-MEDIA` with a `URI`; the group's default
 * one), both playlists are followed at once: video from the variant, audio from the
 * rendition (each delivered as its segments come, so the two tracks interleave by segment,
 * not by frame). A live media
 * playlist is started {@linkcode HlsPullOptions.liveEdgeSegments} from its end, then
 * reloaded about every target duration (half that after a reload without a new segment,
 * RFC 8216bis 6.3.4); a finished one (`EXT-X-ENDLIST`) is read from its start, delivered no
 * faster than real time plus that many segments. Each new segment is fetched once, in
 * order: MPEG-TS through `TsDecoder` (timestamps unwrapped across segments), fMP4 through
 * `Fmp4Demuxer` after its `EXT-X-MAP`. Frames follow the bus's contract: each track's
 * CONFIG before its media (and again only when it changes), DISCONTINUITY after
 * `EXT-X-DISCONTINUITY`, `EXT-X-GAP`, a segment that could not be read (logged) or segments
 * that left the playlist before their turn.
 *
 * Credentials in the URL (`http://user:pass@host/…`) are sent as HTTP Basic authorization
 * to that origin only, and never logged (nor is the query). Every request has the deadline
 * `timeoutMs` (default 10 s). The pull resolves after the
 * last segment of a playlist that ends, or when `signal` aborts; it rejects when the first
 * playlist cannot be read, a playlist answers 401/403/404/410, segments are encrypted
 * (`EXT-X-KEY`), or the playlist brings no new segment, or the segments no media, for
 * `timeoutMs` or three target durations, whichever is longer.
 *
 * @example Republish a remote HLS stream
 * ```ts ignore
 * import { Registry } from "@arcly/stream";
 * import { pullHls } from "@arcly/stream/http";
 *
 * const registry = new Registry();
 * const handle = registry.publish("live", "relay");
 * await pullHls(new URL("https://example.com/live/cam/index.m3u8"), {
 *   onFrame: (frame) => handle.publish(frame),
 *   signal: AbortSignal.timeout(60_000),
 * });
 * ```
 */
export async function pullHls(url: URL, options: HlsPullOptions): Promise<void> {
  try {
    await new HlsPull(url, options).run();
  } catch (error) {
    if (options.signal?.aborted) return;
    const why = error instanceof Error ? error.message : message(error); // already escaped
    throw new Error(`hls pull ${shown(url)}: ${why}`, { cause: error });
  }
}

/** An HTTP answer other than success. */
class HttpStatusError extends Error {
  readonly status: number;
  constructor(what: string, status: number) {
    super(`${what}: HTTP ${status}`);
    this.status = status;
  }
}

/** One media playlist being followed, with the reader of its segments. */
interface Rendition {
  /** What log lines call it: `media`, `video` or `audio`. */
  readonly label: string;
  /** Its playlist (the redirect's target once a load was redirected). */
  url: URL;
  readonly reader: HlsSegmentReader;
  /** The last segment or init-segment failure, for the message when media stops. */
  lastError: string;
}

/** One run of {@linkcode pullHls}. */
class HlsPull {
  readonly #timeoutMs: number;
  /** The caller's signal, and the end of every rendition when one of them fails. */
  readonly #signal: AbortSignal;
  readonly #failed = new AbortController();
  readonly #options: HlsPullOptions;
  readonly #name: string;
  /** `Basic` credentials from the URL's user info, sent to its origin only. */
  readonly #authorization?: { origin: string; value: string };
  readonly #url: URL;

  constructor(url: URL, options: HlsPullOptions) {
    this.#url = withoutCredentials(url);
    if (url.username || url.password) {
      const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
      const bytes = new TextEncoder().encode(user);
      this.#authorization = {
        origin: url.origin,
        value: `Basic ${btoa(String.fromCharCode(...bytes))}`,
      };
    }
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#signal = options.signal
      ? AbortSignal.any([options.signal, this.#failed.signal])
      : this.#failed.signal;
    this.#name = `hls pull ${shown(url)}`;
  }

  async run(): Promise<void> {
    const onFrame = this.#options.onFrame;
    const first: Rendition = {
      label: "media",
      url: this.#url,
      reader: new HlsSegmentReader(onFrame),
      lastError: "",
    };
    const playlist = await this.#loadPlaylist(first);
    if (playlist.kind === "media") return await this.#follow(first, playlist);
    const variant = chooseVariant(playlist.variants);
    if (variant === undefined) {
      throw new Error(`no variant with codecs we read (H.264/H.265, AAC/Opus)`);
    }
    const audio = audioRendition(playlist.audioRenditions, variant);
    const renditions: Rendition[] = [{
      label: audio ? "video" : "media",
      url: new URL(variant.uri, first.url),
      reader: new HlsSegmentReader(onFrame, audio ? "video" : undefined),
      lastError: "",
    }];
    if (audio) {
      renditions.push({
        label: "audio",
        url: new URL(audio.uri, first.url),
        reader: new HlsSegmentReader(onFrame, "audio"),
        lastError: "",
      });
    }
    for (const r of renditions) {
      this.#options.logger?.info(
        `${this.#name}: ${r.label} from ${
          shown(r.url)
        } (the variant of ${variant.bandwidth} bit/s)`,
      );
    }
    // Together: the first to fail ends the others, and its error is the pull's.
    await Promise.all(renditions.map(async (r) => {
      try {
        const media = await this.#loadPlaylist(r);
        if (media.kind !== "media") throw new Error(`the ${r.label} playlist is no media playlist`);
        await this.#follow(r, media);
      } catch (error) {
        this.#failed.abort();
        throw error;
      }
    }));
  }

  /** Reads `media` and its reloads until it ends or fails. */
  async #follow(r: Rendition, media: ParsedMediaPlaylist): Promise<void> {
    const edge = this.#options.liveEdgeSegments ?? DEFAULT_LIVE_EDGE;
    let next = startSequence(media, edge);
    const startedAt = Date.now();
    let mediaMs = 0;
    let lastChange = Date.now();
    let lastMedia = Date.now();
    let changed = true;
    const name = `${this.#name}: ${r.label}`;
    for (;;) {
      const targetMs = targetDurationMs(media);
      const stale = Math.max(this.#timeoutMs, 3 * targetMs);
      if (media.mediaSequence > next) {
        this.#options.logger?.warn(
          `${name} segments ${next}..${media.mediaSequence - 1} left the playlist unread`,
        );
        r.reader.discontinuity();
        next = media.mediaSequence;
      }
      for (const segment of media.segments) {
        if (segment.sequence < next) continue;
        if (media.ended) {
          // A finished playlist: no faster than real time plus the live edge's worth (a live
          // one comes at the pace it is written).
          const ahead = mediaMs - (Date.now() - startedAt) - edge * targetMs;
          if (ahead > 0) await sleep(ahead, undefined, { signal: this.#signal });
        }
        const before = r.reader.delivered;
        await this.#readSegment(r, segment);
        if (r.reader.delivered > before) lastMedia = Date.now();
        mediaMs += Math.min(1000 * segment.duration, 2 * targetMs);
        next = segment.sequence + 1;
      }
      if (media.ended) return;
      if (Date.now() - lastMedia > stale) {
        const why = r.lastError ? ` (last error: ${r.lastError})` : "";
        throw new Error(`${r.label}: no media for ${Date.now() - lastMedia} ms${why}`);
      }
      const factor = changed ? 1 : UNCHANGED_RELOAD_FACTOR;
      await sleep(targetMs * factor, undefined, { signal: this.#signal });
      let reloaded: ParsedPlaylist;
      try {
        reloaded = await this.#loadPlaylist(r);
      } catch (error) {
        if (error instanceof HttpStatusError && REFUSALS.has(error.status)) throw error;
        if (this.#signal.aborted) throw error;
        this.#options.logger?.warn(`${name} reload failed: ${message(error)}`);
        changed = false;
        continue;
      }
      if (reloaded.kind !== "media") throw new Error(`${r.label}: became a multivariant playlist`);
      const end = reloaded.mediaSequence + reloaded.segments.length;
      changed = end > next || reloaded.ended;
      if (end < next) {
        // Sequence numbers went back: the source restarted its playlist.
        this.#options.logger?.warn(`${name} media sequence restarted at ${reloaded.mediaSequence}`);
        r.reader.discontinuity();
        next = startSequence(reloaded, edge);
        changed = true;
      }
      if (changed) lastChange = Date.now();
      else if (Date.now() - lastChange > stale) {
        throw new Error(`${r.label}: playlist unchanged for ${Date.now() - lastChange} ms`);
      }
      media = reloaded;
    }
  }

  /** Reads one segment (and its init segment when it changes); a failure is a discontinuity. */
  async #readSegment(r: Rendition, segment: HlsListedSegment): Promise<void> {
    if (segment.encrypted) throw new Error(`encrypted segments are not supported`);
    if (segment.gap) return r.reader.discontinuity();
    const maxBytes = this.#options.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT;
    try {
      if (segment.map) {
        const mapUrl = new URL(segment.map.uri, r.url);
        const key = `${mapUrl.href} ${rangeHeader(segment.map.byteRange) ?? ""}`;
        if (!r.reader.hasInit(key)) {
          const init = await this.#fetch(mapUrl, maxBytes, "init segment", segment.map.byteRange);
          r.reader.init(key, init.body);
        }
      }
      const url = new URL(segment.uri, r.url);
      const what = `segment ${segment.sequence}`;
      const { body } = await this.#fetch(url, maxBytes, what, segment.byteRange);
      r.reader.segment(body);
    } catch (error) {
      if (this.#signal.aborted) throw error;
      r.lastError = message(error);
      this.#options.logger?.warn(
        `${this.#name}: ${r.label} segment ${segment.sequence} skipped: ${r.lastError}`,
      );
      r.reader.discontinuity();
    }
  }

  /** Fetches and parses the playlist of `r`, following redirects. */
  async #loadPlaylist(r: Rendition): Promise<ParsedPlaylist> {
    const maxBytes = this.#options.maxPlaylistBytes ?? DEFAULT_MAX_PLAYLIST;
    const { body, url } = await this.#fetch(r.url, maxBytes, "playlist");
    r.url = url;
    try {
      return parsePlaylist(new TextDecoder().decode(body));
    } catch (error) {
      throw new Error(`bad playlist: ${message(error)}`);
    }
  }

  /** GETs `url` (a byte range of it) within the deadline and size bound. */
  async #fetch(
    url: URL,
    maxBytes: number,
    what: string,
    range?: HlsByteRange,
  ): Promise<{ body: Uint8Array; url: URL }> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const signal = AbortSignal.any([this.#signal, deadline]);
    const headers = new Headers();
    const wanted = rangeHeader(range);
    if (wanted) headers.set("range", wanted);
    const auth = this.#authorization;
    if (auth && url.origin === auth.origin) headers.set("authorization", auth.value);
    let response: Response;
    let body: Uint8Array | undefined;
    try {
      response = await fetch(url, { signal, headers });
      if (!response.ok) {
        await response.body?.cancel().catch(() => {});
        throw new HttpStatusError(what, response.status);
      }
      body = await readBoundedBody(
        response.body,
        range ? Math.min(maxBytes, range.offset + range.length) : maxBytes,
      );
    } catch (error) {
      if (error instanceof HttpStatusError || this.#signal.aborted) throw error;
      const why = deadline.aborted ? `no answer within ${this.#timeoutMs} ms` : message(error);
      throw new Error(`${what}: ${why}`);
    }
    if (body === undefined) throw new Error(`${what} larger than ${maxBytes} bytes`);
    if (range && response.status === 200) {
      body = body.subarray(range.offset, range.offset + range.length);
    }
    return { body, url: response.url ? new URL(response.url) : url };
  }
}

/**
 * The playlist's target duration in ms, kept within 0.5 s to 60 s: a source that says 0 does
 * not make the pull reload in a loop, one that says a day does not put it to sleep.
 */
function targetDurationMs(playlist: ParsedMediaPlaylist): number {
  return Math.min(Math.max(1000 * playlist.targetDuration, MIN_TARGET_MS), MAX_TARGET_MS);
}

/** The sequence number a pull of `playlist` starts at: near the live edge unless it ended. */
function startSequence(playlist: ParsedMediaPlaylist, edge: number): number {
  const count = playlist.segments.length;
  const skip = playlist.ended ? 0 : Math.max(0, count - Math.max(1, edge));
  return playlist.mediaSequence + skip;
}

/** The highest-bandwidth variant whose codecs are all readable (or unstated). */
function chooseVariant(variants: readonly HlsListedVariant[]): HlsListedVariant | undefined {
  let best: HlsListedVariant | undefined;
  for (const v of variants) {
    if (!v.codecs.every((c) => READABLE_CODECS.test(c))) continue;
    if (best === undefined || v.bandwidth > best.bandwidth) best = v;
  }
  return best;
}

/**
 * The audio rendition `variant` plays with, when its `AUDIO` group has one with a playlist
 * of its own: the group's default one, else its first.
 */
function audioRendition(
  renditions: readonly HlsAudioRendition[],
  variant: HlsListedVariant,
): HlsAudioRendition | undefined {
  const group = renditions.filter((r) => r.groupId === variant.audioGroup);
  return group.find((r) => r.isDefault) ?? group[0];
}

/** `url` without user info. */
function withoutCredentials(url: URL): URL {
  const bare = new URL(url);
  bare.username = bare.password = "";
  return bare;
}

/** `url` as a log line may show it: no credentials, no query (tokens), escaped. */
function shown(url: URL): string {
  const bare = withoutCredentials(url);
  bare.search = "";
  return escapeForLog(bare.href);
}

function rangeHeader(range: HlsByteRange | undefined): string | undefined {
  return range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined;
}

function message(error: unknown): string {
  return escapeForLog(error instanceof Error ? error.message : String(error));
}
