/**
 * Opus bitstream facts: the OpusHead identification header (RFC 7845 5.1)
 * and packet durations from the TOC byte (RFC 6716 3.1).
 *
 * @module
 */

/** A parsed OpusHead identification header. */
export interface OpusHead {
  /** Version (the major version, high nibble, must be 0). */
  version: number;
  /** Output channel count (1..255). */
  channels: number;
  /** Samples at 48 kHz to discard from the decoder output at the start. */
  preSkip: number;
  /** Sample rate of the original input in Hz (informational; 0 = unknown). */
  inputSampleRate: number;
  /** Output gain in Q7.8 dB. */
  outputGain: number;
  /** Channel mapping family (0 = mono/stereo, 1 = Vorbis order, 255 = undefined). */
  mappingFamily: number;
  /** Number of Opus streams (families other than 0). */
  streamCount?: number;
  /** Number of coupled (stereo) streams (families other than 0). */
  coupledCount?: number;
  /** Output channel to decoded channel mapping (families other than 0). */
  channelMapping?: Uint8Array;
}

const MAGIC = [0x4f, 0x70, 0x75, 0x73, 0x48, 0x65, 0x61, 0x64]; // "OpusHead"

/**
 * Parses an OpusHead packet (the `dOps` box body differs; this is the Ogg/RTMP form).
 *
 * @throws {RangeError} when the magic, version or sizes are wrong.
 * @example
 * ```ts
 * import { buildOpusHead, parseOpusHead } from "./opus.ts";
 *
 * const head = buildOpusHead({ channels: 2, preSkip: 312, inputSampleRate: 48000 });
 * parseOpusHead(head).channels; // 2
 * ```
 */
export function parseOpusHead(bytes: Uint8Array): OpusHead {
  if (bytes.length < 19) throw new RangeError(`OpusHead too short (${bytes.length} bytes)`);
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== MAGIC[i]) throw new RangeError("OpusHead magic signature missing");
  }
  const version = bytes[8];
  if (version >> 4 !== 0) throw new RangeError(`OpusHead version ${version} is not supported`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const channels = bytes[9];
  if (channels === 0) throw new RangeError("OpusHead has 0 channels");
  const head: OpusHead = {
    version,
    channels,
    preSkip: dv.getUint16(10, true),
    inputSampleRate: dv.getUint32(12, true),
    outputGain: dv.getInt16(16, true),
    mappingFamily: bytes[18],
  };
  if (head.mappingFamily === 0) {
    if (channels > 2) {
      throw new RangeError(`OpusHead family 0 allows 1 or 2 channels, not ${channels}`);
    }
    return head;
  }
  if (bytes.length < 21 + channels) {
    throw new RangeError(`OpusHead channel mapping table truncated (${bytes.length} bytes)`);
  }
  head.streamCount = bytes[19];
  head.coupledCount = bytes[20];
  if (head.streamCount === 0 || head.coupledCount > head.streamCount) {
    throw new RangeError("OpusHead stream counts are inconsistent");
  }
  head.channelMapping = bytes.slice(21, 21 + channels);
  return head;
}

/**
 * Builds an OpusHead packet (version 1). Families other than 0 need
 * `streamCount`, `coupledCount` and `channelMapping`.
 *
 * @throws {RangeError} when a field is out of range.
 * @example
 * ```ts
 * import { buildOpusHead } from "./opus.ts";
 *
 * buildOpusHead({ channels: 2, preSkip: 312, inputSampleRate: 48000 }).length; // 19
 * ```
 */
export function buildOpusHead(
  head: Pick<OpusHead, "channels" | "preSkip" | "inputSampleRate"> & Partial<OpusHead>,
): Uint8Array {
  const family = head.mappingFamily ?? 0;
  const { channels } = head;
  if (!Number.isInteger(channels) || channels < 1 || channels > 255) {
    throw new RangeError(`OpusHead channel count ${channels} out of range`);
  }
  if (family === 0 && channels > 2) {
    throw new RangeError("OpusHead family 0 allows 1 or 2 channels");
  }
  const mapping = head.channelMapping;
  if (family !== 0 && (mapping === undefined || mapping.length !== channels)) {
    throw new RangeError(`OpusHead family ${family} needs a mapping of ${channels} entries`);
  }
  const out = new Uint8Array(family === 0 ? 19 : 21 + channels);
  const dv = new DataView(out.buffer);
  out.set(MAGIC);
  out[8] = head.version ?? 1;
  out[9] = channels;
  dv.setUint16(10, head.preSkip, true);
  dv.setUint32(12, head.inputSampleRate, true);
  dv.setInt16(16, head.outputGain ?? 0, true);
  out[18] = family;
  if (family !== 0 && mapping) {
    out[19] = head.streamCount ?? channels;
    out[20] = head.coupledCount ?? 0;
    out.set(mapping, 21);
  }
  return out;
}

/** Samples at 48 kHz per frame for each TOC configuration 0..31. */
const FRAME_SAMPLES = [
  480,
  960,
  1920,
  2880, // SILK NB
  480,
  960,
  1920,
  2880, // SILK MB
  480,
  960,
  1920,
  2880, // SILK WB
  480,
  960, // Hybrid SWB
  480,
  960, // Hybrid FB
  120,
  240,
  480,
  960, // CELT NB
  120,
  240,
  480,
  960, // CELT WB
  120,
  240,
  480,
  960, // CELT SWB
  120,
  240,
  480,
  960, // CELT FB
];

/**
 * The number of samples at 48 kHz in one Opus packet, from its TOC byte and
 * frame count.
 *
 * @throws {RangeError} on an empty packet, a missing frame count, or more than 120 ms.
 * @example
 * ```ts
 * import { opusPacketSamples } from "./opus.ts";
 *
 * opusPacketSamples(new Uint8Array([0xfc])); // 960 (CELT FB 20 ms, one frame)
 * ```
 */
export function opusPacketSamples(packet: Uint8Array): number {
  if (packet.length === 0) throw new RangeError("empty Opus packet");
  const toc = packet[0];
  const perFrame = FRAME_SAMPLES[toc >> 3];
  const code = toc & 3;
  let frames: number;
  if (code === 0) frames = 1;
  else if (code !== 3) frames = 2;
  else {
    if (packet.length < 2) throw new RangeError("Opus code 3 packet without a frame count");
    frames = packet[1] & 0x3f;
    if (frames === 0) throw new RangeError("Opus code 3 packet with 0 frames");
  }
  const samples = frames * perFrame;
  if (samples > 5760) throw new RangeError(`Opus packet of ${samples} samples exceeds 120 ms`);
  return samples;
}
