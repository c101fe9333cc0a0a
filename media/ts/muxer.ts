/**
 * The MPEG-TS muxer as a Web Streams transform.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { TsEncoder, type TsMuxerOptions, type TsMuxerStats } from "./encoder.ts";

/**
 * Muxes {@linkcode MediaFrame}s into an MPEG transport stream: one output
 * chunk per written frame (a whole number of 188-byte packets). See
 * {@linkcode TsEncoder} for what is written; bad frames are dropped and
 * counted in {@linkcode TsMuxer.stats}, never thrown.
 *
 * @example Subscribe a stream and write a .ts file
 * ```ts ignore
 * import { TsMuxer } from "@arcly/stream/ts";
 *
 * const file = await Deno.open("out.ts", { write: true, create: true });
 * await handle.subscribe({ replay: true }).pipeThrough(new TsMuxer()).pipeTo(file.writable);
 * ```
 */
export class TsMuxer extends TransformStream<MediaFrame, Uint8Array> {
  readonly #encoder: TsEncoder;

  /** Creates a muxer; see {@linkcode TsMuxerOptions}. */
  constructor(options?: TsMuxerOptions) {
    const encoder = new TsEncoder(options);
    super({
      transform(frame, controller) {
        const out = encoder.encode(frame);
        if (out) controller.enqueue(out);
      },
      flush(controller) {
        const out = encoder.flush();
        if (out) controller.enqueue(out);
      },
    });
    this.#encoder = encoder;
  }

  /** Counters so far (a live view). */
  get stats(): Readonly<TsMuxerStats> {
    return this.#encoder.stats;
  }
}
