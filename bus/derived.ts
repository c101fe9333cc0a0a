/**
 * What a stream derives for one output form and shares with every player of that form:
 * e.g. each frame encoded once as RTMP chunks or as an FLV tag. The kernel only hosts it
 * (made on the first player, dropped when the last one leaves); the form is the protocol's.
 *
 * @module
 */

import type { MediaFrame } from "./frame.ts";

/** A derived value held by one player; see {@linkcode StreamHandle.derive}. */
export interface Derived<T> {
  /** The value every holder of this form shares. */
  readonly value: T;
  /** Let go of it (idempotent); the last release drops the value. */
  release(): void;
}

/**
 * Frames encoded once for one output form: the first {@linkcode EncodedFrames.get} of a
 * frame encodes it, every later one returns the same bytes. Bytes live as long as their
 * frame does.
 *
 * @example
 * ```ts
 * import { EncodedFrames, type MediaFrame } from "@arcly/stream";
 *
 * const tags = new EncodedFrames((frame: MediaFrame) => frame.data.slice());
 * const frame = { track: 0, kind: "audio", codec: "aac", pts: 0, dts: 0, flags: 0, data: new Uint8Array(2) } as const;
 * tags.get(frame) === tags.get(frame); // true
 * ```
 */
export class EncodedFrames {
  #encode: (frame: MediaFrame) => Uint8Array;
  #cache = new WeakMap<MediaFrame, Uint8Array>();
  /** The last batches {@linkcode EncodedFrames.concat} joined, oldest replaced first. */
  #batches: { frames: MediaFrame[]; bytes: Uint8Array }[] = [];
  #nextBatch = 0;

  /** Encode with `encode`, once per frame. */
  constructor(encode: (frame: MediaFrame) => Uint8Array) {
    this.#encode = encode;
  }

  /** The bytes of `frame` in this form. */
  get(frame: MediaFrame): Uint8Array {
    let bytes = this.#cache.get(frame);
    if (bytes === undefined) {
      bytes = this.#encode(frame);
      this.#cache.set(frame, bytes);
    }
    return bytes;
  }

  /**
   * The bytes of `frames[0]` to `frames[count - 1]` in this form, one after the other. Players
   * woken together are handed the same batch: the first one's call joins the bytes, the
   * others' return the same array, so a batch costs one copy per stream, not per player (the
   * last four batches are kept). A single frame's bytes are returned as
   * {@linkcode EncodedFrames.get} has them.
   *
   * @example
   * ```ts
   * import { EncodedFrames, type MediaFrame } from "@arcly/stream";
   *
   * const tags = new EncodedFrames((frame: MediaFrame) => frame.data.slice());
   * const audio = (dts: number): MediaFrame =>
   *   ({ track: 1, kind: "audio", codec: "aac", pts: dts, dts, flags: 0, data: new Uint8Array(2) });
   * const batch = [audio(0), audio(1920)];
   * tags.concat(batch, 2) === tags.concat(batch.slice(), 2); // true
   * ```
   */
  concat(frames: readonly MediaFrame[], count: number): Uint8Array {
    if (count === 1) return this.get(frames[0]);
    for (const batch of this.#batches) {
      if (sameFrames(batch.frames, frames, count)) return batch.bytes;
    }
    let total = 0;
    for (let i = 0; i < count; i++) total += this.get(frames[i]).length;
    const bytes = new Uint8Array(total);
    for (let i = 0, o = 0; i < count; i++) {
      const part = this.get(frames[i]);
      bytes.set(part, o);
      o += part.length;
    }
    const batch = { frames: frames.slice(0, count), bytes };
    this.#batches[this.#nextBatch] = batch;
    this.#nextBatch = (this.#nextBatch + 1) % BATCHES_KEPT;
    return bytes;
  }
}

/** How many joined batches {@linkcode EncodedFrames.concat} keeps for the next callers. */
const BATCHES_KEPT = 4;

/** Whether `kept` holds exactly `frames[0..count)` (the same objects). */
function sameFrames(kept: readonly MediaFrame[], frames: readonly MediaFrame[], count: number) {
  if (kept.length !== count) return false;
  for (let i = 0; i < count; i++) if (kept[i] !== frames[i]) return false;
  return true;
}
