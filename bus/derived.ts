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
}
