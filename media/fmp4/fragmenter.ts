/**
 * Media fragments (`moof` + `mdat`) for fragmented MP4 / CMAF.
 *
 * @module
 */

import { CLOCK_RATE, FrameFlags, hasFlag, type MediaFrame } from "../../bus/frame.ts";
import { opusPacketSamples } from "../codec/opus.ts";
import { BoxWriter } from "./box.ts";
import { buildInitSegment } from "./init.ts";
import type { Fmp4Track } from "./track.ts";

/** Options of {@linkcode Fmp4Fragmenter}. */
export interface Fmp4FragmenterOptions {
  /**
   * 90 kHz ticks added to every `dts` before it becomes a decode time; decode
   * times must not be negative. Default 0.
   */
  timeOffset?: number;
  /** The `mfhd` sequence number of the first fragment. Default 1. */
  sequenceNumber?: number;
}

/** `sample_flags` of a sync sample: depends on no other sample. */
const SYNC_SAMPLE = 0x02000000;
/** `sample_flags` of a non-sync sample: depends on others, is_non_sync_sample. */
const NON_SYNC_SAMPLE = 0x01010000;
/** `tfhd` flag: base data offset is the start of the `moof`. */
const DEFAULT_BASE_IS_MOOF = 0x020000;
/** `trun` flags: data offset, then per sample duration, size, flags (and composition offset). */
const TRUN_AUDIO = 0x000701;
const TRUN_VIDEO = 0x000f01;

const MFHD_SIZE = 16;
const TRAF_FIXED_SIZE = 8 + 16 + 20 + 20; // traf, tfhd, tfdt v1, trun header

class TrackState {
  readonly info: Fmp4Track;
  readonly video: boolean;
  readonly samples: MediaFrame[] = [];
  /** Audio: the duration of each queued sample, in timescale units. */
  readonly durations: number[] = [];
  /** Audio: where the next sample is expected, in timescale units (NaN: not anchored). */
  nextTime = NaN;
  /** Audio: the decode time of the first queued sample. */
  baseTime = 0;
  /** Video: the duration of the last sample written, reused when the next dts is unknown. */
  lastDuration = 0;
  /**
   * Video: the first sample's composition offset (pts - dts), added to every decode
   * time and taken off every composition offset (NaN: not known yet).
   */
  delay = NaN;

  constructor(info: Fmp4Track) {
    this.info = info;
    this.video = info.kind === "video";
  }

  get sampleSize(): number {
    return this.video ? 16 : 12;
  }
}

/**
 * Turns frames into fMP4 fragments: queue frames with {@linkcode Fmp4Fragmenter.push},
 * then {@linkcode Fmp4Fragmenter.flush} writes one `moof` (`mfhd`, and per track a
 * `traf` with `tfhd` default-base-is-moof, `tfdt` version 1 and a `trun` with
 * per-sample duration, size, flags and signed composition offsets) and its `mdat`.
 *
 * Video decode times are the 90 kHz `dts` plus the first frame's composition
 * offset, and composition offsets (signed) are reduced by it: presentation
 * times stay the `pts`, and the first frame is presented at its decode time, as
 * CMAF wants and players aligning fragments on `tfdt` (hls.js) need. A video
 * sample lasts until the next sample's `dts` (the last one until the `nextDts`
 * given to `flush`). Audio
 * durations come from sample counts (AAC samples per frame, Opus TOC), not from
 * timestamps; when a frame's `dts` is off the count by more than half a frame
 * (lost frames, a clock jump), the timeline moves by whole frames: at a fragment
 * start through `tfdt`, inside a fragment by lengthening the previous sample.
 *
 * @example Fragment one GOP at a time
 * ```ts
 * import { Fmp4Fragmenter, trackFromConfig } from "@arcly/stream/fmp4";
 * import { FrameFlags, type MediaFrame } from "@arcly/stream";
 *
 * const audioConfig: MediaFrame = {
 *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
 *   flags: FrameFlags.CONFIG, data: new Uint8Array([0x11, 0x90]),
 * };
 * const fragmenter = new Fmp4Fragmenter([trackFromConfig(audioConfig)]);
 * const init = fragmenter.initSegment();
 * fragmenter.push({ ...audioConfig, flags: 0, data: new Uint8Array(200) });
 * const fragment = fragmenter.flush(); // moof + mdat
 * ```
 */
export class Fmp4Fragmenter {
  /** The tracks, in file order. */
  readonly tracks: readonly Fmp4Track[];
  #states: TrackState[];
  #byTrack = new Map<number, TrackState>();
  #offset: number;
  #sequence: number;
  #init?: Uint8Array;

  /**
   * Makes a fragmenter for `tracks`.
   *
   * @param tracks the tracks; their frames are told apart by {@linkcode MediaFrame.track}
   * @param options time offset and first sequence number
   * @throws {RangeError} when `tracks` is empty or has duplicate track numbers.
   */
  constructor(tracks: readonly Fmp4Track[], options: Fmp4FragmenterOptions = {}) {
    if (tracks.length === 0) throw new RangeError("a fragmenter needs at least one track");
    this.tracks = tracks;
    this.#states = tracks.map((t) => new TrackState(t));
    for (const s of this.#states) this.#byTrack.set(s.info.track, s);
    if (this.#byTrack.size !== tracks.length) throw new RangeError("duplicate track numbers");
    this.#offset = options.timeOffset ?? 0;
    this.#sequence = options.sequenceNumber ?? 1;
  }

  /** The initialization segment for {@linkcode Fmp4Fragmenter.tracks} (built once). */
  initSegment(): Uint8Array {
    return this.#init ??= buildInitSegment(this.tracks);
  }

  /** How many samples are queued for the next fragment. */
  get pending(): number {
    let n = 0;
    for (const s of this.#states) n += s.samples.length;
    return n;
  }

  /**
   * Queues one media frame (not a CONFIG frame) for the next fragment. The frame
   * is referenced, not copied, until {@linkcode Fmp4Fragmenter.flush}.
   *
   * @throws {TypeError} for a CONFIG frame or a frame of an unknown track.
   * @throws {RangeError} when its decode time would be negative.
   */
  push(frame: MediaFrame): void {
    const s = this.#byTrack.get(frame.track);
    if (s === undefined) throw new TypeError(`frame of unknown track ${frame.track}`);
    if (hasFlag(frame, FrameFlags.CONFIG)) {
      throw new TypeError(`track ${frame.track}: CONFIG frames are not samples`);
    }
    const dts = frame.dts + this.#offset;
    if (dts < 0) throw new RangeError(`track ${frame.track}: negative decode time ${dts}`);
    if (!s.video) this.#timeAudio(s, dts, frame.data);
    else if (Number.isNaN(s.delay)) s.delay = Math.max(0, frame.pts - frame.dts);
    s.samples.push(frame);
  }

  /**
   * Starts the timing afresh from the next frames (after a timestamp
   * discontinuity): audio re-anchors on their `dts`, video takes their
   * composition delay.
   */
  resetTiming(): void {
    for (const s of this.#states) {
      if (s.samples.length > 0) continue;
      s.nextTime = NaN;
      s.delay = NaN;
    }
  }

  /**
   * Writes the queued samples as one fragment and empties the queue.
   *
   * @param nextDts the `dts` (90 kHz) of the video frame that follows the queued
   *   ones; without it the last video sample repeats the previous duration.
   * @returns `moof` + `mdat` in one new buffer, or `undefined` when nothing is queued.
   */
  flush(nextDts?: number): Uint8Array | undefined {
    const chunks = this.flushChunks(nextDts);
    if (chunks === undefined) return undefined;
    let size = 0;
    for (const c of chunks) size += c.byteLength;
    const w = new BoxWriter(new Uint8Array(size));
    for (const c of chunks) w.write(c);
    return w.bytes;
  }

  /**
   * Like {@linkcode Fmp4Fragmenter.flush}, without copying the samples: the
   * fragment comes as chunks to store back to back, a new buffer holding the
   * `moof` and the `mdat` header, then the `data` of every queued frame as it
   * was pushed (the caller must keep those bytes unchanged until it has used
   * the chunks).
   *
   * @example Write a fragment with one write per chunk
   * ```ts
   * import { Fmp4Fragmenter, trackFromConfig } from "@arcly/stream/fmp4";
   * import { FrameFlags, type MediaFrame } from "@arcly/stream";
   *
   * const config: MediaFrame = {
   *   track: 1, kind: "audio", codec: "aac", pts: 0, dts: 0,
   *   flags: FrameFlags.CONFIG, data: new Uint8Array([0x11, 0x90]),
   * };
   * const fragmenter = new Fmp4Fragmenter([trackFromConfig(config)]);
   * const sample = new Uint8Array(200);
   * fragmenter.push({ ...config, flags: 0, data: sample });
   * const [head, ...samples] = fragmenter.flushChunks()!; // moof + mdat header, then `sample`
   * ```
   */
  flushChunks(nextDts?: number): Uint8Array[] | undefined {
    let moofSize = 8 + MFHD_SIZE;
    let dataSize = 0;
    let count = 0;
    for (const s of this.#states) {
      if (s.samples.length === 0) continue;
      count += s.samples.length;
      moofSize += TRAF_FIXED_SIZE + s.samples.length * s.sampleSize;
      for (const f of s.samples) dataSize += f.data.byteLength;
    }
    if (count === 0) return undefined;
    const mdatSize = 8 + dataSize;
    if (mdatSize > 0xffff_ffff) throw new RangeError("fragment larger than 4 GiB");

    const w = new BoxWriter(new Uint8Array(moofSize + 8));
    const moof = w.begin("moof");
    const mfhd = w.beginFull("mfhd", 0, 0);
    w.u32(this.#sequence++);
    w.end(mfhd);
    let dataOffset = moofSize + 8;
    for (const s of this.#states) {
      if (s.samples.length === 0) continue;
      this.#writeTraf(w, s, dataOffset, nextDts);
      for (const f of s.samples) dataOffset += f.data.byteLength;
    }
    w.end(moof);
    w.u32(mdatSize);
    w.fourcc("mdat");
    const chunks = [w.bytes];
    for (const s of this.#states) {
      for (const f of s.samples) chunks.push(f.data);
      s.samples.length = 0;
      s.durations.length = 0;
    }
    return chunks;
  }

  #timeAudio(s: TrackState, dts: number, data: Uint8Array): void {
    const count = s.info.samplesPerFrame || opusPacketSamples(data);
    const time = Math.round(dts * s.info.timescale / CLOCK_RATE);
    const n = s.samples.length;
    if (Number.isNaN(s.nextTime)) s.nextTime = time;
    // Off by more than half a frame: frames were lost (or the clock jumped). Skip whole frames.
    const skip = Math.abs(time - s.nextTime) > count / 2
      ? Math.round((time - s.nextTime) / count) * count
      : 0;
    if (n === 0) {
      s.nextTime += skip;
      s.baseTime = s.nextTime;
    } else if (skip > 0) {
      // Within a fragment only a gap can be written: the previous sample lasts longer.
      s.durations[n - 1] += skip;
      s.nextTime += skip;
    }
    s.durations.push(count);
    s.nextTime += count;
  }

  #writeTraf(w: BoxWriter, s: TrackState, dataOffset: number, nextDts?: number): void {
    const samples = s.samples;
    const traf = w.begin("traf");
    const tfhd = w.beginFull("tfhd", 0, DEFAULT_BASE_IS_MOOF);
    w.u32(s.info.track + 1);
    w.end(tfhd);
    const tfdt = w.beginFull("tfdt", 1, 0);
    w.u64(s.video ? samples[0].dts + this.#offset + s.delay : s.baseTime);
    w.end(tfdt);
    const trun = w.beginFull("trun", s.video ? 1 : 0, s.video ? TRUN_VIDEO : TRUN_AUDIO);
    w.u32(samples.length);
    w.i32(dataOffset);
    for (let i = 0; i < samples.length; i++) {
      const f = samples[i];
      if (s.video) {
        const next = i + 1 < samples.length ? samples[i + 1].dts : nextDts;
        if (next !== undefined) s.lastDuration = Math.max(0, next - f.dts);
        w.u32(s.lastDuration);
      } else {
        w.u32(s.durations[i]);
      }
      w.u32(f.data.byteLength);
      w.u32(s.video && !hasFlag(f, FrameFlags.KEYFRAME) ? NON_SYNC_SAMPLE : SYNC_SAMPLE);
      if (s.video) w.i32(f.pts - f.dts - s.delay);
    }
    w.end(trun);
    w.end(traf);
  }
}
