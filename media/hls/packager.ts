/**
 * The HLS packager: a `WritableStream<MediaFrame>` that writes segments and
 * playlists to an {@linkcode HlsStorage}.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { type HlsPackagerOptions, type HlsPackagerStats, Segmenter } from "./_segmenter.ts";
import type { MediaPlaylist } from "./playlist.ts";

/** Each packager's segmenter, for a packager continuing another's playlist. */
const segmenters = new WeakMap<HlsPackager, Segmenter>();

export type {
  HlsPackagerOptions,
  HlsPackagerStats,
  HlsPlaylistType,
  HlsSegmentType,
} from "./_segmenter.ts";

/**
 * Packages frames as HLS: MPEG-TS or fMP4 segments cut at video keyframes once
 * the target duration is reached (by duration without video), a media playlist
 * (VOD, EVENT or a live sliding window) and a master playlist with `CODECS`
 * and `RESOLUTION`, all written through an {@linkcode HlsStorage}.
 *
 * A live source may be lossy or change as it goes: what cannot be used yet is
 * skipped, never an error (`onSkip` hears of each condition once). Media of a track
 * before its CONFIG frame (or of another codec than it) is dropped; a CONFIG that
 * cannot be used is ignored; one video and one audio track are written, others
 * skipped; frames before the first keyframe are dropped. A frame flagged
 * `DISCONTINUITY` (or a lead-track timestamp going back, or jumping far ahead)
 * ends the segment and the next one, from the next keyframe, gets
 * `EXT-X-DISCONTINUITY`; so does a changed CONFIG (with a new `EXT-X-MAP` for
 * fMP4). Closing the stream finishes the output: the last segment, then
 * `EXT-X-ENDLIST`. Aborting it, or a write failing, finishes it too, keeping
 * every segment written. Memory stays flat: one segment's frames are held at
 * a time.
 *
 * With `partDuration` (fMP4, live or event) it writes Low-Latency HLS: partial
 * segments listed with `EXT-X-PART` and `EXT-X-PRELOAD-HINT`; a server answers
 * blocking playlist reloads and preload-hint requests with
 * {@linkcode HlsPackager.waitForPart}.
 *
 * @example Package a stream into a directory as a live window of fMP4 segments
 * ```ts ignore
 * import { DirectoryStorage, HlsPackager } from "@arcly/stream/hls";
 *
 * const packager = new HlsPackager({
 *   storage: new DirectoryStorage("out"),
 *   segmentType: "fmp4",
 *   targetDuration: 2,
 * });
 * await handle.packageTo(packager, { signal });
 * ```
 */
export class HlsPackager extends WritableStream<MediaFrame> {
  readonly #segmenter: Segmenter;

  /**
   * Makes a packager; see {@linkcode HlsPackagerOptions}.
   *
   * @throws {RangeError} for a non-positive target duration or window size.
   * @throws {TypeError} when `continueFrom` is a packager not finished yet.
   */
  constructor(options: HlsPackagerOptions) {
    const previous = options.continueFrom && segmenters.get(options.continueFrom);
    const segmenter = new Segmenter(options, previous?.continuation());
    super({
      async write(frame) {
        try {
          await segmenter.write(frame);
        } catch (error) {
          await segmenter.finish().catch(() => {});
          throw error;
        }
      },
      close: () => segmenter.finish(),
      abort: () => segmenter.finish(),
    });
    this.#segmenter = segmenter;
    segmenters.set(this, segmenter);
  }

  /** Counters so far (a live view). */
  get stats(): Readonly<HlsPackagerStats> {
    return this.#segmenter.stats;
  }

  /** The media playlist as last written (or, for VOD, as it will be written). */
  get playlist(): MediaPlaylist {
    return this.#segmenter.playlist;
  }

  /**
   * Waits until the segment with media sequence number `sequence` has been
   * written and listed in the playlist: for a server answering blocking
   * playlist reloads or requests for the next segment.
   *
   * @returns `true` once it is, `false` if the packager finished without it.
   * @throws the signal's reason when `signal` aborts first.
   */
  waitForSegment(sequence: number, signal?: AbortSignal): Promise<boolean> {
    return this.#segmenter.waitFor(sequence, Infinity, signal);
  }

  /**
   * Low-Latency HLS: waits until part `part` of segment `sequence` is written
   * and listed, or the whole segment is (it may end with fewer parts): what a
   * blocking playlist reload (`_HLS_msn`, `_HLS_part`) or a request for the
   * `EXT-X-PRELOAD-HINT` part waits for. (The playlist itself is first written
   * with the first whole segment; parts of that one are only written.)
   *
   * @returns `true` once it is, `false` if the packager finished without it.
   * @throws the signal's reason when `signal` aborts first.
   */
  waitForPart(sequence: number, part: number, signal?: AbortSignal): Promise<boolean> {
    return this.#segmenter.waitFor(sequence, part, signal);
  }
}
