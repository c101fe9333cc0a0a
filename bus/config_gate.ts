/**
 * The kernel's ordering contract for ingest: a track's `CONFIG` frame comes before any of
 * its media frames, and a gate that enforces it.
 *
 * @module
 */

import { type CodecId, FrameFlags, type MediaFrame } from "./frame.ts";

/** Codecs whose streams have no decoder configuration record: their media needs no `CONFIG`. */
const WITHOUT_CONFIG: ReadonlySet<CodecId> = new Set(["mp3"]);

/**
 * Lets through a `CONFIG` frame, and the media frames of a track once a `CONFIG` frame of
 * the same codec has passed for it; holds back (drops) media before that, as the kernel's
 * contract asks of every ingest (see {@linkcode MediaFrame}). A codec change on a track
 * waits for the new codec's `CONFIG` frame. Codecs that have no configuration (MP3) always
 * pass. One gate per publish, in front of `publish()`: a lossy source whose parameter sets
 * were lost then starts at its first frame that can be decoded.
 *
 * @example
 * ```ts
 * import { ConfigGate, FrameFlags, type MediaFrame } from "@arcly/stream";
 *
 * const gate = new ConfigGate();
 * const frame = (flags: number): MediaFrame => ({
 *   track: 0, kind: "video", codec: "h264", pts: 0, dts: 0, flags, data: new Uint8Array(4),
 * });
 * gate.admit(frame(FrameFlags.KEYFRAME)); // false: no CONFIG yet
 * gate.admit(frame(FrameFlags.CONFIG)); // true
 * gate.admit(frame(FrameFlags.KEYFRAME)); // true
 * gate.dropped; // 1
 * ```
 */
export class ConfigGate {
  /** The codec of the last CONFIG frame of each track. */
  #configured = new Map<number, CodecId>();
  #dropped = 0;

  /** Media frames held back so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Whether `frame` may be published (a `CONFIG` frame always may, and opens its track). */
  admit(frame: MediaFrame): boolean {
    if ((frame.flags & FrameFlags.CONFIG) !== 0) {
      this.#configured.set(frame.track, frame.codec);
      return true;
    }
    if (this.#configured.get(frame.track) === frame.codec || WITHOUT_CONFIG.has(frame.codec)) {
      return true;
    }
    this.#dropped++;
    return false;
  }
}
