/**
 * A streaming FLV muxer: {@linkcode MediaFrame}s in, bytes out.
 *
 * @module
 */

import { FrameFlags, type MediaFrame } from "../../bus/frame.ts";
import { type Amf0Object, encodeAmf0 } from "./amf0.ts";
import {
  audioTagBodySize,
  FlvTagType,
  videoTagBodySize,
  writeAudioTagBody,
  writeVideoTagBody,
} from "./tag.ts";

/** Options of {@linkcode FlvWriter}. */
export interface FlvWriterOptions {
  /**
   * Whether the header announces video. When neither `hasVideo` nor
   * `hasAudio` is given, both are inferred from the first frames (up to one
   * frame of each kind, 64 frames or 1 s, whichever comes first); when only
   * one is given, the other is `false`.
   */
  hasVideo?: boolean;
  /** Whether the header announces audio; see `hasVideo`. */
  hasAudio?: boolean;
  /** Written as an `onMetaData` script tag (an ECMA array) right after the header. */
  metadata?: Amf0Object;
}

const TAG_HEADER = 11;
const PREVIOUS_TAG_SIZE = 4;
const INFER_MAX_FRAMES = 64;
const INFER_MAX_SPAN = 90_000;
const TWO_32 = 2 ** 32;

/**
 * Muxes frames into an FLV byte stream: header, optional `onMetaData`,
 * sequence headers from `CONFIG` frames, one tag per frame (one output chunk
 * per tag). H.264 and AAC use the legacy tags; H.265 and AV1 use Enhanced
 * FLV (`hvc1`, `av01`), Opus the Enhanced FLV audio header. Tag timestamps
 * are `dts / 90` wrapped to 32 bits, composition time `(pts - dts) / 90`.
 * Only the first track of each kind is written; frames of other tracks are
 * dropped. A frame FLV cannot carry errors the stream with a `RangeError`.
 *
 * @example Write frames to a file
 * ```ts
 * import type { MediaFrame } from "../../bus/frame.ts";
 * import { FlvWriter } from "./writer.ts";
 *
 * async function save(frames: ReadableStream<MediaFrame>, path: string): Promise<void> {
 *   const file = await Deno.create(path);
 *   await frames.pipeThrough(new FlvWriter({ hasVideo: true, hasAudio: true })).pipeTo(file.writable);
 * }
 * ```
 */
export class FlvWriter extends TransformStream<MediaFrame, Uint8Array> {
  /** Makes a writer; see {@linkcode FlvWriterOptions}. */
  constructor(options: FlvWriterOptions = {}) {
    const muxer = new FlvMuxer(options);
    super({
      transform: (frame, controller) => muxer.push(frame, controller),
      flush: (controller) => muxer.end(controller),
    });
  }
}

class FlvMuxer {
  #options: FlvWriterOptions;
  #started = false;
  #pending: MediaFrame[] = [];
  #tracks = new FlvTrackSelector();

  constructor(options: FlvWriterOptions) {
    this.#options = options;
  }

  push(frame: MediaFrame, controller: TransformStreamDefaultController<Uint8Array>): void {
    if (this.#started) return this.#write(frame, controller);
    const { hasVideo, hasAudio } = this.#options;
    if (hasVideo !== undefined || hasAudio !== undefined) {
      this.#start(controller, hasVideo ?? false, hasAudio ?? false);
      return this.#write(frame, controller);
    }
    const pending = this.#pending;
    pending.push(frame);
    const video = pending.some((f) => f.kind === "video");
    const audio = pending.some((f) => f.kind === "audio");
    if (
      (video && audio) || pending.length >= INFER_MAX_FRAMES ||
      frame.dts - pending[0].dts >= INFER_MAX_SPAN
    ) {
      this.#start(controller, video, audio);
    }
  }

  end(controller: TransformStreamDefaultController<Uint8Array>): void {
    if (this.#started) return;
    const { hasVideo, hasAudio } = this.#options;
    const inferred = hasVideo === undefined && hasAudio === undefined;
    this.#start(
      controller,
      inferred ? this.#pending.some((f) => f.kind === "video") : hasVideo ?? false,
      inferred ? this.#pending.some((f) => f.kind === "audio") : hasAudio ?? false,
    );
  }

  #start(
    controller: TransformStreamDefaultController<Uint8Array>,
    video: boolean,
    audio: boolean,
  ): void {
    this.#started = true;
    controller.enqueue(flvHeader(video, audio));
    if (this.#options.metadata) {
      const body = encodeAmf0("onMetaData", new Map(Object.entries(this.#options.metadata)));
      const tag = tagBuffer(FlvTagType.SCRIPT, body.length, 0);
      tag.set(body, TAG_HEADER);
      controller.enqueue(tag);
    }
    const pending = this.#pending;
    this.#pending = [];
    for (const f of pending) this.#write(f, controller);
  }

  #write(frame: MediaFrame, controller: TransformStreamDefaultController<Uint8Array>): void {
    if (this.#tracks.accepts(frame)) controller.enqueue(flvTag(frame));
  }
}

/** A tag buffer with its header and trailing PreviousTagSize filled in. */
function tagBuffer(type: number, size: number, dts: number): Uint8Array {
  if (size > 0xffffff) throw new RangeError(`FLV tag body of ${size} bytes exceeds 16 MiB`);
  const ms = ((Math.round(dts / 90) % TWO_32) + TWO_32) % TWO_32;
  const tag = new Uint8Array(TAG_HEADER + size + PREVIOUS_TAG_SIZE);
  tag[0] = type;
  tag[1] = size >>> 16;
  tag[2] = (size >>> 8) & 0xff;
  tag[3] = size & 0xff;
  tag[4] = (ms >>> 16) & 0xff;
  tag[5] = (ms >>> 8) & 0xff;
  tag[6] = ms & 0xff;
  tag[7] = ms >>> 24;
  const total = TAG_HEADER + size;
  tag[total] = total >>> 24;
  tag[total + 1] = (total >>> 16) & 0xff;
  tag[total + 2] = (total >>> 8) & 0xff;
  tag[total + 3] = total & 0xff;
  return tag;
}

/**
 * The 13 bytes an FLV stream starts with: the header and PreviousTagSize0.
 *
 * @example
 * ```ts
 * import { flvHeader } from "@arcly/stream/flv";
 *
 * flvHeader(true, true)[4]; // 5: audio and video
 * ```
 */
export function flvHeader(video: boolean, audio: boolean): Uint8Array {
  return new Uint8Array([
    0x46,
    0x4c,
    0x56,
    1,
    (audio ? 4 : 0) | (video ? 1 : 0),
    0,
    0,
    0,
    9,
    0,
    0,
    0,
    0,
  ]);
}

/**
 * One frame as an FLV tag followed by its PreviousTagSize, as {@linkcode FlvWriter} writes
 * it: the same bytes for every reader, so a server can encode a frame once for all of them.
 * A frame FLV cannot carry throws `RangeError`.
 *
 * @example
 * ```ts
 * import { flvTag } from "@arcly/stream/flv";
 *
 * const tag = flvTag({ track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0, flags: 0, data: new Uint8Array(4) });
 * tag[0]; // 8: an audio tag
 * ```
 */
export function flvTag(frame: MediaFrame): Uint8Array {
  const video = frame.kind === "video";
  const size = video ? videoTagBodySize(frame) : audioTagBodySize(frame);
  const tag = tagBuffer(video ? FlvTagType.VIDEO : FlvTagType.AUDIO, size, frame.dts);
  if (video) writeVideoTagBody(frame, tag, TAG_HEADER);
  else writeAudioTagBody(frame, tag, TAG_HEADER);
  return tag;
}

/**
 * Which frames of a stream go into FLV: the first track of each kind (frames of other
 * tracks are left out) and no MP3 `CONFIG` frame (FLV has no MP3 sequence header).
 *
 * @example
 * ```ts
 * import { FlvTrackSelector } from "@arcly/stream/flv";
 *
 * const tracks = new FlvTrackSelector();
 * const audio = (track: number) => ({ track, kind: "audio", codec: "aac", pts: 0, dts: 0, flags: 0, data: new Uint8Array(1) }) as const;
 * [tracks.accepts(audio(1)), tracks.accepts(audio(2))]; // [true, false]
 * ```
 */
export class FlvTrackSelector {
  #videoTrack = -1;
  #audioTrack = -1;

  /** Whether `frame` is written; the first frame of a kind picks that kind's track. */
  accepts(frame: MediaFrame): boolean {
    if (frame.kind === "video") {
      if (this.#videoTrack < 0) this.#videoTrack = frame.track;
      return frame.track === this.#videoTrack;
    }
    if (this.#audioTrack < 0) this.#audioTrack = frame.track;
    if (frame.track !== this.#audioTrack) return false;
    return !(frame.codec === "mp3" && (frame.flags & FrameFlags.CONFIG));
  }
}
