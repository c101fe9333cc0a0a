/**
 * A stream's MPEG-TS for its SRT readers, muxed once per stream: one muxer, whose packets
 * for each frame (with the stream's continuity counters, PAT/PMT before every video
 * keyframe) every reader sends. Hosted by the stream as the derived form `"ts"`.
 */

import { EncodedFrames, type MediaFrame } from "../../mod.ts";
import { TsEncoder } from "../../media/ts/mod.ts";

const NOTHING = new Uint8Array(0);

/** The derived form's name: {@linkcode StreamHandle.derive}`("ts", ...)`. */
export const STREAM_TS_FORM = "ts";

/** One stream's MPEG-TS, shared by its readers. */
export class StreamTs {
  readonly #encoder = new TsEncoder();
  readonly #frames = new EncodedFrames((frame) => this.#encoder.encode(frame) ?? NOTHING);
  /** What the muxer still held when the stream ended; `null` until asked for. */
  #tail: Uint8Array | null = null;

  /**
   * The packets of `frame` (empty for a CONFIG frame or one the muxer holds while it
   * probes the program: those come with a later frame). The muxer takes frames in the
   * order the first reader to reach each one asks for them.
   */
  bytes(frame: MediaFrame): Uint8Array {
    return this.#frames.get(frame);
  }

  /** Once the stream has ended: what the muxer still held (the same bytes for every reader). */
  tail(): Uint8Array {
    this.#tail ??= this.#encoder.flush() ?? NOTHING;
    return this.#tail;
  }
}
