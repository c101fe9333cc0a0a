/**
 * HLS playlist text (RFC 8216): media playlists and the master playlist.
 *
 * @module
 */

/** One partial segment (Low-Latency HLS `EXT-X-PART`). */
export interface HlsPart {
  /** The part's URI, relative to the playlist (its storage name). */
  readonly uri: string;
  /** Its duration in seconds. */
  readonly duration: number;
  /** Whether it starts with a keyframe (`INDEPENDENT=YES`). */
  readonly independent: boolean;
}

/** One media segment as listed in a media playlist. */
export interface HlsSegment {
  /** The segment's URI, relative to the playlist (its storage name). */
  readonly uri: string;
  /** Its media sequence number. */
  readonly sequence: number;
  /** Its duration in seconds (`EXTINF`). */
  readonly duration: number;
  /** Whether `EXT-X-DISCONTINUITY` precedes it. */
  readonly discontinuity: boolean;
  /** The URI of its initialization segment (`EXT-X-MAP`), for fMP4 segments. */
  readonly map?: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** Its partial segments, when they are listed (Low-Latency HLS). */
  readonly parts?: readonly HlsPart[];
}

/** The segment being written, as far as its parts are listed (Low-Latency HLS). */
export interface HlsPartialSegment {
  /** Whether `EXT-X-DISCONTINUITY` precedes it. */
  readonly discontinuity: boolean;
  /** The URI of its initialization segment (`EXT-X-MAP`). */
  readonly map?: string;
  /** The parts written so far. */
  readonly parts: readonly HlsPart[];
  /** The URI the next part will have (`EXT-X-PRELOAD-HINT`). */
  readonly preloadHint: string;
}

/** What a media playlist says. */
export interface MediaPlaylist {
  /** `EXT-X-VERSION`. */
  readonly version: number;
  /** `EXT-X-TARGETDURATION` in whole seconds; at least every rounded `EXTINF`. */
  readonly targetDuration: number;
  /** `EXT-X-PLAYLIST-TYPE`, absent for a live sliding window. */
  readonly type?: "VOD" | "EVENT";
  /** `EXT-X-MEDIA-SEQUENCE`: the sequence number of the first listed segment. */
  readonly mediaSequence: number;
  /** `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities before the first listed segment. */
  readonly discontinuitySequence: number;
  /** The listed segments, oldest first. */
  readonly segments: readonly HlsSegment[];
  /** Whether the playlist is finished (`EXT-X-ENDLIST`). */
  readonly ended: boolean;
  /**
   * Low-Latency HLS: the part target duration in seconds (`EXT-X-PART-INF`),
   * with `EXT-X-SERVER-CONTROL` announcing blocking reloads.
   */
  readonly partTarget?: number;
  /** Low-Latency HLS: the segment being written, after the listed ones. */
  readonly partial?: HlsPartialSegment;
}

/** One variant stream of a master playlist. */
export interface HlsVariant {
  /** The media playlist URI. */
  readonly uri: string;
  /** Peak bit rate in bits per second (`BANDWIDTH`). */
  readonly bandwidth: number;
  /** Average bit rate in bits per second (`AVERAGE-BANDWIDTH`), when known. */
  readonly averageBandwidth?: number;
  /** RFC 6381 codec strings of every track (`CODECS`). */
  readonly codecs: readonly string[];
  /** Picture size (`RESOLUTION`), when the variant has video. */
  readonly resolution?: { readonly width: number; readonly height: number };
}

/**
 * Renders a media playlist. `EXT-X-MAP` is written before the first segment
 * and wherever the initialization segment changes.
 *
 * @example A finished VOD playlist of two TS segments
 * ```ts
 * import { renderMediaPlaylist } from "@arcly/stream/hls";
 *
 * const text = renderMediaPlaylist({
 *   version: 3,
 *   targetDuration: 2,
 *   type: "VOD",
 *   mediaSequence: 0,
 *   discontinuitySequence: 0,
 *   ended: true,
 *   segments: [
 *     { uri: "seg0.ts", sequence: 0, duration: 2, discontinuity: false, bytes: 1000 },
 *     { uri: "seg1.ts", sequence: 1, duration: 1.5, discontinuity: false, bytes: 800 },
 *   ],
 * });
 * ```
 */
export function renderMediaPlaylist(playlist: MediaPlaylist): string {
  const lines = [
    "#EXTM3U",
    `#EXT-X-VERSION:${playlist.version}`,
    `#EXT-X-TARGETDURATION:${playlist.targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${playlist.mediaSequence}`,
  ];
  if (playlist.partTarget !== undefined) {
    const holdBack = (3 * playlist.partTarget).toFixed(3);
    lines.push(
      `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${holdBack}`,
      `#EXT-X-PART-INF:PART-TARGET=${playlist.partTarget.toFixed(3)}`,
    );
  }
  if (playlist.discontinuitySequence > 0) {
    lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${playlist.discontinuitySequence}`);
  }
  if (playlist.type) lines.push(`#EXT-X-PLAYLIST-TYPE:${playlist.type}`);
  lines.push("#EXT-X-INDEPENDENT-SEGMENTS");
  let map: string | undefined;
  const segments: (HlsSegment | HlsPartialSegment)[] = [...playlist.segments];
  if (playlist.partial && !playlist.ended) segments.push(playlist.partial);
  for (const [i, s] of segments.entries()) {
    if (s.discontinuity && i > 0) lines.push("#EXT-X-DISCONTINUITY");
    if (s.map !== undefined && s.map !== map) lines.push(`#EXT-X-MAP:URI="${s.map}"`);
    map = s.map;
    for (const p of s.parts ?? []) {
      const independent = p.independent ? ",INDEPENDENT=YES" : "";
      lines.push(`#EXT-X-PART:DURATION=${p.duration.toFixed(3)},URI="${p.uri}"${independent}`);
    }
    if ("preloadHint" in s) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${s.preloadHint}"`);
    else lines.push(`#EXTINF:${s.duration.toFixed(3)},`, s.uri);
  }
  if (playlist.ended) lines.push("#EXT-X-ENDLIST");
  return lines.join("\n") + "\n";
}

/**
 * Renders a master playlist listing `variants`.
 *
 * @example
 * ```ts
 * import { renderMasterPlaylist } from "@arcly/stream/hls";
 *
 * const text = renderMasterPlaylist([{
 *   uri: "stream.m3u8",
 *   bandwidth: 1_200_000,
 *   codecs: ["avc1.64001f", "mp4a.40.2"],
 *   resolution: { width: 1280, height: 720 },
 * }]);
 * ```
 */
export function renderMasterPlaylist(variants: readonly HlsVariant[]): string {
  const lines = ["#EXTM3U", "#EXT-X-INDEPENDENT-SEGMENTS"];
  for (const v of variants) {
    const attrs = [`BANDWIDTH=${Math.ceil(v.bandwidth)}`];
    if (v.averageBandwidth !== undefined) {
      attrs.push(`AVERAGE-BANDWIDTH=${Math.ceil(v.averageBandwidth)}`);
    }
    attrs.push(`CODECS="${v.codecs.join(",")}"`);
    if (v.resolution) attrs.push(`RESOLUTION=${v.resolution.width}x${v.resolution.height}`);
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(",")}`, v.uri);
  }
  return lines.join("\n") + "\n";
}
