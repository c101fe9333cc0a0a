/**
 * The MPEG-TS muxer as a Web Streams transform.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { TsEncoder, type TsEncoderOptions, type TsEncoderStats } from "./encoder.ts";

/** Options of {@linkcode TsMuxer}: those of the encoder plus output chunking. */
export interface TsMuxerOptions extends TsEncoderOptions {
  /**
   * Hold output until a chunk has at least this many bytes (default 0: one
   * chunk per frame, for live output). Frames written one after another sit
   * next to each other in memory, so larger chunks cost no copy; use e.g.
   * 256 KiB when writing files, where every write has a fixed cost.
   */
  minChunkSize?: number;
}

/**
 * Muxes {@linkcode MediaFrame}s into an MPEG transport stream: by default
 * one output chunk per written frame, always a whole number of 188-byte
 * packets. See {@linkcode TsEncoder} for what is written; bad frames are
 * dropped and counted in {@linkcode TsMuxer.stats}, never thrown. Chunks are
 * views that may share an `ArrayBuffer` with other chunks: do not transfer
 * their buffers.
 *
 * @example Subscribe a stream and write a .ts file
 * ```ts ignore
 * import { TsMuxer } from "@arcly/stream/ts";
 *
 * const file = await Deno.open("out.ts", { write: true, create: true });
 * await handle.subscribe({ replay: true })
 *   .pipeThrough(new TsMuxer({ minChunkSize: 256 * 1024 }))
 *   .pipeTo(file.writable);
 * ```
 */
export class TsMuxer extends TransformStream<MediaFrame, Uint8Array> {
  readonly #encoder: TsEncoder;

  /** Creates a muxer; see {@linkcode TsMuxerOptions}. */
  constructor(options: TsMuxerOptions = {}) {
    const encoder = new TsEncoder(options);
    const min = options.minChunkSize ?? 0;
    let held: Uint8Array | undefined;
    const push = (out: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>) => {
      if (held && held.buffer === out.buffer && held.byteOffset + held.length === out.byteOffset) {
        held = new Uint8Array(out.buffer, held.byteOffset, held.length + out.length);
      } else {
        if (held) controller.enqueue(held);
        held = out;
      }
      if (held.length >= min) {
        controller.enqueue(held);
        held = undefined;
      }
    };
    super({
      transform(frame, controller) {
        const out = encoder.encode(frame);
        if (out) push(out, controller);
      },
      flush(controller) {
        const out = encoder.flush();
        if (out) push(out, controller);
        if (held) controller.enqueue(held);
      },
    });
    this.#encoder = encoder;
  }

  /** Counters so far (a live view). */
  get stats(): Readonly<TsEncoderStats> {
    return this.#encoder.stats;
  }
}
