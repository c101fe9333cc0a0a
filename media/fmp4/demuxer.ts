/**
 * The fMP4 demuxer: an initialization segment and media segments (`moof` + `mdat`) back to
 * {@linkcode MediaFrame}s.
 *
 * @module
 */

import { CLOCK_RATE, FrameFlags, type MediaFrame } from "../../bus/frame.ts";
import { toFourByteLengths } from "../codec/nal.ts";
import { BoxCursor, type BoxSpan, forEachBox, printable } from "./_box_reader.ts";
import { type InitTrack, readInitTracks, type SampleDefaults } from "./_init_reader.ts";

/** Counters kept by {@linkcode Fmp4Demuxer}. */
export interface Fmp4DemuxerStats {
  /** Media frames emitted. */
  frames: number;
  /** Samples dropped: of a track not delivered, empty, or with NAL lengths that do not add up. */
  droppedSamples: number;
  /** `moof` boxes with no `mdat` after them (their samples are lost). */
  orphanFragments: number;
}

/** `tfhd` flags (ISO/IEC 14496-12 8.8.7.1). */
const TFHD_BASE_DATA_OFFSET = 0x000001;
const TFHD_DESCRIPTION_INDEX = 0x000002;
const TFHD_DEFAULT_DURATION = 0x000008;
const TFHD_DEFAULT_SIZE = 0x000010;
const TFHD_DEFAULT_FLAGS = 0x000020;
const TFHD_DEFAULT_BASE_IS_MOOF = 0x020000;
/** `trun` flags (8.8.8.1). */
const TRUN_DATA_OFFSET = 0x000001;
const TRUN_FIRST_SAMPLE_FLAGS = 0x000004;
const TRUN_DURATION = 0x000100;
const TRUN_SIZE = 0x000200;
const TRUN_FLAGS = 0x000400;
const TRUN_COMPOSITION_OFFSET = 0x000800;
/** `sample_is_non_sync_sample` in sample flags (8.8.3.1). */
const NON_SYNC = 0x00010000;

/** A track being demuxed. */
interface OutTrack {
  readonly info: InitTrack;
  /** The {@linkcode MediaFrame.track} number: 0 video, 1 audio. */
  readonly track: number;
  /** Where the next sample starts when a fragment has no `tfdt`, in timescale units. */
  nextTime: number;
  /** The CONFIG frame is still to be sent (before the track's first sample). */
  configPending: boolean;
  /**
   * 90 kHz ticks taken off every decode time so that no sample is presented before it is
   * decoded: the largest negative composition offset of the track's first fragment
   * (undefined until then). Writers with signed offsets (CMAF) shift decode times up by it.
   */
  delay: number | undefined;
}

/** One sample located by a `moof`, waiting for its `mdat`. */
interface PendingSample {
  readonly track: OutTrack;
  readonly dts: number;
  readonly pts: number;
  readonly offset: number;
  readonly size: number;
  readonly sync: boolean;
}

/**
 * Demuxes fragmented MP4 (CMAF, HLS fMP4 segments, `ffmpeg -movflags frag_keyframe`) into
 * {@linkcode MediaFrame}s. Give it whole top-level boxes: an initialization segment
 * (`ftyp` + `moov`) first, then media segments (`styp`/`sidx`/`moof`/`mdat`…), or all of a
 * fragmented file at once.
 *
 * The first video track (H.264 `avc1`/`avc3`, H.265 `hvc1`/`hev1`) becomes track 0, the
 * first audio track (AAC `mp4a`, `Opus`) track 1; other tracks are skipped. Each track's
 * CONFIG frame (avcC / hvcC with 4-byte NAL lengths, AudioSpecificConfig, OpusHead made from
 * `dOps`) comes before its first sample, and again after a new `moov`. Samples are located
 * through `tfhd` (base data offset or default-base-is-moof), `tfdt` and every `trun`, with
 * the `trex`/`tfhd` defaults, and must lie inside the `mdat` that follows their `moof`.
 * Times go to the 90 kHz clock: `dts` from the decode time, `pts` = `dts` + composition
 * offset (signed in `trun` version 1), decode times moved back by the largest negative
 * composition offset of a track's first fragment so that `pts` >= `dts`. Video samples are KEYFRAME unless their flags say
 * non-sync; audio samples always are. An edit list of the usual form (empty edits, then
 * one edit from a media time) shifts the track's times. Payloads are views into
 * the input (video NAL lengths of 1 or 2 bytes are rewritten to 4, a copy).
 *
 * @example Demux an init segment and one media segment
 * ```ts ignore
 * import { Fmp4Demuxer } from "@arcly/stream/fmp4";
 *
 * const demuxer = new Fmp4Demuxer();
 * const frames = [];
 * demuxer.decode(await Deno.readFile("init.mp4"), (f) => frames.push(f));
 * demuxer.decode(await Deno.readFile("segment0.m4s"), (f) => frames.push(f));
 * ```
 */
export class Fmp4Demuxer {
  #tracks = new Map<number, OutTrack>();
  #pending: PendingSample[] | undefined;
  readonly #stats: Fmp4DemuxerStats = { frames: 0, droppedSamples: 0, orphanFragments: 0 };

  /** Counters so far (a live view). */
  get stats(): Readonly<Fmp4DemuxerStats> {
    return this.#stats;
  }

  /**
   * Parses the top-level boxes in `data`, calling `emit` for each frame. `data` must end on
   * a box boundary; emitted payloads are views into it.
   *
   * @throws {RangeError} when a box overruns its parent or `data`, a field is truncated, a
   *   sample lies outside its `mdat`, a decoder configuration does not parse, or a fragment
   *   comes before any init segment.
   */
  decode(data: Uint8Array, emit: (frame: MediaFrame) => void): void {
    forEachBox(data, 0, data.length, (box) => {
      switch (box.type) {
        case "moov":
          this.#init(data, box);
          break;
        case "moof":
          if (this.#pending !== undefined) this.#stats.orphanFragments++;
          this.#pending = this.#fragment(data, box);
          break;
        case "mdat":
          if (this.#pending !== undefined) this.#deliver(data, box, this.#pending, emit);
          this.#pending = undefined;
          break;
      }
    });
  }

  #init(data: Uint8Array, moov: BoxSpan): void {
    const tracks = new Map<number, OutTrack>();
    let video = false;
    let audio = false;
    for (const info of readInitTracks(data, moov)) {
      if (info.kind === "video" ? video : audio) continue;
      if (info.kind === "video") video = true;
      else audio = true;
      const track = info.kind === "video" ? 0 : 1;
      tracks.set(info.id, { info, track, nextTime: 0, configPending: true, delay: undefined });
    }
    if (tracks.size === 0) throw new RangeError("init segment has no H.264/H.265/AAC/Opus track");
    this.#tracks = tracks;
    this.#pending = undefined;
  }

  /** The samples of every `traf` of `moof`, each track's in decode order. */
  #fragment(data: Uint8Array, moof: BoxSpan): PendingSample[] {
    if (this.#tracks.size === 0) throw new RangeError("moof before any init segment");
    const samples: PendingSample[] = [];
    let nextDataStart = moof.start; // implicit base of a traf without one (8.8.7.1)
    forEachBox(data, moof.bodyStart, moof.end, (traf) => {
      if (traf.type !== "traf") return;
      nextDataStart = this.#traf(data, moof, traf, nextDataStart, samples);
    });
    for (const track of this.#tracks.values()) {
      if (track.delay !== undefined) continue;
      let delay: number | undefined;
      for (const s of samples) {
        if (s.track === track) delay = Math.max(delay ?? 0, s.dts - s.pts);
      }
      track.delay = delay;
    }
    return samples;
  }

  /** Reads one `traf` into `out`; returns where its data ends. */
  #traf(
    data: Uint8Array,
    moof: BoxSpan,
    traf: BoxSpan,
    implicitBase: number,
    out: PendingSample[],
  ): number {
    let tfhd: BoxSpan | undefined;
    let tfdt: BoxSpan | undefined;
    const truns: BoxSpan[] = [];
    forEachBox(data, traf.bodyStart, traf.end, (box) => {
      if (box.type === "tfhd") tfhd ??= box;
      else if (box.type === "tfdt") tfdt ??= box;
      else if (box.type === "trun") truns.push(box);
    });
    if (tfhd === undefined) throw new RangeError("traf without tfhd");
    const h = new BoxCursor(data, tfhd.bodyStart, tfhd.end);
    const flags = h.u32() & 0xffffff;
    const id = h.u32();
    const track = this.#tracks.get(id);
    let base = implicitBase;
    if (flags & TFHD_BASE_DATA_OFFSET) base = h.u64();
    else if (flags & TFHD_DEFAULT_BASE_IS_MOOF) base = moof.start;
    if (flags & TFHD_DESCRIPTION_INDEX) h.skip(4);
    const trex: SampleDefaults = track?.info.defaults ?? { duration: 0, size: 0, flags: 0 };
    const defaults: SampleDefaults = {
      duration: flags & TFHD_DEFAULT_DURATION ? h.u32() : trex.duration,
      size: flags & TFHD_DEFAULT_SIZE ? h.u32() : trex.size,
      flags: flags & TFHD_DEFAULT_FLAGS ? h.u32() : trex.flags,
    };
    let time = track?.nextTime ?? 0;
    if (tfdt !== undefined) {
      const t = new BoxCursor(data, tfdt.bodyStart, tfdt.end);
      time = t.u8() === 1 ? (t.skip(3), t.u64()) : (t.skip(3), t.u32());
    }
    let dataPos = base;
    for (const trun of truns) {
      const end = this.#trun(data, trun, track, defaults, time, base, dataPos, out);
      time = end.time;
      dataPos = end.dataPos;
    }
    if (track) track.nextTime = time;
    return dataPos;
  }

  /** Reads one `trun` into `out`; returns where its samples end in time and in the data. */
  #trun(
    data: Uint8Array,
    trun: BoxSpan,
    track: OutTrack | undefined,
    defaults: SampleDefaults,
    startTime: number,
    base: number,
    dataPos: number,
    out: PendingSample[],
  ): { time: number; dataPos: number } {
    const c = new BoxCursor(data, trun.bodyStart, trun.end);
    const version = c.u8();
    const flags = (c.u8() << 16) | c.u16();
    const count = c.u32();
    if (flags & TRUN_DATA_OFFSET) dataPos = base + c.i32();
    const firstFlags = flags & TRUN_FIRST_SAMPLE_FLAGS ? c.u32() : undefined;
    let fieldBytes = 0;
    for (const bit of [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_COMPOSITION_OFFSET]) {
      if (flags & bit) fieldBytes += 4;
    }
    // Bounded by what was sent: every sample has its fields in the box, or its bytes in the data.
    if (fieldBytes > 0 ? count * fieldBytes > c.left : count * defaults.size > data.length) {
      throw new RangeError(`trun of ${count} samples overruns its box or the data`);
    }
    if (fieldBytes === 0 && defaults.size === 0) { // only empty samples: nothing to deliver
      this.#stats.droppedSamples += count;
      return { time: startTime + count * defaults.duration, dataPos };
    }
    let time = startTime;
    for (let i = 0; i < count; i++) {
      const duration = flags & TRUN_DURATION ? c.u32() : defaults.duration;
      const size = flags & TRUN_SIZE ? c.u32() : defaults.size;
      const sampleFlags = flags & TRUN_FLAGS
        ? c.u32()
        : i === 0 && firstFlags !== undefined
        ? firstFlags
        : defaults.flags;
      const offset = flags & TRUN_COMPOSITION_OFFSET ? (version === 0 ? c.u32() : c.i32()) : 0;
      if (track !== undefined && size > 0) {
        const { timescale, editShift } = track.info;
        out.push({
          track,
          dts: to90k(time + editShift, timescale),
          pts: to90k(time + offset + editShift, timescale),
          offset: dataPos,
          size,
          sync: track.info.kind === "audio" || (sampleFlags & NON_SYNC) === 0,
        });
      } else {
        this.#stats.droppedSamples++;
      }
      time += duration;
      dataPos += size;
    }
    return { time, dataPos };
  }

  /** Emits `samples`, which must lie in `mdat`, merged across tracks in decode order. */
  #deliver(
    data: Uint8Array,
    mdat: BoxSpan,
    samples: PendingSample[],
    emit: (frame: MediaFrame) => void,
  ): void {
    for (const s of samples) {
      if (s.offset < mdat.bodyStart || s.offset + s.size > mdat.end) {
        throw new RangeError(
          `sample of ${s.size} bytes at byte ${s.offset} lies outside the '${
            printable(mdat.type)
          }' at ${mdat.start}..${mdat.end}`,
        );
      }
    }
    // Each track's samples are in decode order already: a stable sort interleaves them.
    const ordered = samples.map((s, i) => ({ s, i })).sort((a, b) =>
      a.s.dts - b.s.dts || a.i - b.i
    );
    for (const { s } of ordered) this.#emitSample(data, s, emit);
  }

  #emitSample(data: Uint8Array, s: PendingSample, emit: (frame: MediaFrame) => void): void {
    const { info, track } = s.track;
    const dts = s.dts - (s.track.delay ?? 0);
    let payload = data.subarray(s.offset, s.offset + s.size);
    if (info.kind === "video") {
      try {
        payload = toFourByteLengths(payload, info.lengthSize);
      } catch {
        this.#stats.droppedSamples++;
        return;
      }
    }
    const frame = { track, kind: info.kind, codec: info.codec, pts: s.pts, dts };
    if (s.track.configPending) {
      s.track.configPending = false;
      emit({ ...frame, flags: FrameFlags.CONFIG, data: info.config });
    }
    this.#stats.frames++;
    emit({ ...frame, flags: s.sync ? FrameFlags.KEYFRAME : FrameFlags.NONE, data: payload });
  }
}

/** `time` in `timescale` units on the 90 kHz clock, rounded, exact for large values. */
function to90k(time: number, timescale: number): number {
  if (timescale === CLOCK_RATE) return time;
  const whole = Math.floor(time / timescale);
  return whole * CLOCK_RATE + Math.round((time - whole * timescale) * CLOCK_RATE / timescale);
}
