/**
 * The fMP4 initialization segment: `ftyp` + `moov` with empty sample tables and `mvex`.
 *
 * @module
 */

import { BoxWriter } from "./box.ts";
import type { Fmp4Track } from "./track.ts";
import { parseOpusHead } from "../codec/opus.ts";

/** The unity transformation matrix of `mvhd` and `tkhd`. */
const MATRIX = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000];
/** ISO-639-2/T "und", packed as three 5-bit letters. */
const LANGUAGE_UND = 0x55c4;
/** Headroom for every box of the init segment other than the codec configurations. */
const FIXED_SIZE_PER_TRACK = 1024;

/**
 * Builds an initialization segment (`ftyp` + `moov`) for `tracks`, with zero
 * durations, empty sample tables and a `trex` per track, as fragmented MP4 and
 * CMAF expect. `ftyp` has major brand `iso6`; a single-track file also claims
 * the CMAF brand `cmfc`.
 *
 * @throws {RangeError} when `tracks` is empty or has duplicate track numbers.
 * @example
 * ```ts
 * import { buildInitSegment } from "@arcly/stream/fmp4";
 *
 * const init = buildInitSegment([{
 *   track: 1,
 *   kind: "audio",
 *   codec: "aac",
 *   config: new Uint8Array([0x11, 0x90]),
 *   codecString: "mp4a.40.2",
 *   timescale: 48000,
 *   width: 0,
 *   height: 0,
 *   sampleRate: 48000,
 *   channels: 2,
 *   samplesPerFrame: 1024,
 * }]);
 * ```
 */
export function buildInitSegment(tracks: readonly Fmp4Track[]): Uint8Array {
  if (tracks.length === 0) throw new RangeError("an init segment needs at least one track");
  if (new Set(tracks.map((t) => t.track)).size !== tracks.length) {
    throw new RangeError("duplicate track numbers");
  }
  let size = 256;
  for (const t of tracks) size += FIXED_SIZE_PER_TRACK + t.config.byteLength;
  const w = new BoxWriter(new Uint8Array(size));

  const ftyp = w.begin("ftyp");
  w.fourcc("iso6");
  w.u32(0);
  w.fourcc("iso6");
  w.fourcc("mp41");
  if (tracks.length === 1) w.fourcc("cmfc");
  w.end(ftyp);

  const moov = w.begin("moov");
  writeMvhd(w, Math.max(...tracks.map((t) => t.track)) + 2);
  for (const t of tracks) writeTrak(w, t);
  const mvex = w.begin("mvex");
  for (const t of tracks) {
    const trex = w.beginFull("trex", 0, 0);
    w.u32(t.track + 1); // track_ID
    w.u32(1); // default_sample_description_index
    w.u32(0); // default_sample_duration
    w.u32(0); // default_sample_size
    w.u32(0); // default_sample_flags
    w.end(trex);
  }
  w.end(mvex);
  w.end(moov);
  return w.bytes.slice(0, w.pos);
}

function writeMatrix(w: BoxWriter): void {
  for (const v of MATRIX) w.u32(v);
}

function writeMvhd(w: BoxWriter, nextTrackId: number): void {
  const box = w.beginFull("mvhd", 0, 0);
  w.u32(0); // creation_time
  w.u32(0); // modification_time
  w.u32(1000); // timescale
  w.u32(0); // duration
  w.u32(0x00010000); // rate 1.0
  w.u16(0x0100); // volume 1.0
  w.zeros(10); // reserved
  writeMatrix(w);
  w.zeros(24); // pre_defined
  w.u32(nextTrackId);
  w.end(box);
}

function writeTrak(w: BoxWriter, t: Fmp4Track): void {
  const video = t.kind === "video";
  const trak = w.begin("trak");

  const tkhd = w.beginFull("tkhd", 0, 3); // enabled, in movie
  w.u32(0); // creation_time
  w.u32(0); // modification_time
  w.u32(t.track + 1); // track_ID
  w.u32(0); // reserved
  w.u32(0); // duration
  w.zeros(8); // reserved
  w.u16(0); // layer
  w.u16(0); // alternate_group
  w.u16(video ? 0 : 0x0100); // volume
  w.u16(0); // reserved
  writeMatrix(w);
  w.u32(t.width * 0x10000); // width, 16.16
  w.u32(t.height * 0x10000); // height, 16.16
  w.end(tkhd);

  const mdia = w.begin("mdia");
  const mdhd = w.beginFull("mdhd", 0, 0);
  w.u32(0); // creation_time
  w.u32(0); // modification_time
  w.u32(t.timescale);
  w.u32(0); // duration
  w.u16(LANGUAGE_UND);
  w.u16(0); // pre_defined
  w.end(mdhd);

  const hdlr = w.beginFull("hdlr", 0, 0);
  w.u32(0); // pre_defined
  w.fourcc(video ? "vide" : "soun");
  w.zeros(12); // reserved
  for (const c of video ? "VideoHandler" : "SoundHandler") w.u8(c.charCodeAt(0));
  w.u8(0);
  w.end(hdlr);

  const minf = w.begin("minf");
  if (video) {
    const vmhd = w.beginFull("vmhd", 0, 1);
    w.zeros(8); // graphicsmode, opcolor
    w.end(vmhd);
  } else {
    const smhd = w.beginFull("smhd", 0, 0);
    w.zeros(4); // balance, reserved
    w.end(smhd);
  }
  const dinf = w.begin("dinf");
  const dref = w.beginFull("dref", 0, 0);
  w.u32(1); // entry_count
  w.end(w.beginFull("url ", 0, 1)); // media data in the same file
  w.end(dref);
  w.end(dinf);

  const stbl = w.begin("stbl");
  const stsd = w.beginFull("stsd", 0, 0);
  w.u32(1); // entry_count
  writeSampleEntry(w, t);
  w.end(stsd);
  for (const type of ["stts", "stsc", "stco"]) {
    const box = w.beginFull(type, 0, 0);
    w.u32(0); // entry_count
    w.end(box);
  }
  const stsz = w.beginFull("stsz", 0, 0);
  w.u32(0); // sample_size
  w.u32(0); // sample_count
  w.end(stsz);
  w.end(stbl);

  w.end(minf);
  w.end(mdia);
  w.end(trak);
}

function writeSampleEntry(w: BoxWriter, t: Fmp4Track): void {
  switch (t.codec) {
    case "h264":
      return writeVisualEntry(w, t, "avc1", "avcC");
    case "h265":
      return writeVisualEntry(w, t, "hvc1", "hvcC");
    case "aac": {
      const entry = writeAudioEntryHeader(w, t, "mp4a");
      writeEsds(w, t);
      return w.end(entry);
    }
    case "opus": {
      const entry = writeAudioEntryHeader(w, t, "Opus");
      writeDops(w, t);
      return w.end(entry);
    }
  }
}

function writeVisualEntry(w: BoxWriter, t: Fmp4Track, type: string, configType: string): void {
  const entry = w.begin(type);
  w.zeros(6); // reserved
  w.u16(1); // data_reference_index
  w.zeros(16); // pre_defined, reserved, pre_defined[3]
  w.u16(t.width);
  w.u16(t.height);
  w.u32(0x00480000); // horizresolution 72 dpi
  w.u32(0x00480000); // vertresolution 72 dpi
  w.u32(0); // reserved
  w.u16(1); // frame_count
  w.zeros(32); // compressorname
  w.u16(0x0018); // depth
  w.i16(-1); // pre_defined
  const config = w.begin(configType);
  w.write(t.config);
  w.end(config);
  w.end(entry);
}

function writeAudioEntryHeader(w: BoxWriter, t: Fmp4Track, type: string): number {
  const entry = w.begin(type);
  w.zeros(6); // reserved
  w.u16(1); // data_reference_index
  w.zeros(8); // reserved
  w.u16(t.channels);
  w.u16(16); // samplesize
  w.u16(0); // pre_defined
  w.u16(0); // reserved
  w.u32(t.sampleRate <= 0xffff ? t.sampleRate * 0x10000 : 0); // samplerate, 16.16
  return entry;
}

/** Writes an MPEG-4 descriptor tag and its length (ISO/IEC 14496-1 8.3.3), minimal form. */
function descriptorHeader(w: BoxWriter, tag: number, length: number): void {
  w.u8(tag);
  let shift = 21;
  while (shift > 0 && length >>> shift === 0) shift -= 7;
  for (; shift > 0; shift -= 7) w.u8(0x80 | ((length >>> shift) & 0x7f));
  w.u8(length & 0x7f);
}

function descriptorSize(length: number): number {
  return 1 + (length < 0x80 ? 1 : length < 0x4000 ? 2 : length < 0x200000 ? 3 : 4) + length;
}

function writeEsds(w: BoxWriter, t: Fmp4Track): void {
  const esds = w.beginFull("esds", 0, 0);
  const decoderSpecific = descriptorSize(t.config.byteLength);
  const decoderConfig = descriptorSize(13 + decoderSpecific);
  const slConfig = descriptorSize(1);
  descriptorHeader(w, 0x03, 3 + decoderConfig + slConfig); // ES_Descriptor
  w.u16(0); // ES_ID
  w.u8(0); // no dependency, URL or OCR stream
  descriptorHeader(w, 0x04, 13 + decoderSpecific); // DecoderConfigDescriptor
  w.u8(0x40); // objectTypeIndication: MPEG-4 Audio
  w.u8(0x15); // streamType audio (5) << 2 | reserved 1
  w.u24(0); // bufferSizeDB
  w.u32(0); // maxBitrate
  w.u32(0); // avgBitrate
  descriptorHeader(w, 0x05, t.config.byteLength); // DecoderSpecificInfo
  w.write(t.config);
  descriptorHeader(w, 0x06, 1); // SLConfigDescriptor
  w.u8(0x02); // predefined: reserved for MP4 files
  w.end(esds);
}

/** Writes the Opus-in-ISOBMFF `dOps` box from an OpusHead (which is little-endian). */
function writeDops(w: BoxWriter, t: Fmp4Track): void {
  const head = parseOpusHead(t.config);
  const dops = w.begin("dOps");
  w.u8(0); // Version
  w.u8(head.channels); // OutputChannelCount
  w.u16(head.preSkip);
  w.u32(head.inputSampleRate);
  w.i16(head.outputGain);
  w.u8(head.mappingFamily);
  if (head.mappingFamily !== 0) {
    const { streamCount, coupledCount, channelMapping } = head;
    if (streamCount === undefined || coupledCount === undefined || !channelMapping) {
      throw new RangeError(`OpusHead of mapping family ${head.mappingFamily} has no mapping table`);
    }
    w.u8(streamCount);
    w.u8(coupledCount);
    w.write(channelMapping);
  }
  w.end(dops);
}
