/**
 * AAC over RTP as `MP4A-LATM` (RFC 6416): the LATM framing of ISO/IEC 14496-3 1.7.3 with
 * its StreamMuxConfig either out of band in the SDP (`cpresent=0`, `config=` in hex) or in
 * band in the payloads (`cpresent=1`), receiving side. This is what GStreamer's
 * `rtpmp4apay` and `rtspclientsink` send for AAC by default.
 *
 * One program with one layer is carried (what every encoder writes), with
 * `frameLengthType` 0 (byte lengths before each access unit) and all streams on the same
 * time framing.
 *
 * @module
 */

import { BitReader } from "../codec/bits.ts";
import { parseAudioSpecificConfig, readAudioSpecificConfig } from "../codec/aac.ts";
import { type AccessUnitHandler, type DepacketizerOptions, SequenceGap } from "./payload.ts";
import type { RtpPacket } from "./packet.ts";

/** The parts of a StreamMuxConfig that shape the payloads that follow it. */
export interface StreamMuxConfig {
  /** `audioMuxVersion` (0 or 1). */
  readonly audioMuxVersion: number;
  /** Access units per AudioMuxElement (`numSubFrames` + 1). */
  readonly subFrames: number;
  /** The AudioSpecificConfig of the one stream, byte-aligned. */
  readonly audioSpecificConfig: Uint8Array;
  /** Bits of other data after the payloads of each AudioMuxElement. */
  readonly otherDataBits: number;
  /** Whether a CRC byte ends the config. */
  readonly crcPresent: boolean;
}

/** The `fmtp` parameters of an `MP4A-LATM` stream. */
export interface LatmParams {
  /** Whether the payloads carry their StreamMuxConfig (`cpresent`, 1 by default). */
  readonly configInBand: boolean;
  /** The StreamMuxConfig from `config` (hex), when given. */
  readonly config?: StreamMuxConfig;
}

/** LatmGetValue(): a value of one to four bytes, its byte count first. */
function latmValue(r: BitReader): number {
  const bytes = r.readBits(2) + 1;
  return r.readBits(8 * bytes);
}

/**
 * Reads a StreamMuxConfig at bit `offset` of `data` (ISO/IEC 14496-3 1.7.3.1). With
 * `truncatedTail`, the fields after the AudioSpecificConfig read as zero where the data
 * ends: GStreamer's `rtpmp4apay` cuts them off an SDP `config` when the AudioSpecificConfig
 * carries SBR signalling (5 bytes), and ffmpeg reads such configs too.
 *
 * @throws {RangeError} when it is truncated or describes more than this module carries
 *   (several programs or layers, `audioMuxVersionA` 1, frame length types other than 0,
 *   streams on different time framings).
 * @example
 * ```ts
 * import { readStreamMuxConfig } from "@arcly/stream/rtp";
 *
 * // GStreamer's config for 44.1 kHz mono AAC LC
 * const bytes = new Uint8Array([0x40, 0x00, 0x24, 0x10, 0xad, 0xca, 0x00]);
 * readStreamMuxConfig(bytes, 0).config.audioSpecificConfig; // Uint8Array [0x12, 0x08]
 * ```
 */
export function readStreamMuxConfig(
  data: Uint8Array,
  offset: number,
  { truncatedTail = false } = {},
): { config: StreamMuxConfig; bits: number } {
  const r = new BitReader(data);
  r.skipBits(offset);
  const audioMuxVersion = r.readBit();
  if (audioMuxVersion === 1 && r.readBit() === 1) {
    throw new RangeError("LATM audioMuxVersionA 1 is not supported");
  }
  if (audioMuxVersion === 1) latmValue(r); // taraBufferFullness
  if (!r.readFlag()) throw new RangeError("LATM streams on different time framings");
  const subFrames = r.readBits(6) + 1;
  if (r.readBits(4) !== 0) throw new RangeError("LATM with several programs is not supported");
  if (r.readBits(3) !== 0) throw new RangeError("LATM with several layers is not supported");
  let audioSpecificConfig: Uint8Array;
  if (audioMuxVersion === 0) {
    const asc = readAudioSpecificConfig(data, r.position);
    r.skipBits(asc.bits);
    audioSpecificConfig = asc.config;
  } else {
    const length = latmValue(r);
    const asc = readAudioSpecificConfig(data, r.position);
    if (asc.bits > length) throw new RangeError("LATM AudioSpecificConfig overruns its length");
    r.skipBits(length);
    audioSpecificConfig = asc.config;
  }
  const read = (n: number) => {
    if (!truncatedTail || r.bitsLeft >= n) return r.readBits(n);
    const k = r.bitsLeft;
    return (k > 0 ? r.readBits(k) : 0) * 2 ** (n - k);
  };
  const frameLengthType = read(3);
  if (frameLengthType !== 0) {
    throw new RangeError(`LATM frameLengthType ${frameLengthType} is not supported`);
  }
  read(8); // latmBufferFullness
  let otherDataBits = 0;
  if (read(1)) {
    if (audioMuxVersion === 1) {
      otherDataBits = latmValue(r);
    } else {
      let escape: number;
      do {
        escape = read(1);
        otherDataBits = otherDataBits * 256 + read(8);
      } while (escape && otherDataBits < 2 ** 24);
      if (escape) throw new RangeError("LATM otherDataLenBits too long");
    }
  }
  const crcPresent = read(1) === 1;
  if (crcPresent) read(8);
  return {
    config: { audioMuxVersion, subFrames, audioSpecificConfig, otherDataBits, crcPresent },
    bits: r.position - offset,
  };
}

/**
 * Reads the `fmtp` parameters of an `MP4A-LATM` stream. Returns a reason instead when the
 * stream cannot be carried: a malformed or unsupported `config`, or none while
 * `cpresent=0` says the payloads will not carry one either.
 *
 * @example
 * ```ts
 * import { latmParams } from "@arcly/stream/rtp";
 *
 * const params = latmParams({ cpresent: "0", config: "40002410adca00" });
 * typeof params === "string" ? params : params.config?.audioSpecificConfig; // [0x12, 0x08]
 * ```
 */
export function latmParams(fmtp: Readonly<Record<string, string>>): LatmParams | string {
  const cpresent = fmtp["cpresent"] ?? "1";
  if (cpresent !== "0" && cpresent !== "1") return `MP4A-LATM cpresent=${cpresent}`;
  const configInBand = cpresent === "1";
  const hex = fmtp["config"];
  if (hex === undefined || hex === "") {
    return configInBand ? { configInBand } : "MP4A-LATM with cpresent=0 and no config";
  }
  if (hex.length % 2 !== 0 || !/^[0-9a-f]+$/i.test(hex)) return "MP4A-LATM config is not hex";
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  try {
    const { config } = readStreamMuxConfig(bytes, 0, { truncatedTail: true });
    parseAudioSpecificConfig(config.audioSpecificConfig);
    return { configInBand, config };
  } catch (error) {
    return `MP4A-LATM config: ${(error as Error).message}`;
  }
}

/**
 * Turns `MP4A-LATM` RTP payloads into AAC access units. An AudioMuxElement may span
 * several packets (the marker bit ends it) and a packet may hold several elements; each
 * element holds `subFrames` access units, timestamped one frame apart from the packet's.
 * With in-band configs the newest one is in {@linkcode LatmDepacketizer.config}; units
 * before the first config are dropped. Malformed payloads and incomplete elements are
 * dropped and counted; after a lost packet, what arrives up to the next marker bit is
 * dropped too, since LATM payloads cannot say where an element's middle begins.
 *
 * @example
 * ```ts
 * import { LatmDepacketizer, latmParams, RtpPacket } from "@arcly/stream/rtp";
 *
 * const params = latmParams({ cpresent: "0", config: "40002410adca00" });
 * if (typeof params === "string") throw new Error(params);
 * const got: [number, number][] = [];
 * const d = new LatmDepacketizer(params, 44100, (ts, au) => got.push([ts, au.length]));
 * // one AudioMuxElement: a 2-byte access unit
 * d.push(new RtpPacket().parse(new Uint8Array([
 *   0x80, 0xe0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0xaa, 0xbb,
 * ])));
 * console.log(got); // [[0, 2]]
 * ```
 */
export class LatmDepacketizer {
  /** Payloads dropped: malformed, before a config, or elements that never completed. */
  dropped = 0;
  /** Packets missing according to sequence numbers. */
  lost = 0;
  #configInBand: boolean;
  #config: StreamMuxConfig | undefined;
  #ticksPerFrame = 1024;
  #clockRate: number;
  #emit: AccessUnitHandler;
  #max: number;
  #pending: Uint8Array;
  #filled = 0;
  #timestamp = 0;
  #sequence = new SequenceGap();
  /** After a loss: packets up to the next marker continue an element whose start is gone. */
  #resync = false;

  /** Make a depacketizer for `params` on an RTP clock of `clockRate` Hz. */
  constructor(
    params: LatmParams,
    clockRate: number,
    emit: AccessUnitHandler,
    options: DepacketizerOptions = {},
  ) {
    this.#configInBand = params.configInBand;
    this.#clockRate = clockRate;
    this.#emit = emit;
    this.#max = options.maxAccessUnitBytes ?? 65536;
    this.#pending = new Uint8Array(0);
    if (params.config) this.#useConfig(params.config);
  }

  /** The AudioSpecificConfig of the newest StreamMuxConfig, once one is known. */
  get config(): Uint8Array | undefined {
    return this.#config?.audioSpecificConfig;
  }

  /** Take one RTP packet. */
  push(packet: RtpPacket): void {
    const gap = this.#sequence.next(packet.sequence);
    if (gap < 0) {
      this.dropped++;
      return;
    }
    if (gap > 0) {
      this.lost += gap;
      this.#dropPending();
      this.#resync = true;
    }
    if (this.#resync) {
      this.#resync = !packet.marker;
      this.dropped++;
      return;
    }
    if (this.#filled > 0 && packet.timestamp !== this.#timestamp) this.#dropPending();
    const payload = packet.payload;
    if (this.#filled + payload.length > this.#max) {
      this.#dropPending();
      this.dropped++;
      return;
    }
    if (this.#filled === 0 && packet.marker) return this.#elements(payload, packet.timestamp);
    if (this.#pending.length < this.#filled + payload.length) {
      const grown = new Uint8Array(Math.min(this.#max, 2 * (this.#filled + payload.length)));
      grown.set(this.#pending.subarray(0, this.#filled));
      this.#pending = grown;
    }
    this.#pending.set(payload, this.#filled);
    this.#filled += payload.length;
    this.#timestamp = packet.timestamp;
    if (!packet.marker) return;
    const element = this.#pending.slice(0, this.#filled);
    this.#filled = 0;
    this.#elements(element, packet.timestamp);
  }

  #useConfig(config: StreamMuxConfig): void {
    const { sampleRate, samplesPerFrame } = parseAudioSpecificConfig(config.audioSpecificConfig);
    this.#config = config;
    this.#ticksPerFrame = Math.round(samplesPerFrame * this.#clockRate / sampleRate);
  }

  /** The AudioMuxElements of one complete payload. */
  #elements(data: Uint8Array, timestamp: number): void {
    let offset = 0;
    try {
      do {
        offset = this.#element(data, offset, timestamp);
        timestamp = (timestamp + this.#ticksPerFrame * this.#config!.subFrames) >>> 0;
      } while (data.length - (offset >> 3) > 0);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      this.dropped++;
    }
  }

  /** One AudioMuxElement at bit `offset`; returns the bit offset after it, byte-aligned. */
  #element(data: Uint8Array, offset: number, timestamp: number): number {
    const r = new BitReader(data);
    r.skipBits(offset);
    if (this.#configInBand && !r.readFlag()) { // useSameStreamMux
      const read = readStreamMuxConfig(data, r.position);
      r.skipBits(read.bits);
      this.#useConfig(read.config);
    }
    const config = this.#config;
    if (!config) throw new RangeError("LATM payload before its StreamMuxConfig");
    const lengths: number[] = [];
    const starts: number[] = [];
    for (let i = 0; i < config.subFrames; i++) {
      let length = 0;
      let byte: number;
      do {
        byte = r.readBits(8);
        length += byte;
      } while (byte === 255);
      if (length > this.#max || length * 8 > r.bitsLeft) {
        throw new RangeError(`LATM access unit of ${length} bytes overruns the payload`);
      }
      lengths.push(length);
      starts.push(r.position);
      r.skipBits(length * 8);
    }
    r.skipBits(config.otherDataBits);
    for (let i = 0; i < lengths.length; i++) {
      if (lengths[i] === 0) continue;
      this.#emit(
        (timestamp + i * this.#ticksPerFrame) >>> 0,
        bitsToBytes(data, starts[i], lengths[i]),
      );
    }
    return (r.position + 7) & ~7;
  }

  #dropPending(): void {
    if (this.#filled === 0) return;
    this.#filled = 0;
    this.dropped++;
  }
}

/** `length` bytes of `data` starting at bit `start` (a copy; aligned starts copy directly). */
function bitsToBytes(data: Uint8Array, start: number, length: number): Uint8Array {
  if ((start & 7) === 0) return data.slice(start >> 3, (start >> 3) + length);
  const r = new BitReader(data);
  r.skipBits(start);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = r.readBits(8);
  return out;
}
