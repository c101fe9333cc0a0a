/**
 * A stream's MPEG-TS for its SRT readers, muxed once per stream: one muxer, whose packets
 * for each frame (with the stream's continuity counters, PAT/PMT before every video
 * keyframe) every reader sends. Hosted by the stream as the derived form `"ts"`.
 */

import { EncodedFrames, type MediaFrame, type StreamHandle } from "../../mod.ts";
import { TsEncoder } from "../../media/ts/mod.ts";

const NOTHING = new Uint8Array(0);

/** The derived form's name: {@linkcode StreamHandle.derive}`("ts", ...)`. */
export const STREAM_TS_FORM = "ts";

/**
 * One stream's MPEG-TS, shared by its readers. A muxer's output depends on what it took
 * before (continuity counters, PCR, tables), so it must take the frames in the stream's
 * order, whichever reader is where: a background subscription of its own feeds it every
 * frame, from the replay on, as soon as the frame is published, and a reader that reaches
 * a frame first (within the turn it was published in) muxes it then, in its order.
 */
export class StreamTs {
  readonly #encoder = new TsEncoder();
  readonly #frames = new EncodedFrames((frame) => this.#encoder.encode(frame) ?? NOTHING);
  readonly #feed: ReadableStreamDefaultReader<MediaFrame>;
  #holders = 0;
  /** What the muxer still held when the stream ended; `null` until asked for. */
  #tail: Uint8Array | null = null;

  /** Mux `handle`'s frames, from its replay buffer on, until the last holder leaves. */
  constructor(handle: StreamHandle) {
    this.#feed = handle.subscribe({ replay: true, background: true }).getReader();
    void this.#follow();
  }

  /** A reader takes the shared bytes; see {@linkcode StreamTs.leave}. */
  hold(): void {
    this.#holders++;
  }

  /** A reader is done with them; the last one stops the muxing. */
  leave(): void {
    if (--this.#holders === 0) void this.#feed.cancel();
  }

  /**
   * The packets of `frame` (empty for a CONFIG frame or one the muxer holds while it
   * probes the program: those come with a later frame).
   */
  bytes(frame: MediaFrame): Uint8Array {
    return this.#frames.get(frame);
  }

  /** The PAT and PMT as last muxed, for a reader whose first packets carry none. */
  tables(): Uint8Array | undefined {
    return this.#encoder.tables();
  }

  /** Once the stream has ended: what the muxer still held (the same bytes for every reader). */
  tail(): Uint8Array {
    this.#tail ??= this.#encoder.flush() ?? NOTHING;
    return this.#tail;
  }

  async #follow(): Promise<void> {
    for (;;) {
      const { value, done } = await this.#feed.read();
      if (done) return;
      this.#frames.get(value);
    }
  }
}
