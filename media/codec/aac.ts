/**
 * AAC bitstream facts: AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1), ADTS
 * headers and RFC 6381 codec strings.
 *
 * @module
 */

import { BitReader, BitWriter } from "./bits.ts";

/** The sampling frequencies indexed by `samplingFrequencyIndex` 0..12. */
export const AAC_SAMPLE_RATES: readonly number[] = [
  96000,
  88200,
  64000,
  48000,
  44100,
  32000,
  24000,
  22050,
  16000,
  12000,
  11025,
  8000,
  7350,
];

/** A parsed AudioSpecificConfig (or the same facts from an ADTS header). */
export interface AacConfig {
  /** audioObjectType (2 = AAC LC, 5 = SBR, 29 = PS). */
  objectType: number;
  /** samplingFrequencyIndex (15 = explicit rate). */
  samplingFrequencyIndex: number;
  /** Sampling rate of the core decoder in Hz. */
  sampleRate: number;
  /** channelConfiguration (0 = defined in the program config element). */
  channelConfiguration: number;
  /** Samples per channel in one access unit at `sampleRate` (1024, or 960 with frameLengthFlag). */
  samplesPerFrame: number;
}

/** Object types whose config is a GASpecificConfig with frameLengthFlag. */
const GA_TYPES = new Set([1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23]);

/**
 * Parses an AudioSpecificConfig. For explicitly signalled SBR/PS (object type
 * 5 or 29) `objectType` stays 5/29 and `sampleRate` is the core rate.
 *
 * @throws {RangeError} when the config is truncated or has a reserved frequency index.
 * @example
 * ```ts
 * import { parseAudioSpecificConfig } from "./aac.ts";
 *
 * parseAudioSpecificConfig(new Uint8Array([0x12, 0x10]));
 * // { objectType: 2, samplingFrequencyIndex: 4, sampleRate: 44100, channelConfiguration: 2, samplesPerFrame: 1024 }
 * ```
 */
export function parseAudioSpecificConfig(bytes: Uint8Array): AacConfig {
  if (bytes.length < 2) {
    throw new RangeError(`AudioSpecificConfig too short (${bytes.length} bytes)`);
  }
  const r = new BitReader(bytes);
  const objectType = readObjectType(r);
  if (objectType === 0) throw new RangeError("AudioSpecificConfig has object type 0 (null)");
  const [samplingFrequencyIndex, sampleRate] = readFrequency(r);
  const channelConfiguration = r.readBits(4);
  let coreType = objectType;
  if (objectType === 5 || objectType === 29) {
    readFrequency(r); // extensionSamplingFrequencyIndex
    coreType = readObjectType(r);
  }
  let samplesPerFrame = 1024;
  if (GA_TYPES.has(coreType) && r.bitsLeft > 0) {
    if (r.readFlag()) samplesPerFrame = 960; // frameLengthFlag
  } else if (coreType === 23 || coreType === 39) {
    samplesPerFrame = r.bitsLeft > 0 && r.readFlag() ? 480 : 512;
  }
  return { objectType, samplingFrequencyIndex, sampleRate, channelConfiguration, samplesPerFrame };
}

/**
 * Reads an AudioSpecificConfig that starts at bit `offset` of `data`, inside a larger
 * bitstream (as in LATM's StreamMuxConfig, where it is neither length-prefixed nor
 * byte-aligned): its bits as a config of its own, zero-padded to a byte, and how many bits
 * it took.
 * Covers the general-audio object types; a config whose channels are described by a
 * program config element (channelConfiguration 0) is refused, since its length cannot be
 * known without parsing that element.
 *
 * @throws {RangeError} when the config is truncated or of a form this reader does not know.
 * @example
 * ```ts
 * import { readAudioSpecificConfig } from "./aac.ts";
 *
 * readAudioSpecificConfig(new Uint8Array([0x00, 0x24, 0x10]), 7);
 * // { config: Uint8Array [0x12, 0x08], bits: 16 }: AAC LC, 44.1 kHz, mono
 * ```
 */
export function readAudioSpecificConfig(
  data: Uint8Array,
  offset: number,
): { config: Uint8Array; bits: number } {
  const r = new BitReader(data);
  r.skipBits(offset);
  const objectType = readObjectType(r);
  readFrequency(r);
  const channelConfiguration = r.readBits(4);
  let coreType = objectType;
  if (objectType === 5 || objectType === 29) {
    readFrequency(r); // extensionSamplingFrequencyIndex
    coreType = readObjectType(r);
  }
  if (!GA_TYPES.has(coreType)) {
    throw new RangeError(`AudioSpecificConfig of object type ${coreType} is not supported`);
  }
  if (channelConfiguration === 0) {
    throw new RangeError("AudioSpecificConfig with a program config element is not supported");
  }
  r.skipBits(1); // frameLengthFlag
  if (r.readFlag()) r.skipBits(14); // dependsOnCoreCoder: coreCoderDelay
  const extensionFlag = r.readFlag();
  if (coreType === 6 || coreType === 20) r.skipBits(3); // layerNr
  if (extensionFlag) {
    if (coreType === 22) r.skipBits(16); // numOfSubFrame, layer_length
    if (coreType === 17 || coreType === 19 || coreType === 20 || coreType === 23) r.skipBits(3);
    r.skipBits(1); // extensionFlag3
  }
  if (coreType === 17 || (coreType >= 19 && coreType <= 23)) {
    if (r.readBits(2) > 1) throw new RangeError("AudioSpecificConfig epConfig 2 or 3");
  }
  if (objectType !== 5 && objectType !== 29) readSyncExtension(r);
  const bits = r.position - offset;
  const copy = new BitReader(data);
  copy.skipBits(offset);
  const w = new BitWriter();
  for (let left = bits; left > 0; left -= Math.min(left, 24)) {
    const n = Math.min(left, 24);
    w.writeBits(copy.readBits(n), n);
  }
  return { config: w.bytes(), bits };
}

/**
 * The backward-compatible SBR/PS signalling that may follow a config (syncExtensionType
 * 0x2b7, as ffmpeg's encoder writes it), read when the next bits are that sync word.
 */
function readSyncExtension(r: BitReader): void {
  if (r.bitsLeft < 16) return;
  if (r.readBits(11) !== 0x2b7) return r.rewind(11);
  const extensionType = readObjectType(r);
  if (extensionType === 5 && r.readFlag()) { // sbrPresentFlag
    readFrequency(r);
    if (r.bitsLeft >= 12) {
      if (r.readBits(11) === 0x548) r.skipBits(1); // psPresentFlag
      else r.rewind(11);
    }
  } else if (extensionType === 22 && r.readFlag()) {
    readFrequency(r);
    r.skipBits(4); // extensionChannelConfiguration
  }
}

function readObjectType(r: BitReader): number {
  const t = r.readBits(5);
  return t === 31 ? 32 + r.readBits(6) : t;
}

function readFrequency(r: BitReader): [number, number] {
  const index = r.readBits(4);
  if (index === 15) {
    const rate = r.readBits(24);
    if (rate === 0) throw new RangeError("AudioSpecificConfig has an explicit sample rate of 0");
    return [index, rate];
  }
  if (index > 12) throw new RangeError(`AAC samplingFrequencyIndex ${index} is reserved`);
  return [index, AAC_SAMPLE_RATES[index]];
}

/**
 * Builds an AudioSpecificConfig with a GASpecificConfig (no core coder, no
 * extension). The frequency index is derived from `sampleRate` (escape code
 * 15 when not in the table).
 *
 * @throws {RangeError} when a field is out of range.
 * @example
 * ```ts
 * import { buildAudioSpecificConfig } from "./aac.ts";
 *
 * buildAudioSpecificConfig({ objectType: 2, sampleRate: 48000, channelConfiguration: 2 });
 * // Uint8Array [0x11, 0x90]
 * ```
 */
export function buildAudioSpecificConfig(
  cfg: Pick<AacConfig, "objectType" | "sampleRate" | "channelConfiguration"> & {
    samplesPerFrame?: number;
  },
): Uint8Array {
  const { objectType, sampleRate, channelConfiguration } = cfg;
  if (!Number.isInteger(objectType) || objectType < 1 || objectType > 95) {
    throw new RangeError(`AAC object type ${objectType} out of range`);
  }
  if (
    !Number.isInteger(channelConfiguration) || channelConfiguration < 0 || channelConfiguration > 15
  ) {
    throw new RangeError(`AAC channel configuration ${channelConfiguration} out of range`);
  }
  if (!Number.isInteger(sampleRate) || sampleRate <= 0 || sampleRate >= 1 << 24) {
    throw new RangeError(`AAC sample rate ${sampleRate} out of range`);
  }
  const w = new BitWriter();
  if (objectType >= 31) {
    w.writeBits(31, 5);
    w.writeBits(objectType - 32, 6);
  } else {
    w.writeBits(objectType, 5);
  }
  const index = AAC_SAMPLE_RATES.indexOf(sampleRate);
  if (index >= 0) {
    w.writeBits(index, 4);
  } else {
    w.writeBits(15, 4);
    w.writeBits(sampleRate, 24);
  }
  w.writeBits(channelConfiguration, 4);
  w.writeBits(cfg.samplesPerFrame === 960 ? 1 : 0, 1); // frameLengthFlag
  w.writeBits(0, 2); // dependsOnCoreCoder, extensionFlag
  return w.bytes();
}

/** Bytes in an ADTS header without CRC (with CRC it is 9). */
export const ADTS_HEADER_SIZE = 7;

/** An ADTS frame header read by {@linkcode parseAdtsHeader}. */
export interface AdtsHeader {
  /** The stream configuration it signals. */
  config: AacConfig;
  /** Bytes in the whole ADTS frame, header included. */
  frameLength: number;
  /** Bytes in the header (7, or 9 with CRC). */
  headerLength: number;
}

/**
 * Parses the ADTS header at `offset` of `buf`.
 *
 * @throws {RangeError} on a bad sync word, layer, frequency index or frame length,
 * or when fewer than 7 (9 with CRC) bytes are available.
 * @example
 * ```ts
 * import { parseAdtsHeader } from "./aac.ts";
 *
 * const h = parseAdtsHeader(new Uint8Array([0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc]), 0);
 * [h.config.sampleRate, h.frameLength]; // [44100, 16]
 * ```
 */
export function parseAdtsHeader(buf: Uint8Array, offset: number): AdtsHeader {
  if (offset < 0 || offset + ADTS_HEADER_SIZE > buf.length) {
    throw new RangeError(`ADTS header truncated at byte ${offset}`);
  }
  const b1 = buf[offset + 1];
  if (buf[offset] !== 0xff || (b1 & 0xf0) !== 0xf0) {
    throw new RangeError(`ADTS sync word missing at byte ${offset}`);
  }
  if ((b1 & 0x06) !== 0) throw new RangeError(`ADTS layer is not 0 at byte ${offset}`);
  const headerLength = b1 & 1 ? 7 : 9;
  if (offset + headerLength > buf.length) {
    throw new RangeError(`ADTS header truncated at ${offset}`);
  }
  const b2 = buf[offset + 2];
  const b3 = buf[offset + 3];
  const samplingFrequencyIndex = (b2 >> 2) & 0x0f;
  if (samplingFrequencyIndex > 12) {
    throw new RangeError(`ADTS samplingFrequencyIndex ${samplingFrequencyIndex} is reserved`);
  }
  const frameLength = ((b3 & 3) << 11) | (buf[offset + 4] << 3) | (buf[offset + 5] >> 5);
  if (frameLength < headerLength) {
    throw new RangeError(`ADTS frame length ${frameLength} is shorter than its header`);
  }
  return {
    config: {
      objectType: (b2 >> 6) + 1,
      samplingFrequencyIndex,
      sampleRate: AAC_SAMPLE_RATES[samplingFrequencyIndex],
      channelConfiguration: ((b2 & 1) << 2) | (b3 >> 6),
      samplesPerFrame: 1024,
    },
    frameLength,
    headerLength,
  };
}

/**
 * Writes a 7-byte ADTS header (no CRC, one raw data block) for a payload of
 * `payloadLength` bytes into `out` at `offset`.
 *
 * @throws {RangeError} when the config cannot be signalled in ADTS or the frame is too long.
 * @example
 * ```ts
 * import { writeAdtsHeader } from "./aac.ts";
 *
 * const out = new Uint8Array(7);
 * writeAdtsHeader(out, 0, { objectType: 2, samplingFrequencyIndex: 4, channelConfiguration: 2 }, 9);
 * // out: [0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc]
 * ```
 */
export function writeAdtsHeader(
  out: Uint8Array,
  offset: number,
  cfg: Pick<AacConfig, "objectType" | "samplingFrequencyIndex" | "channelConfiguration">,
  payloadLength: number,
): void {
  const { objectType, samplingFrequencyIndex: sfi, channelConfiguration: ch } = cfg;
  if (objectType < 1 || objectType > 4) {
    throw new RangeError(`AAC object type ${objectType} cannot be carried in ADTS`);
  }
  if (sfi < 0 || sfi > 12) throw new RangeError(`ADTS samplingFrequencyIndex ${sfi} is invalid`);
  if (ch < 0 || ch > 7) throw new RangeError(`ADTS channel configuration ${ch} is invalid`);
  const len = payloadLength + ADTS_HEADER_SIZE;
  if (payloadLength < 0 || len > 0x1fff) {
    throw new RangeError(`ADTS frame of ${len} bytes exceeds 8191`);
  }
  if (offset < 0 || offset + ADTS_HEADER_SIZE > out.length) {
    throw new RangeError(`ADTS header does not fit at offset ${offset}`);
  }
  out[offset] = 0xff;
  out[offset + 1] = 0xf1; // MPEG-4, layer 0, no CRC
  out[offset + 2] = ((objectType - 1) << 6) | (sfi << 2) | (ch >> 2);
  out[offset + 3] = ((ch & 3) << 6) | (len >> 11);
  out[offset + 4] = (len >> 3) & 0xff;
  out[offset + 5] = ((len & 7) << 5) | 0x1f; // buffer fullness 0x7ff (VBR)
  out[offset + 6] = 0xfc; // fullness low bits, one raw data block
}

/**
 * The RFC 6381 codec string (`mp4a.40.<objectType>`).
 *
 * @example
 * ```ts
 * import { aacCodecString } from "./aac.ts";
 *
 * aacCodecString({ objectType: 2 }); // "mp4a.40.2"
 * ```
 */
export function aacCodecString(cfg: Pick<AacConfig, "objectType">): string {
  return `mp4a.40.${cfg.objectType}`;
}
