/**
 * The synchronous core of the FLV reader: bytes in, {@linkcode MediaFrame}s out.
 *
 * @module
 */

import type { MediaFrame } from "../../bus/frame.ts";
import { type Amf0Object, type Amf0Value, decodeAmf0 } from "./amf0.ts";
import { FlvTagDecoder, FlvTagType } from "./tag.ts";
import { TimestampUnwrapper } from "../codec/timestamp.ts";

/** Options of {@linkcode FlvDecoder} and {@linkcode FlvReader}. */
export interface FlvDecoderOptions {
  /** Called with the `onMetaData` script data (ECMA array or object) of the stream. */
  onMetaData?: (metadata: Amf0Object) => void;
  /** Tags with a larger body make the stream error (default 16 MiB). */
  maxTagSize?: number;
  /** Track number of video frames (default 0). */
  videoTrack?: number;
  /** Track number of audio frames (default 1). */
  audioTrack?: number;
}

/** The default {@linkcode FlvDecoderOptions.maxTagSize}. */
export const FLV_MAX_TAG_SIZE = 16 * 1024 * 1024;

const FLV_HEADER_SIZE = 9;
/** PreviousTagSize (4) + tag header (11). */
const TAG_HEADER_SIZE = 15;
const MAX_HEADER_SKIP = 1 << 20;

const State = { Header: 0, Skip: 1, Tag: 2, Body: 3 } as const;
type State = typeof State[keyof typeof State];

/**
 * Demuxes an FLV byte stream into frames, one chunk at a time with chunk
 * boundaries anywhere: AVC/HEVC/AV1 video (legacy and Enhanced FLV),
 * AAC/MP3/Opus audio, sequence headers as `CONFIG` frames, composition time
 * applied to `pts`, 32-bit timestamps unwrapped, payloads with 4-byte NAL
 * lengths. A tag inside one chunk is passed on as a view into it; a tag
 * spanning chunks is assembled into its own buffer, so once
 * {@linkcode FlvDecoder.decode} returns the decoder holds no reference to the
 * chunk (the frames may). This is the engine of {@linkcode FlvReader}; use it
 * directly to drive the reading yourself. Bad input (wrong signature, an
 * oversized or malformed tag, truncation) throws a `RangeError`.
 *
 * @example Count the frames of a file, reading it into one reused buffer
 * ```ts
 * import { FlvDecoder } from "@arcly/stream/flv";
 *
 * function countFrames(path: string): number {
 *   using file = Deno.openSync(path);
 *   const decoder = new FlvDecoder();
 *   const chunk = new Uint8Array(65536); // reusable: the frames are counted, not kept
 *   let frames = 0;
 *   for (let n; (n = file.readSync(chunk)) !== null;) {
 *     decoder.decode(chunk.subarray(0, n), () => frames++);
 *   }
 *   decoder.flush();
 *   return frames;
 * }
 * ```
 */
export class FlvDecoder {
  #state: State = State.Header;
  #need = FLV_HEADER_SIZE;
  #scratch = new Uint8Array(TAG_HEADER_SIZE);
  #partial: Uint8Array = this.#scratch;
  #have = 0;
  /** Stream offset of the next unconsumed byte. */
  #offset = 0;
  #tagType = 0;
  #tagTime = 0;
  #tagOffset = 0;
  #decoder: FlvTagDecoder;
  #time = new TimestampUnwrapper();
  #maxTagSize: number;
  #onMetaData?: (metadata: Amf0Object) => void;

  /** Makes a decoder; see {@linkcode FlvDecoderOptions}. */
  constructor(options: FlvDecoderOptions = {}) {
    this.#decoder = new FlvTagDecoder(options);
    this.#maxTagSize = options.maxTagSize ?? FLV_MAX_TAG_SIZE;
    this.#onMetaData = options.onMetaData;
  }

  /**
   * Decodes `chunk`, the next bytes of the stream, calling `emit` with each
   * frame completed in it.
   *
   * @throws {RangeError} for input that is not FLV or a malformed tag.
   */
  decode(chunk: Uint8Array, emit: (frame: MediaFrame) => void): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.#state === State.Skip) {
        const n = Math.min(this.#need, len - pos);
        pos += n;
        this.#offset += n;
        this.#need -= n;
        if (this.#need === 0) this.#expect(State.Tag, TAG_HEADER_SIZE);
        continue;
      }
      let block: Uint8Array;
      if (this.#have === 0 && len - pos >= this.#need) {
        block = chunk.subarray(pos, pos + this.#need);
        pos += this.#need;
      } else {
        if (this.#have === 0 && this.#state === State.Body) {
          this.#partial = new Uint8Array(this.#need);
        }
        const n = Math.min(this.#need - this.#have, len - pos);
        this.#partial.set(chunk.subarray(pos, pos + n), this.#have);
        this.#have += n;
        pos += n;
        if (this.#have < this.#need) break;
        block = this.#partial.subarray(0, this.#need);
        this.#have = 0;
        this.#partial = this.#scratch;
      }
      this.#offset += block.length;
      this.#consume(block, emit);
    }
  }

  /**
   * Checks that the stream ended between tags.
   *
   * @throws {RangeError} when it ended inside a header or a tag.
   */
  flush(): void {
    const clean = this.#state === State.Tag && (this.#have === 0 || this.#have === 4);
    const empty = this.#state === State.Header && this.#have === 0 && this.#offset === 0;
    if (clean || empty) return;
    const where = this.#state === State.Body
      ? `in the body of the tag at byte ${this.#tagOffset}`
      : this.#state === State.Tag
      ? `in a tag header at byte ${this.#offset}`
      : "in the file header";
    throw new RangeError(`FLV truncated ${where}`);
  }

  #expect(state: State, need: number): void {
    this.#state = state;
    this.#need = need;
  }

  #consume(block: Uint8Array, emit: (frame: MediaFrame) => void): void {
    switch (this.#state) {
      case State.Header: {
        if (block[0] !== 0x46 || block[1] !== 0x4c || block[2] !== 0x56) {
          throw new RangeError("not an FLV stream (the 'FLV' signature is missing)");
        }
        const size = u32(block, 5);
        if (size < FLV_HEADER_SIZE || size > MAX_HEADER_SKIP) {
          throw new RangeError(`FLV header size ${size} is invalid`);
        }
        if (size === FLV_HEADER_SIZE) this.#expect(State.Tag, TAG_HEADER_SIZE);
        else this.#expect(State.Skip, size - FLV_HEADER_SIZE);
        return;
      }
      case State.Tag: {
        // block[0..3]: PreviousTagSize, not checked (writers disagree on it)
        this.#tagOffset = this.#offset - 11;
        this.#tagType = block[4] & 0x1f;
        const size = (block[5] << 16) | (block[6] << 8) | block[7];
        if ((block[4] & 0x20) !== 0) {
          throw new RangeError(`FLV tag at byte ${this.#tagOffset} is encrypted (filtered)`);
        }
        if (size > this.#maxTagSize) {
          throw new RangeError(
            `FLV tag at byte ${this.#tagOffset} is ${size} bytes, over the ${this.#maxTagSize} byte limit`,
          );
        }
        const raw = ((block[11] << 24) | (block[8] << 16) | (block[9] << 8) | block[10]) >>> 0;
        this.#tagTime = this.#time.unwrap(raw);
        if (size === 0) this.#expect(State.Tag, TAG_HEADER_SIZE);
        else this.#expect(State.Body, size);
        return;
      }
      case State.Body: {
        this.#expect(State.Tag, TAG_HEADER_SIZE);
        let frame: MediaFrame | undefined;
        try {
          if (this.#tagType === FlvTagType.VIDEO) {
            frame = this.#decoder.decodeVideo(block, this.#tagTime);
          } else if (this.#tagType === FlvTagType.AUDIO) {
            frame = this.#decoder.decodeAudio(block, this.#tagTime);
          } else if (this.#tagType === FlvTagType.SCRIPT) {
            this.#script(block);
          }
        } catch (e) {
          if (!(e instanceof RangeError)) throw e;
          throw new RangeError(`FLV tag at byte ${this.#tagOffset}: ${e.message}`, { cause: e });
        }
        if (frame) emit(frame);
        return;
      }
    }
  }

  /** Passes `onMetaData` (plain or inside `@setDataFrame`) to the callback; other script data is ignored. */
  #script(body: Uint8Array): void {
    if (!this.#onMetaData) return;
    let values: Amf0Value[];
    try {
      values = decodeAmf0(body);
    } catch {
      return; // undecodable script data carries nothing we need; media goes on
    }
    const at = values.indexOf("onMetaData");
    if (at < 0) return;
    const meta = values[at + 1];
    if (meta instanceof Map) this.#onMetaData(Object.fromEntries(meta));
    else if (
      meta !== null && typeof meta === "object" && !Array.isArray(meta) && !(meta instanceof Date)
    ) {
      this.#onMetaData(meta);
    }
  }
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
