/**
 * HLS media segments (MPEG-TS, or fMP4 after their initialization segment) turned into one
 * stream of frames in the bus's contract, whatever the segment boundaries.
 *
 * @module
 */

import { ConfigGate, FrameFlags, type MediaFrame, type TrackKind } from "../../mod.ts";
import { TsDecoder } from "../../media/ts/mod.ts";
import { Fmp4Demuxer } from "../../media/fmp4/mod.ts";

/** PTS and DTS in MPEG-TS count modulo 2^33. */
const TS_WRAP = 2 ** 33;
/** Tracks a segment can carry (video 0, audio 1, as the demuxers number them). */
const TRACKS = [0, 1];

/**
 * Reads segment after segment into `onFrame`:
 * - each TS segment with a decoder of its own (a segment is decodable alone, RFC 8216 3),
 *   flushed at its end so its last frame is not held back; its timestamps move by whole
 *   2^33 periods to be nearest the previous segment's (the 33-bit unwrap across segments);
 * - each fMP4 segment through the demuxer of the current initialization segment;
 * - a CONFIG frame only when it differs from the track's last one (every TS segment repeats
 *   its parameter sets), media only after its track's CONFIG ({@linkcode ConfigGate});
 * - after {@linkcode HlsSegmentReader.discontinuity}, DISCONTINUITY on each track's next
 *   media frame.
 */
export class HlsSegmentReader {
  readonly #onFrame: (frame: MediaFrame) => void;
  readonly #only?: TrackKind;
  readonly #gate = new ConfigGate();
  readonly #configs = new Map<number, MediaFrame>();
  readonly #discontinuous = new Set<number>();
  #fmp4: Fmp4Demuxer | undefined;
  /** The init segment the demuxer was made from. */
  #initKey: string | undefined;
  /**
   * The last TS decode time, for the unwrap (NaN: none yet). Kept across discontinuities:
   * the next timeline is placed in the 2^33 period nearest to where the last one ended.
   */
  #lastTsDts = NaN;
  /** Media frames delivered so far. */
  delivered = 0;

  /**
   * A reader delivering to `onFrame` the frames of every track, or of the kind `only` (the
   * video of a variant whose audio comes from a rendition of its own, and that audio).
   */
  constructor(onFrame: (frame: MediaFrame) => void, only?: TrackKind) {
    this.#onFrame = onFrame;
    this.#only = only;
  }

  /** The init segment `key` names is the one fMP4 segments are read with now. */
  hasInit(key: string): boolean {
    return this.#initKey === key;
  }

  /** Takes `bytes` (named `key`) as the initialization segment of the fMP4 segments to come. */
  init(key: string, bytes: Uint8Array): void {
    const demuxer = new Fmp4Demuxer();
    demuxer.decode(bytes, this.#deliver);
    this.#fmp4 = demuxer;
    this.#initKey = key;
  }

  /** The next segment does not continue the previous one (its timestamps may jump). */
  discontinuity(): void {
    for (const track of TRACKS) this.#discontinuous.add(track);
  }

  /**
   * Reads one whole segment: MPEG-TS when it starts with a sync byte, else fMP4.
   *
   * @throws {Error} when it is neither TS nor fMP4 that the current init segment describes
   *   (frames read before the fault have been delivered).
   */
  segment(bytes: Uint8Array): void {
    if (bytes[0] === 0x47) return this.#tsSegment(bytes);
    if (this.#fmp4 === undefined) throw new Error("fMP4 segment without an EXT-X-MAP");
    this.#fmp4.decode(bytes, this.#deliver);
  }

  #tsSegment(bytes: Uint8Array): void {
    const decoder = new TsDecoder();
    let shift: number | undefined;
    const emit = (frame: MediaFrame) => {
      if (shift === undefined) {
        shift = Number.isNaN(this.#lastTsDts)
          ? 0
          : Math.round((this.#lastTsDts - frame.dts) / TS_WRAP) * TS_WRAP;
      }
      const moved = shift === 0
        ? frame
        : { ...frame, pts: frame.pts + shift, dts: frame.dts + shift };
      if (!(frame.flags & FrameFlags.CONFIG)) this.#lastTsDts = moved.dts;
      this.#deliver(moved);
    };
    decoder.decode(bytes, emit);
    decoder.flush(emit);
  }

  readonly #deliver = (frame: MediaFrame): void => {
    if (this.#only !== undefined && frame.kind !== this.#only) return;
    if (frame.flags & FrameFlags.CONFIG) {
      const last = this.#configs.get(frame.track);
      if (last && last.codec === frame.codec && sameBytes(last.data, frame.data)) return;
      this.#configs.set(frame.track, frame);
      this.#gate.admit(frame);
      this.#onFrame(frame);
      return;
    }
    if (!this.#gate.admit(frame)) return;
    if (this.#discontinuous.delete(frame.track)) {
      frame = { ...frame, flags: frame.flags | FrameFlags.DISCONTINUITY };
    }
    this.delivered++;
    this.#onFrame(frame);
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
