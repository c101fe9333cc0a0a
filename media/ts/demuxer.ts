/**
 * The MPEG-TS demuxer as a Web Streams transform.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { TsDecoder, type TsDecoderOptions, type TsDecoderStats } from "./decoder.ts";

/**
 * Demuxes an MPEG transport stream into {@linkcode MediaFrame}s; chunk
 * boundaries may fall anywhere. See {@linkcode TsDecoder} for what comes
 * out. Garbage is skipped and counted in {@linkcode TsDemuxer.stats}; only
 * input that is not MPEG-TS at all errors the stream.
 *
 * @example Demux a file
 * ```ts ignore
 * import { TsDemuxer } from "@arcly/stream/ts";
 *
 * const file = await Deno.open("in.ts");
 * for await (const frame of file.readable.pipeThrough(new TsDemuxer())) {
 *   console.log(frame.kind, frame.pts, frame.data.length);
 * }
 * ```
 */
export class TsDemuxer extends TransformStream<Uint8Array, MediaFrame> {
  readonly #decoder: TsDecoder;

  /** Creates a demuxer; see {@linkcode TsDecoderOptions}. */
  constructor(options?: TsDecoderOptions) {
    const decoder = new TsDecoder(options);
    super({
      transform(chunk, controller) {
        try {
          decoder.decode(chunk, (frame) => controller.enqueue(frame));
        } catch (e) {
          controller.error(e);
        }
      },
      flush(controller) {
        decoder.flush((frame) => controller.enqueue(frame));
      },
    });
    this.#decoder = decoder;
  }

  /** Counters so far (a live view). */
  get stats(): Readonly<TsDecoderStats> {
    return this.#decoder.stats;
  }
}
