/**
 * Reading an fMP4 initialization segment's `moov`: per track its ID, kind, codec, media
 * timescale, decoder configuration (from `avcC`, `hvcC`, `esds` or `dOps`) and the `trex`
 * sample defaults the fragments rely on.
 *
 * @module
 */

import type { TrackKind } from "../../bus/frame.ts";
import { parseAvcConfig } from "../codec/h264.ts";
import { parseHevcConfig } from "../codec/h265.ts";
import { parseAudioSpecificConfig } from "../codec/aac.ts";
import { buildOpusHead, parseOpusHead } from "../codec/opus.ts";
import { BoxCursor, type BoxSpan, findChild, forEachBox } from "./_box_reader.ts";
import type { Fmp4Codec } from "./track.ts";

/** Sample defaults of one track (`trex`, overridden per fragment by `tfhd`). */
export interface SampleDefaults {
  /** `default_sample_duration`, in timescale units. */
  readonly duration: number;
  /** `default_sample_size`, in bytes. */
  readonly size: number;
  /** `default_sample_flags`. */
  readonly flags: number;
}

/** One track of the init segment that the demuxer can deliver. */
export interface InitTrack {
  /** The MP4 `track_ID`. */
  readonly id: number;
  /** Video or audio. */
  readonly kind: TrackKind;
  /** The codec. */
  readonly codec: Fmp4Codec;
  /** Ticks per second of the track's media timeline (`mdhd`). */
  readonly timescale: number;
  /**
   * The CONFIG payload: avcC / hvcC (with 4-byte NAL lengths declared), AudioSpecificConfig
   * or OpusHead.
   */
  readonly config: Uint8Array;
  /** Video: the NAL length size of the samples (1, 2 or 4); 0 for audio. */
  readonly lengthSize: number;
  /** The `trex` defaults (zeros without a `trex`). */
  readonly defaults: SampleDefaults;
  /**
   * What the edit list adds to every presentation and decode time, in timescale units: an
   * initial empty edit's duration less the media time of the edit after it (0 without an
   * edit list, or with one of another form).
   */
  readonly editShift: number;
}

const NO_DEFAULTS: SampleDefaults = { duration: 0, size: 0, flags: 0 };
/** Bytes of a VisualSampleEntry before its child boxes (ISO/IEC 14496-12 12.1.3). */
const VISUAL_ENTRY_FIELDS = 78;
/** Bytes of an AudioSampleEntry (version 0) before its child boxes (12.2.3). */
const AUDIO_ENTRY_FIELDS = 28;
/** Extra bytes of QuickTime sound sample description versions 1 and 2. */
const AUDIO_ENTRY_EXTRA = [0, 16, 36];
/** MPEG-4 audio and the MPEG-2 AAC profiles (objectTypeIndication, ISO/IEC 14496-1 table 5). */
const AAC_OBJECT_TYPES = new Set([0x40, 0x66, 0x67, 0x68]);

/**
 * The tracks of the `moov` box `moov`, in file order: those whose handler is video or sound
 * and whose first sample entry is avc1/avc3, hvc1/hev1, mp4a (AAC) or Opus. Others (text,
 * encrypted entries, other codecs) are left out.
 *
 * @throws {RangeError} when a box overruns its parent, a field is truncated, or a decoder
 *   configuration of a kept track does not parse.
 */
export function readInitTracks(data: Uint8Array, moov: BoxSpan): InitTrack[] {
  const defaults = new Map<number, SampleDefaults>();
  const traks: BoxSpan[] = [];
  let movieTimescale = 0;
  forEachBox(data, moov.bodyStart, moov.end, (box) => {
    if (box.type === "trak") traks.push(box);
    if (box.type === "mvhd") {
      const c = new BoxCursor(data, box.bodyStart, box.end);
      c.skip(c.u8() === 1 ? 3 + 16 : 3 + 8); // version, flags, creation and modification times
      movieTimescale = c.u32();
    }
    if (box.type !== "mvex") return;
    forEachBox(data, box.bodyStart, box.end, (child) => {
      if (child.type !== "trex") return;
      const c = new BoxCursor(data, child.bodyStart + 4, child.end);
      const id = c.u32();
      c.skip(4); // default_sample_description_index
      defaults.set(id, { duration: c.u32(), size: c.u32(), flags: c.u32() });
    });
  });
  const tracks: InitTrack[] = [];
  for (const trak of traks) {
    const track = readTrak(data, trak, defaults, movieTimescale);
    if (track) tracks.push(track);
  }
  return tracks;
}

function readTrak(
  data: Uint8Array,
  trak: BoxSpan,
  defaults: Map<number, SampleDefaults>,
  movieTimescale: number,
): InitTrack | undefined {
  const tkhd = need(data, trak, "tkhd");
  const t = new BoxCursor(data, tkhd.bodyStart, tkhd.end);
  const version = t.u8();
  t.skip(3 + (version === 1 ? 16 : 8)); // flags, creation and modification times
  const id = t.u32();
  const mdia = need(data, trak, "mdia");
  const mdhd = need(data, mdia, "mdhd");
  const m = new BoxCursor(data, mdhd.bodyStart, mdhd.end);
  m.skip(m.u8() === 1 ? 3 + 16 : 3 + 8);
  const timescale = m.u32();
  if (timescale === 0) throw new RangeError(`track ${id}: mdhd timescale 0`);
  const hdlr = need(data, mdia, "hdlr");
  const h = new BoxCursor(data, hdlr.bodyStart + 8, hdlr.end); // version, flags, pre_defined
  const handler = h.fourcc();
  if (handler !== "vide" && handler !== "soun") return undefined;
  const stsd = need(data, need(data, need(data, mdia, "minf"), "stbl"), "stsd");
  const s = new BoxCursor(data, stsd.bodyStart + 4, stsd.end);
  if (s.u32() === 0) return undefined;
  let entry: BoxSpan | undefined;
  forEachBox(data, s.pos, stsd.end, (box) => entry ??= box);
  if (entry === undefined) return undefined;
  const sample = handler === "vide" ? readVisualEntry(data, entry) : readAudioEntry(data, entry);
  if (sample === undefined) return undefined;
  const editShift = readEditShift(data, trak, timescale, movieTimescale);
  return { id, timescale, defaults: defaults.get(id) ?? NO_DEFAULTS, editShift, ...sample };
}

/**
 * The time shift of the common edit lists (ISO/IEC 14496-12 8.6.6): empty edits (media
 * time -1, durations in the movie timescale) then one edit at rate 1 from `media_time` on.
 * Other forms (several media edits, dwells, other rates) shift nothing here.
 */
function readEditShift(
  data: Uint8Array,
  trak: BoxSpan,
  timescale: number,
  movieTimescale: number,
): number {
  const edts = findChild(data, trak.bodyStart, trak.end, "edts");
  const elst = edts && findChild(data, edts.bodyStart, edts.end, "elst");
  if (elst === undefined) return 0;
  const c = new BoxCursor(data, elst.bodyStart, elst.end);
  const wide = c.u8() === 1;
  c.skip(3);
  const count = c.u32();
  let empty = 0;
  for (let i = 0; i < count; i++) {
    const duration = wide ? c.u64() : c.u32();
    const mediaTime = wide ? signed64(c) : c.i32();
    const rate = c.u32();
    if (mediaTime === -1) {
      empty += duration;
      continue;
    }
    if (rate !== 0x10000 || movieTimescale === 0) return 0;
    return Math.round(empty * timescale / movieTimescale) - mediaTime;
  }
  return 0;
}

/** A signed 64-bit field: -1, or a value below 2^53. */
function signed64(c: BoxCursor): number {
  const high = c.u32();
  const low = c.u32();
  if (high === 0xffff_ffff && low === 0xffff_ffff) return -1;
  if (high >= 0x20_0000) throw new RangeError("64-bit edit media time out of range");
  return high * 0x1_0000_0000 + low;
}

type EntryFacts = Pick<InitTrack, "kind" | "codec" | "config" | "lengthSize">;

function readVisualEntry(data: Uint8Array, entry: BoxSpan): EntryFacts | undefined {
  const h264 = entry.type === "avc1" || entry.type === "avc3";
  const h265 = entry.type === "hvc1" || entry.type === "hev1";
  if (!h264 && !h265) return undefined;
  const childStart = entry.bodyStart + VISUAL_ENTRY_FIELDS;
  if (childStart > entry.end) throw new RangeError(`${entry.type} sample entry truncated`);
  const box = findChild(data, childStart, entry.end, h264 ? "avcC" : "hvcC");
  if (box === undefined) return undefined;
  const record = data.subarray(box.bodyStart, box.end);
  const lengthSize = h264 ? parseAvcConfig(record).lengthSize : parseHevcConfig(record).lengthSize;
  if (lengthSize === 3) throw new RangeError("NAL length size 3 is not allowed");
  const config = lengthSize === 4 ? record : withFourByteLengths(record, h264 ? 4 : 21);
  return { kind: "video", codec: h264 ? "h264" : "h265", config, lengthSize };
}

/** A copy of `record` whose lengthSizeMinusOne (the low 2 bits of byte `at`) says 4 bytes. */
function withFourByteLengths(record: Uint8Array, at: number): Uint8Array {
  const copy = record.slice();
  copy[at] |= 3;
  return copy;
}

function readAudioEntry(data: Uint8Array, entry: BoxSpan): EntryFacts | undefined {
  if (entry.type !== "mp4a" && entry.type !== "Opus") return undefined;
  const c = new BoxCursor(data, entry.bodyStart + 8, entry.end); // reserved, data_reference_index
  const version = c.u16();
  const extra = AUDIO_ENTRY_EXTRA[version];
  if (extra === undefined) throw new RangeError(`${entry.type} sample entry version ${version}`);
  const childStart = entry.bodyStart + AUDIO_ENTRY_FIELDS + extra;
  if (childStart > entry.end) throw new RangeError(`${entry.type} sample entry truncated`);
  if (entry.type === "Opus") {
    const dops = findChild(data, childStart, entry.end, "dOps");
    if (dops === undefined) return undefined;
    return { kind: "audio", codec: "opus", config: opusHeadOfDops(data, dops), lengthSize: 0 };
  }
  const esds = findChild(data, childStart, entry.end, "esds");
  if (esds === undefined) return undefined;
  const config = audioSpecificConfigOfEsds(data, esds);
  if (config === undefined) return undefined;
  parseAudioSpecificConfig(config);
  return { kind: "audio", codec: "aac", config, lengthSize: 0 };
}

/** The OpusHead equivalent of a `dOps` box (which is big-endian and has no magic). */
function opusHeadOfDops(data: Uint8Array, dops: BoxSpan): Uint8Array {
  const c = new BoxCursor(data, dops.bodyStart, dops.end);
  if (c.u8() !== 0) throw new RangeError("dOps version is not 0");
  const channels = c.u8();
  const preSkip = c.u16();
  const inputSampleRate = c.u32();
  const outputGain = c.i16();
  const mappingFamily = c.u8();
  let mapping = {};
  if (mappingFamily !== 0) {
    const streamCount = c.u8();
    const coupledCount = c.u8();
    mapping = { streamCount, coupledCount, channelMapping: c.bytes(channels) };
  }
  const head = buildOpusHead({
    channels,
    preSkip,
    inputSampleRate,
    outputGain,
    mappingFamily,
    ...mapping,
  });
  parseOpusHead(head);
  return head;
}

/** The DecoderSpecificInfo of an AAC `esds`, or `undefined` when it describes no AAC. */
function audioSpecificConfigOfEsds(data: Uint8Array, esds: BoxSpan): Uint8Array | undefined {
  const c = new BoxCursor(data, esds.bodyStart + 4, esds.end); // version, flags
  const es = descriptor(c, 0x03);
  c.skip(2); // ES_ID
  const flags = c.u8();
  if (flags & 0x80) c.skip(2); // dependsOn_ES_ID
  if (flags & 0x40) c.skip(c.u8()); // URL
  if (flags & 0x20) c.skip(2); // OCR_ES_Id
  const dc = new BoxCursor(data, c.pos, es);
  const configEnd = descriptor(dc, 0x04);
  const d = new BoxCursor(data, dc.pos, configEnd);
  if (!AAC_OBJECT_TYPES.has(d.u8())) return undefined;
  d.skip(12); // streamType, bufferSizeDB, maxBitrate, avgBitrate
  const specificEnd = descriptor(d, 0x05);
  return data.subarray(d.pos, specificEnd);
}

/**
 * Reads the header of the descriptor at the cursor, which must have `tag`; leaves the cursor
 * at its body and returns where the body ends (ISO/IEC 14496-1 8.3.3).
 */
function descriptor(c: BoxCursor, tag: number): number {
  const found = c.u8();
  if (found !== tag) throw new RangeError(`esds: descriptor tag ${found}, expected ${tag}`);
  let length = 0;
  for (let i = 0; i < 4; i++) {
    const b = c.u8();
    length = (length << 7) | (b & 0x7f);
    if (!(b & 0x80)) break;
  }
  if (length > c.left) throw new RangeError(`esds: descriptor ${tag} overruns its box`);
  return c.pos + length;
}

function need(data: Uint8Array, parent: BoxSpan, type: string): BoxSpan {
  const box = findChild(data, parent.bodyStart, parent.end, type);
  if (box === undefined) throw new RangeError(`'${parent.type}' has no '${type}'`);
  return box;
}
