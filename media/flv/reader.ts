/**
 * A streaming FLV demuxer: bytes in, {@linkcode MediaFrame}s out.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { FlvDecoder, type FlvDecoderOptions } from "./decoder.ts";

/**
 * Demuxes an FLV byte stream into frames as a Web Streams transform; chunk
 * boundaries may fall anywhere. See {@linkcode FlvDecoder} for what comes
 * out. Bad input (wrong signature, an oversized or malformed tag,
 * truncation) errors the stream with a `RangeError`.
 *
 * @example Read an FLV file
 * ```ts
 * import { FlvReader } from "./reader.ts";
 *
 * async function count(path: string): Promise<number> {
 *   using file = await Deno.open(path);
 *   let n = 0;
 *   const reader = new FlvReader({ onMetaData: (m) => console.log(m.width, m.height) });
 *   for await (const _frame of file.readable.pipeThrough(reader)) n++;
 *   return n;
 * }
 * ```
 */
export class FlvReader extends TransformStream<Uint8Array, MediaFrame> {
  /** Makes a reader; see {@linkcode FlvDecoderOptions}. */
  constructor(options: FlvDecoderOptions = {}) {
    const decoder = new FlvDecoder(options);
    super({
      transform: (chunk, controller) => decoder.decode(chunk, (f) => controller.enqueue(f)),
      flush: () => decoder.flush(),
    });
  }
}
