/**
 * Reading HLS playlists (RFC 8216, draft-pantos-hls-rfc8216bis): the multivariant playlist's
 * variants and a media playlist's segments, for clients that pull a stream.
 *
 * @module
 */

import type { HlsVariant } from "./playlist.ts";

/** A byte range of a resource (`EXT-X-BYTERANGE`, `EXT-X-MAP` `BYTERANGE`). */
export interface HlsByteRange {
  /** Offset of the first byte. */
  readonly offset: number;
  /** Number of bytes. */
  readonly length: number;
}

/** One media segment as a media playlist lists it. */
export interface HlsListedSegment {
  /** The segment's URI as written (relative to the playlist). */
  readonly uri: string;
  /** Its media sequence number. */
  readonly sequence: number;
  /** Its duration in seconds (`EXTINF`). */
  readonly duration: number;
  /** Whether `EXT-X-DISCONTINUITY` precedes it. */
  readonly discontinuity: boolean;
  /** Whether `EXT-X-GAP` marks it as missing. */
  readonly gap: boolean;
  /** The part of the resource it is, when `EXT-X-BYTERANGE` says. */
  readonly byteRange?: HlsByteRange;
  /** Its initialization segment (`EXT-X-MAP`), for fMP4 segments. */
  readonly map?: { readonly uri: string; readonly byteRange?: HlsByteRange };
  /** Whether an `EXT-X-KEY` with a method other than `NONE` applies to it. */
  readonly encrypted: boolean;
}

/** What a media playlist says. */
export interface ParsedMediaPlaylist {
  /** A media playlist. */
  readonly kind: "media";
  /** `EXT-X-TARGETDURATION` in seconds. */
  readonly targetDuration: number;
  /** `EXT-X-MEDIA-SEQUENCE` (0 when absent). */
  readonly mediaSequence: number;
  /** `EXT-X-PLAYLIST-TYPE`, when given. */
  readonly type?: "VOD" | "EVENT";
  /** The listed segments, oldest first. */
  readonly segments: readonly HlsListedSegment[];
  /** Whether `EXT-X-ENDLIST` finishes it. */
  readonly ended: boolean;
}

/** One variant stream as a multivariant playlist lists it. */
export interface HlsListedVariant extends HlsVariant {
  /** The `AUDIO` rendition group it plays with, when it names one. */
  readonly audioGroup?: string;
}

/** What a multivariant (master) playlist says. */
export interface ParsedMultivariantPlaylist {
  /** A multivariant playlist. */
  readonly kind: "multivariant";
  /** Its variant streams (`EXT-X-STREAM-INF`), in playlist order. */
  readonly variants: readonly HlsListedVariant[];
  /**
   * The audio renditions with a playlist of their own (`EXT-X-MEDIA` `TYPE=AUDIO` with a
   * `URI`): a variant whose `AUDIO` group has one has its audio there.
   */
  readonly audioRenditions: readonly HlsAudioRendition[];
}

/** An audio rendition with a playlist of its own (`EXT-X-MEDIA:TYPE=AUDIO,…,URI=…`). */
export interface HlsAudioRendition {
  /** `GROUP-ID`. */
  readonly groupId: string;
  /** The media playlist URI, relative to the multivariant playlist. */
  readonly uri: string;
  /** `DEFAULT=YES`. */
  readonly isDefault: boolean;
}

/** A playlist of either kind. */
export type ParsedPlaylist = ParsedMediaPlaylist | ParsedMultivariantPlaylist;

/** The most segments or variants one playlist may list. */
const MAX_ENTRIES = 100_000;

/**
 * Parses playlist text. Tags a client pulling the stream does not need (LL-HLS parts and
 * hints, `EXT-X-PROGRAM-DATE-TIME`, renditions other than audio, comments) are skipped; an
 * unknown tag is ignored as the RFC asks. Peer text never appears in an error message.
 *
 * @throws {RangeError} when the text does not start with `#EXTM3U`, a value the reader
 *   needs is malformed (`EXTINF`, `EXT-X-TARGETDURATION`, `BANDWIDTH`, a byte range), a URI
 *   line is missing, or it lists more than 100,000 entries.
 * @example
 * ```ts
 * import { parsePlaylist } from "@arcly/stream/hls";
 *
 * const playlist = parsePlaylist(
 *   "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.0,\nseg7.ts\n",
 * );
 * if (playlist.kind === "media") playlist.segments[0].sequence; // 7
 * ```
 */
export function parsePlaylist(text: string): ParsedPlaylist {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  if (lines[0]?.trim() !== "#EXTM3U") throw new RangeError("playlist does not start with #EXTM3U");
  const variants: HlsListedVariant[] = [];
  const audioRenditions: HlsAudioRendition[] = [];
  const segments: HlsListedSegment[] = [];
  let targetDuration: number | undefined;
  let mediaSequence = 0;
  let type: "VOD" | "EVENT" | undefined;
  let ended = false;
  let pendingVariant: Omit<HlsListedVariant, "uri"> | undefined;
  let duration: number | undefined;
  let discontinuity = false;
  let gap = false;
  let byteRange: HlsByteRange | undefined;
  let lastRange: { uri: string; end: number } | undefined;
  let map: HlsListedSegment["map"];
  let encrypted = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    if (!line.startsWith("#")) {
      if (pendingVariant) {
        variants.push({ uri: line, ...pendingVariant });
        pendingVariant = undefined;
      } else if (duration !== undefined) {
        let range = byteRange;
        if (range && range.offset < 0) {
          if (lastRange?.uri !== line) throw new RangeError("EXT-X-BYTERANGE without an offset");
          range = { offset: lastRange.end, length: range.length };
        }
        if (range) lastRange = { uri: line, end: range.offset + range.length };
        segments.push({
          uri: line,
          sequence: mediaSequence + segments.length,
          duration,
          discontinuity,
          gap,
          encrypted,
          ...(range ? { byteRange: range } : {}),
          ...(map ? { map } : {}),
        });
        duration = undefined;
        discontinuity = gap = false;
        byteRange = undefined;
      } else {
        throw new RangeError(`line ${i + 1}: a URI without EXTINF or EXT-X-STREAM-INF`);
      }
      if (variants.length + segments.length > MAX_ENTRIES) {
        throw new RangeError(`playlist lists more than ${MAX_ENTRIES} entries`);
      }
      continue;
    }
    const colon = line.indexOf(":");
    const tag = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1);
    switch (tag) {
      case "#EXTINF":
        duration = decimal(value.split(",")[0], i, "EXTINF");
        break;
      case "#EXT-X-TARGETDURATION":
        targetDuration = decimal(value, i, tag);
        break;
      case "#EXT-X-MEDIA-SEQUENCE":
        if (segments.length === 0) mediaSequence = integer(value, i, tag);
        break;
      case "#EXT-X-PLAYLIST-TYPE":
        if (value === "VOD" || value === "EVENT") type = value;
        break;
      case "#EXT-X-ENDLIST":
        ended = true;
        break;
      case "#EXT-X-DISCONTINUITY":
        discontinuity = true;
        break;
      case "#EXT-X-GAP":
        gap = true;
        break;
      case "#EXT-X-BYTERANGE":
        byteRange = range(value, i, tag);
        break;
      case "#EXT-X-KEY":
        encrypted = (attributes(value).get("METHOD") ?? "NONE") !== "NONE";
        break;
      case "#EXT-X-MAP": {
        const attrs = attributes(value);
        const uri = attrs.get("URI");
        if (uri === undefined) throw new RangeError(`line ${i + 1}: EXT-X-MAP without URI`);
        const mapRange = attrs.get("BYTERANGE");
        const r = mapRange === undefined ? undefined : range(mapRange, i, "EXT-X-MAP BYTERANGE");
        if (r && r.offset < 0) {
          throw new RangeError(`line ${i + 1}: EXT-X-MAP range without offset`);
        }
        map = r ? { uri, byteRange: r } : { uri };
        break;
      }
      case "#EXT-X-STREAM-INF":
        pendingVariant = variant(attributes(value), i);
        break;
      case "#EXT-X-MEDIA": {
        const attrs = attributes(value);
        const groupId = attrs.get("GROUP-ID");
        const uri = attrs.get("URI");
        if (attrs.get("TYPE") === "AUDIO" && uri !== undefined && groupId !== undefined) {
          audioRenditions.push({ groupId, uri, isDefault: attrs.get("DEFAULT") === "YES" });
        }
        break;
      }
    }
  }
  if (variants.length > 0) {
    return { kind: "multivariant", variants, audioRenditions };
  }
  if (targetDuration === undefined) {
    throw new RangeError("media playlist without EXT-X-TARGETDURATION");
  }
  return {
    kind: "media",
    targetDuration,
    mediaSequence,
    segments,
    ended,
    ...(type ? { type } : {}),
  };
}

function variant(attrs: Map<string, string>, i: number): Omit<HlsListedVariant, "uri"> {
  const bandwidth = attrs.get("BANDWIDTH");
  if (bandwidth === undefined) {
    throw new RangeError(`line ${i + 1}: EXT-X-STREAM-INF without BANDWIDTH`);
  }
  const out: { -readonly [K in keyof Omit<HlsListedVariant, "uri">]: HlsListedVariant[K] } = {
    bandwidth: integer(bandwidth, i, "BANDWIDTH"),
    codecs: (attrs.get("CODECS") ?? "").split(",").map((c) => c.trim()).filter((c) => c !== ""),
  };
  const average = attrs.get("AVERAGE-BANDWIDTH");
  if (average !== undefined) out.averageBandwidth = integer(average, i, "AVERAGE-BANDWIDTH");
  const resolution = /^(\d{1,5})x(\d{1,5})$/.exec(attrs.get("RESOLUTION") ?? "");
  if (resolution) out.resolution = { width: Number(resolution[1]), height: Number(resolution[2]) };
  const audio = attrs.get("AUDIO");
  if (audio !== undefined) out.audioGroup = audio;
  return out;
}

/**
 * An attribute list (RFC 8216 4.2): `NAME=value` pairs separated by commas, a value quoted
 * (`"…"`, no comma or quote inside) or not.
 */
function attributes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const pattern = /([A-Z0-9-]+)=("[^"\r\n]*"|[^",]*)(?:,|$)/gy;
  for (let m = pattern.exec(text); m !== null && m[0] !== ""; m = pattern.exec(text)) {
    const value = m[2];
    out.set(m[1], value.startsWith('"') ? value.slice(1, -1) : value);
  }
  return out;
}

function decimal(text: string, i: number, what: string): number {
  const value = /^\d{1,10}(\.\d{0,12})?$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isFinite(value)) throw new RangeError(`line ${i + 1}: ${what} is not a number`);
  return value;
}

function integer(text: string, i: number, what: string): number {
  const value = /^\d{1,15}$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`line ${i + 1}: ${what} is not an integer`);
  }
  return value;
}

/** `<length>[@<offset>]`; the offset is -1 when absent. */
function range(text: string, i: number, what: string): HlsByteRange {
  const m = /^(\d{1,15})(?:@(\d{1,15}))?$/.exec(text.trim());
  if (!m) throw new RangeError(`line ${i + 1}: ${what} is not <length>[@<offset>]`);
  return { length: Number(m[1]), offset: m[2] === undefined ? -1 : Number(m[2]) };
}
