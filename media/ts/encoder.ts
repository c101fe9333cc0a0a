/**
 * The synchronous core of the MPEG-TS muxer: one {@linkcode MediaFrame} in,
 * the transport stream bytes for it out.
 *
 * @module
 */

import { FrameFlags, type MediaFrame } from "../../bus/frame.ts";
import { type AacConfig, parseAudioSpecificConfig, writeAdtsHeader } from "../codec/aac.ts";
import { H264NalType, isH264Keyframe, parseAvcConfig } from "../codec/h264.ts";
import { H265NalType, isH265Keyframe, parseHevcConfig } from "../codec/h265.ts";
import { hasNalUnit, lengthPrefixedFromNalUnits, writeAnnexB } from "../codec/nal.ts";
import { parseOpusHead } from "../codec/opus.ts";
import { TS_PACKET_SIZE, TsPid, TsStreamType } from "./constants.ts";
import {
  AF_DISCONTINUITY,
  AF_PCR,
  AF_RANDOM_ACCESS,
  packetCount,
  writePayloadPackets,
  writePcrPacket,
} from "./_packet.ts";
import {
  pesHeaderSize,
  STREAM_ID_AUDIO,
  STREAM_ID_PRIVATE_1,
  STREAM_ID_VIDEO,
  writePesHeader,
} from "./_pes.ts";
import { patPacket, pmtPacket, type PmtStream } from "./_psi.ts";
import { wrap33 } from "./_timestamp.ts";

/** Video codecs the muxer carries. */
export type TsVideoCodec = "h264" | "h265";
/** Audio codecs the muxer carries. */
export type TsAudioCodec = "aac" | "opus";

/** Options of {@linkcode TsEncoder} and {@linkcode TsMuxer}. */
export interface TsEncoderOptions {
  /**
   * The video codec to declare in the PMT from the start, or `null` for no
   * video track (video frames are then dropped). When omitted the muxer
   * infers it from the input (see `probeDuration`).
   */
  video?: TsVideoCodec | null;
  /** The audio codec to declare, or `null` for no audio track. Inferred when omitted. */
  audio?: TsAudioCodec | null;
  /**
   * When a codec is inferred, frames are held until both kinds have been seen
   * or their timestamps span this many 90 kHz ticks (default 90000, one
   * second), then the PMT is written. A kind that appears later is added with
   * a new PMT version.
   */
  probeDuration?: number;
  /**
   * How far the PCR runs behind the DTS, in 90 kHz ticks (default 63000,
   * 700 ms like ffmpeg's `-muxdelay`): the decoder buffering a receiver that
   * follows the PCR gets. Timestamps themselves are never shifted.
   */
  pcrDelay?: number;
}

/** Counters kept by {@linkcode TsEncoder}. */
export interface TsEncoderStats {
  /** Media frames written. */
  frames: number;
  /** Frames dropped: codec not declared, no decoder config yet, or a malformed payload. */
  dropped: number;
  /** Transport stream packets written. */
  packets: number;
}

/** A slab's bookkeeping for reusing it once every output cut from it is given back. */
interface SlabUse {
  readonly slab: Uint8Array;
  /** Bytes of outputs handed out from it. */
  handedOut: number;
  /** Bytes of those given back with {@linkcode TsEncoder.release}. */
  released: number;
  /** Whether the encoder has moved on to another slab. */
  retired: boolean;
}

/** One elementary stream of the output program. */
interface OutTrack {
  readonly kind: "video" | "audio";
  codec: string;
  /** The `MediaFrame.track` that feeds this stream. */
  readonly track: number;
  readonly pid: number;
  cc: number;
  /** Video: VPS/SPS/PPS from the last CONFIG, length-prefixed, inserted before keyframes. */
  parameterSets?: Uint8Array;
  /** AAC: the config from the last AudioSpecificConfig, for ADTS headers. */
  aac?: AacConfig;
  /** Opus: channel_config_code for the extension descriptor. */
  opusChannels?: number;
  /** Opus: the pre-skip still to be sent as the start trim of the next packet. */
  opusPreSkip?: number;
}

/** H.264 access unit delimiter (primary_pic_type 7: any slice type), with start code. */
const AUD_H264 = new Uint8Array([0, 0, 0, 1, 0x09, 0xf0]);
/** H.265 access unit delimiter (pic_type 2: any slice type), with start code. */
const AUD_H265 = new Uint8Array([0, 0, 0, 1, 0x46, 0x01, 0x50]);
/** An audio frame forces a PCR on the video PID when the last one is this old (40 ms). */
const PCR_INTERVAL = 3600;
/** Without video, PAT and PMT are repeated at least this often (500 ms). */
const PSI_INTERVAL = 45000;
/** Frames held at most while probing, whatever their timestamps. */
const PROBE_MAX_FRAMES = 512;
/** Bytes of each output slab (see `#allocate`): 5577 packets. */
const SLAB_SIZE = 5577 * TS_PACKET_SIZE;
/** An ADTS frame is at most 8191 bytes. */
const ADTS_MAX_PAYLOAD = 8191 - 7;

const isVideoCodec = (c: string): c is TsVideoCodec => c === "h264" || c === "h265";
const isAudioCodec = (c: string): c is TsAudioCodec => c === "aac" || c === "opus";
const h264Type = (header: number) => header & 0x1f;
const h265Type = (header: number) => (header >> 1) & 0x3f;

/**
 * Muxes {@linkcode MediaFrame}s into an MPEG transport stream, one call per
 * frame, returning the packets for that frame as one `Uint8Array` the caller
 * owns: the encoder never writes those bytes again, unless the caller gives
 * them back with {@linkcode TsEncoder.release}. Outputs are views into shared
 * 1 MiB slabs (consecutive outputs are adjacent), so do not transfer their
 * buffers. This is the engine of {@linkcode TsMuxer}; use it directly when you
 * cut the output yourself, as an HLS segmenter does (which gives each
 * segment's bytes back once they are stored, so a long run writes into the
 * same few slabs instead of fresh memory).
 *
 * One program: PMT on PID 0x1000, video on 0x100, audio on 0x101. The PAT
 * and PMT lead the stream and are repeated before every video keyframe (every
 * 500 ms without video). The PCR rides on the video PID (the audio PID
 * without video) at least every 40 ms of input time. Video gets an access
 * unit delimiter and, before keyframes, the parameter sets of the last CONFIG
 * frame unless the access unit carries its own; AAC gets ADTS headers from
 * the last AudioSpecificConfig; Opus gets the TS control header.
 *
 * @example Mux one keyframe
 * ```ts
 * import { FrameFlags } from "../../bus/frame.ts";
 * import { TsEncoder } from "./encoder.ts";
 *
 * const enc = new TsEncoder({ video: "h264", audio: null });
 * const bytes = enc.encode({
 *   track: 0,
 *   kind: "video",
 *   codec: "h264",
 *   pts: 3000,
 *   dts: 3000,
 *   flags: FrameFlags.KEYFRAME,
 *   data: new Uint8Array([0, 0, 0, 2, 0x65, 0x88]),
 * });
 * bytes?.length; // 564: PAT, PMT, one PES packet
 * ```
 */
export class TsEncoder {
  #options: TsEncoderOptions;
  readonly #pcrDelay: number;
  readonly #probeDuration: number;
  readonly #stats: TsEncoderStats = { frames: 0, dropped: 0, packets: 0 };
  #video: OutTrack | undefined;
  #audio: OutTrack | undefined;
  /** Frames held until the program is known; undefined once started. */
  #probe: MediaFrame[] | undefined = [];
  #pat = patPacket(TsPid.PMT);
  #pmt: Uint8Array | undefined;
  #pmtVersion = -1;
  /** The continuity counter of each kind's PID when its track was dropped by a redeclare. */
  #droppedCc = { video: 0, audio: 0 };
  #patCc = 0;
  #pmtCc = 0;
  #tablesDue = true;
  #lastTables = 0;
  /** The mux clock: the highest DTS written, PCR = clock - pcrDelay. */
  #clock = Number.NaN;
  #lastPcrClock = Number.NaN;
  #pcrDiscontinuity = false;
  /** Output is carved from slabs: each frame gets its own region, not written again until released. */
  #slab: Uint8Array = new Uint8Array(0);
  #slabUsed = 0;
  /** The current slab's bookkeeping. */
  #slabUse: SlabUse | undefined;
  /** Slabs by buffer, for {@linkcode TsEncoder.release} (entries go with their slabs). */
  #slabUses = new WeakMap<ArrayBufferLike, SlabUse>();
  /** Full-size slabs whose outputs were all given back, to be written again. */
  #spareSlabs: Uint8Array[] = [];

  /** Creates an encoder; see {@linkcode TsEncoderOptions}. */
  constructor(options: TsEncoderOptions = {}) {
    this.#options = options;
    this.#pcrDelay = options.pcrDelay ?? 63000;
    this.#probeDuration = options.probeDuration ?? 90000;
  }

  /** Counters so far (a live view). */
  get stats(): Readonly<TsEncoderStats> {
    return this.#stats;
  }

  /**
   * The PAT and PMT as last written, for a receiver that joins between two of their repeats
   * (a stream without video repeats them only every 500 ms): their continuity counters are
   * those of the tables last written, so the tables the encoder writes next continue them.
   * `undefined` before any were written.
   */
  tables(): Uint8Array | undefined {
    if (this.#pmt === undefined || this.#probe !== undefined) return undefined;
    const out = new Uint8Array(2 * TS_PACKET_SIZE);
    out.set(this.#pat, 0);
    out[3] = 0x10 | ((this.#patCc + 15) & 15);
    out.set(this.#pmt, TS_PACKET_SIZE);
    out[TS_PACKET_SIZE + 3] = 0x10 | ((this.#pmtCc + 15) & 15);
    return out;
  }

  /** Makes the next frame written start with the PAT and PMT (for example at a segment cut). */
  forceTables(): void {
    this.#tablesDue = true;
  }

  /**
   * Muxes one frame. Returns its packets, or `undefined` when nothing is
   * written yet (CONFIG frames, frames held while probing, dropped frames).
   * Never throws for bad frames: they are dropped and counted.
   */
  encode(frame: MediaFrame): Uint8Array | undefined {
    if (this.#probe === undefined) return this.#write(frame);
    this.#probe.push(frame);
    return this.#probeDone() ? this.#start() : undefined;
  }

  /**
   * Changes the declared program (`null`: no track of that kind), e.g. between HLS
   * segments when a track appears or a codec changes. PIDs and continuity counters go on,
   * so a receiver sees no continuity error; the next frame starts with the PAT and a new
   * PMT version. A kind whose codec stays keeps its track and configuration.
   */
  redeclare(video: TsVideoCodec | null, audio: TsAudioCodec | null): void {
    this.#options = { ...this.#options, video, audio };
    if (this.#probe !== undefined) return; // not started: the first frames are declared so
    this.#video = this.#redeclared("video", video, this.#video);
    this.#audio = this.#redeclared("audio", audio, this.#audio);
    this.#pmt = undefined;
  }

  #redeclared(
    kind: "video" | "audio",
    codec: string | null,
    current: OutTrack | undefined,
  ): OutTrack | undefined {
    if (current?.codec === codec) return current;
    if (current) this.#droppedCc[kind] = current.cc;
    return codec === null ? undefined : this.#newTrack(kind, codec, kind === "video" ? 0 : 1);
  }

  /** Writes whatever is still held (input ended while probing). */
  flush(): Uint8Array | undefined {
    return this.#probe === undefined ? undefined : this.#start();
  }

  /**
   * Gives back outputs the caller is done with. A slab whose outputs have all
   * been given back is written again by later outputs instead of allocating
   * a new one, so after this the bytes of `outputs` may change at any time.
   * Give each output back once at most, whole or within a view joining
   * adjacent outputs of one slab; views the encoder did not return are ignored.
   *
   * @example Reuse memory once the bytes are written out
   * ```ts
   * import { FrameFlags } from "../../bus/frame.ts";
   * import { TsEncoder } from "./encoder.ts";
   *
   * const enc = new TsEncoder({ video: "h264", audio: null });
   * const bytes = enc.encode({
   *   track: 0, kind: "video", codec: "h264", pts: 3000, dts: 3000,
   *   flags: FrameFlags.KEYFRAME, data: new Uint8Array([0, 0, 0, 2, 0x65, 0x88]),
   * })!;
   * Deno.stdout.writeSync(bytes);
   * enc.release([bytes]);
   * ```
   */
  release(outputs: readonly Uint8Array[]): void {
    for (const out of outputs) {
      const use = this.#slabUses.get(out.buffer);
      if (use === undefined) continue;
      use.released += out.byteLength;
      this.#recycle(use);
    }
  }

  /** Makes `use`'s slab a spare once it is retired and all its outputs are back. */
  #recycle(use: SlabUse): void {
    if (!use.retired || use.released !== use.handedOut) return;
    this.#slabUses.delete(use.slab.buffer);
    if (use.slab.length === SLAB_SIZE) this.#spareSlabs.push(use.slab);
  }

  #probeDone(): boolean {
    const probe = this.#probe!;
    const { video, audio } = this.#options;
    let hasVideo = video !== undefined;
    let hasAudio = audio !== undefined;
    let min = Infinity;
    let max = -Infinity;
    for (const f of probe) {
      if (f.kind === "video" && isVideoCodec(f.codec)) hasVideo = true;
      if (f.kind === "audio" && isAudioCodec(f.codec)) hasAudio = true;
      if (f.dts < min) min = f.dts;
      if (f.dts > max) max = f.dts;
    }
    return (hasVideo && hasAudio) || max - min >= this.#probeDuration ||
      probe.length >= PROBE_MAX_FRAMES;
  }

  /** Declares the program and writes the held frames. */
  #start(): Uint8Array | undefined {
    const held = this.#probe!;
    this.#probe = undefined;
    const { video, audio } = this.#options;
    const firstVideo = held.find((f) => f.kind === "video" && isVideoCodec(f.codec));
    const firstAudio = held.find((f) => f.kind === "audio" && isAudioCodec(f.codec));
    const videoCodec = video === undefined ? firstVideo?.codec : video;
    const audioCodec = audio === undefined ? firstAudio?.codec : audio;
    if (videoCodec) this.#video = this.#newTrack("video", videoCodec, firstVideo?.track ?? 0);
    if (audioCodec) this.#audio = this.#newTrack("audio", audioCodec, firstAudio?.track ?? 1);
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (const f of held) {
      const out = this.#write(f);
      if (out) {
        chunks.push(out);
        size += out.length;
      }
    }
    if (chunks.length <= 1) return chunks[0];
    const joined = new Uint8Array(size);
    let pos = 0;
    for (const c of chunks) {
      joined.set(c, pos);
      pos += c.length;
    }
    this.release(chunks); // copied: their slab space is free
    return joined;
  }

  /** A new stream for `kind` (replacing the current one, whose PID and counter it keeps). */
  #newTrack(kind: "video" | "audio", codec: string, track: number): OutTrack {
    this.#pmt = undefined;
    const cc = (kind === "video" ? this.#video : this.#audio)?.cc ?? this.#droppedCc[kind];
    return { kind, codec, track, pid: kind === "video" ? TsPid.VIDEO : TsPid.AUDIO, cc };
  }

  /** The output track for `frame`, adding or switching an inferred one; undefined to drop. */
  #route(frame: MediaFrame): OutTrack | undefined {
    const video = frame.kind === "video";
    if (video ? !isVideoCodec(frame.codec) : !isAudioCodec(frame.codec)) return undefined;
    const declared = video ? this.#options.video : this.#options.audio;
    let t = video ? this.#video : this.#audio;
    if (t !== undefined && t.track !== frame.track) return undefined;
    if (t !== undefined && t.codec === frame.codec) return t;
    if (declared !== undefined) return undefined; // fixed by the options: other codecs dropped
    t = this.#newTrack(frame.kind, frame.codec, frame.track);
    if (video) this.#video = t;
    else this.#audio = t;
    return t;
  }

  #write(frame: MediaFrame): Uint8Array | undefined {
    const t = this.#route(frame);
    if (t === undefined || !Number.isFinite(frame.dts) || !Number.isFinite(frame.pts)) {
      this.#stats.dropped++;
      return undefined;
    }
    try {
      if (frame.flags & FrameFlags.CONFIG) {
        this.#configure(t, frame.data);
        return undefined;
      }
      return t.kind === "video" ? this.#writeVideo(t, frame) : this.#writeAudio(t, frame);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.#stats.dropped++; // malformed payload or config
      return undefined;
    }
  }

  #configure(t: OutTrack, data: Uint8Array): void {
    if (t.codec === "h264") {
      const c = parseAvcConfig(data);
      t.parameterSets = lengthPrefixedFromNalUnits([...c.sps, ...c.pps]);
    } else if (t.codec === "h265") {
      const c = parseHevcConfig(data);
      t.parameterSets = lengthPrefixedFromNalUnits([...c.vps, ...c.sps, ...c.pps]);
    } else if (t.codec === "aac") {
      t.aac = parseAudioSpecificConfig(data);
    } else {
      const head = parseOpusHead(data);
      const code = head.channels <= 8 && head.mappingFamily <= 1 ? head.channels : 0xff;
      if (code !== t.opusChannels) this.#pmt = undefined;
      t.opusChannels = code;
      t.opusPreSkip = head.preSkip;
    }
  }

  #writeVideo(t: OutTrack, frame: MediaFrame): Uint8Array {
    const au = frame.data;
    const h264 = t.codec === "h264";
    const type = h264 ? h264Type : h265Type;
    const audType = h264 ? H264NalType.AUD : H265NalType.AUD;
    const spsType = h264 ? H264NalType.SPS : H265NalType.SPS;
    const key = (frame.flags & FrameFlags.KEYFRAME) !== 0 ||
      (h264 ? isH264Keyframe(au) : isH265Keyframe(au));
    // An AUD already present must stay first; the parameter sets go after it.
    const lead = au.length > 4 && type(au[4]) === audType ? 4 + readU32(au, 0) : 0;
    const aud = lead > 0 || hasNalUnit(au, (h) => type(h) === audType)
      ? undefined
      : h264
      ? AUD_H264
      : AUD_H265;
    const params = key && t.parameterSets && !hasNalUnit(au, (h) => type(h) === spsType)
      ? t.parameterSets
      : undefined;
    const esLength = (aud?.length ?? 0) + (params?.length ?? 0) + au.length;
    return this.#emit(t, frame, key, esLength, (out, pos) => {
      if (lead > 0) pos += writeAnnexB(au.subarray(0, lead), out, pos);
      if (aud) {
        out.set(aud, pos);
        pos += aud.length;
      }
      if (params) pos += writeAnnexB(params, out, pos);
      writeAnnexB(lead > 0 ? au.subarray(lead) : au, out, pos);
    });
  }

  #writeAudio(t: OutTrack, frame: MediaFrame): Uint8Array | undefined {
    const au = frame.data;
    if (t.codec === "aac") {
      const cfg = t.aac;
      if (cfg === undefined || au.length > ADTS_MAX_PAYLOAD) {
        this.#stats.dropped++;
        return undefined;
      }
      return this.#emit(t, frame, true, 7 + au.length, (out, pos) => {
        writeAdtsHeader(out, pos, cfg, au.length);
        out.set(au, pos + 7);
      });
    }
    // Opus: control header 0x7FE0, au_size as 255-runs, the pre-skip of the OpusHead as the
    // start trim of the first packet after it, then the packet.
    const sizeBytes = Math.floor(au.length / 255) + 1;
    const trim = t.opusPreSkip ?? 0;
    const header = 2 + sizeBytes + (trim > 0 ? 2 : 0);
    const out = this.#emit(t, frame, true, header + au.length, (out, pos) => {
      out[pos] = 0x7f;
      out[pos + 1] = trim > 0 ? 0xf0 : 0xe0;
      out.fill(0xff, pos + 2, pos + 1 + sizeBytes);
      out[pos + 1 + sizeBytes] = au.length % 255;
      if (trim > 0) {
        out[pos + 2 + sizeBytes] = trim >> 8;
        out[pos + 3 + sizeBytes] = trim & 0xff;
      }
      out.set(au, pos + header);
    });
    t.opusPreSkip = 0;
    return out;
  }

  /**
   * Allocates the frame's output, lets `writeEs` fill the elementary stream
   * bytes at its tail (it may throw RangeError before anything is committed),
   * then writes tables, PCR and the PES packets in front of it.
   */
  #emit(
    t: OutTrack,
    frame: MediaFrame,
    key: boolean,
    esLength: number,
    writeEs: (out: Uint8Array, pos: number) => void,
  ): Uint8Array {
    const video = t.kind === "video";
    const pcrTrack = this.#video ?? this.#audio!;
    let clock = this.#clock;
    let pcrDiscontinuity = this.#pcrDiscontinuity;
    if (Number.isNaN(clock) || frame.dts > clock) clock = frame.dts;
    else if (frame.flags & FrameFlags.DISCONTINUITY && frame.dts < clock) {
      clock = frame.dts; // timestamps restarted: a new PCR time base
      pcrDiscontinuity = true;
    }
    // A PCR is written only when it moves on (equal PCRs at two byte positions mean an
    // infinite rate to a receiver): on every frame of the PCR PID, and as a packet of its
    // own when frames of the other PID are the ones moving the clock.
    const last = this.#lastPcrClock;
    const elapsed = Number.isNaN(last) || pcrDiscontinuity ? Infinity : clock - last;
    const onPcrPid = t === pcrTrack && elapsed > 0;
    const pcrPacket = t !== pcrTrack && elapsed >= PCR_INTERVAL;
    const tables = this.#tablesDue || this.#pmt === undefined || (video && key) ||
      (this.#video === undefined && clock - this.#lastTables >= PSI_INTERVAL);
    let flags = key ? AF_RANDOM_ACCESS : 0;
    if (onPcrPid) flags |= AF_PCR | (pcrDiscontinuity ? AF_DISCONTINUITY : 0);
    const pts = wrap33(frame.pts);
    const dts = wrap33(frame.dts);
    const headerSize = pesHeaderSize(pts !== dts);
    const pesLength = headerSize + esLength;
    const count = (tables ? 2 : 0) + (pcrPacket ? 1 : 0) + packetCount(pesLength, flags);
    const out = this.#allocate(count * TS_PACKET_SIZE);
    const pesStart = out.length - pesLength;
    writeEs(out, pesStart + headerSize);
    // Committed from here on.
    const streamId = video
      ? STREAM_ID_VIDEO
      : t.codec === "aac"
      ? STREAM_ID_AUDIO
      : STREAM_ID_PRIVATE_1;
    writePesHeader(out, pesStart, streamId, pts, dts, esLength, !video);
    let pos = 0;
    if (tables) {
      pos = this.#writeTables(out);
      this.#lastTables = clock;
    }
    const pcr = wrap33(clock - this.#pcrDelay);
    if (pcrPacket) {
      const flag = pcrDiscontinuity ? AF_DISCONTINUITY : 0;
      writePcrPacket(out, pos, pcrTrack.pid, pcrTrack.cc, flag, pcr);
      pos += TS_PACKET_SIZE;
    }
    t.cc = writePayloadPackets(out, pos, pesStart, pesLength, t.pid, t.cc, flags, pcr);
    this.#clock = clock;
    if (onPcrPid || pcrPacket) {
      this.#lastPcrClock = clock;
      this.#pcrDiscontinuity = false;
    } else {
      this.#pcrDiscontinuity = pcrDiscontinuity;
    }
    this.#stats.frames++;
    this.#stats.packets += count;
    this.#slabUse!.handedOut += out.length;
    return out;
  }

  /**
   * A region of `size` bytes for one frame's output, not handed out before
   * (or given back since). Regions are cut from 1 MiB slabs, spare ones first
   * (one allocation per ~100 frames instead of one each, none while outputs
   * come back); the caller owns a region until it releases it.
   */
  #allocate(size: number): Uint8Array {
    if (this.#slabUsed + size > this.#slab.length) {
      if (this.#slabUse) {
        this.#slabUse.retired = true;
        this.#recycle(this.#slabUse);
      }
      this.#slab = (size <= SLAB_SIZE && this.#spareSlabs.pop()) ||
        new Uint8Array(Math.max(SLAB_SIZE, size));
      this.#slabUsed = 0;
      this.#slabUse = { slab: this.#slab, handedOut: 0, released: 0, retired: false };
      this.#slabUses.set(this.#slab.buffer, this.#slabUse);
    }
    const out = this.#slab.subarray(this.#slabUsed, this.#slabUsed + size);
    this.#slabUsed += size;
    return out;
  }

  /** Writes PAT and PMT at the start of `out` (rebuilding the PMT if the program changed). */
  #writeTables(out: Uint8Array): number {
    if (this.#pmt === undefined) {
      this.#pmtVersion = (this.#pmtVersion + 1) & 31;
      const streams: PmtStream[] = [];
      if (this.#video) streams.push(videoStream(this.#video));
      if (this.#audio) streams.push(audioStream(this.#audio));
      const pcrPid = (this.#video ?? this.#audio)?.pid ?? TsPid.NULL;
      this.#pmt = pmtPacket(TsPid.PMT, this.#pmtVersion, pcrPid, streams);
    }
    out.set(this.#pat, 0);
    out[3] = 0x10 | this.#patCc;
    this.#patCc = (this.#patCc + 1) & 15;
    out.set(this.#pmt, TS_PACKET_SIZE);
    out[TS_PACKET_SIZE + 3] = 0x10 | this.#pmtCc;
    this.#pmtCc = (this.#pmtCc + 1) & 15;
    this.#tablesDue = false;
    return 2 * TS_PACKET_SIZE;
  }
}

function readU32(b: Uint8Array, pos: number): number {
  return ((b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]) >>> 0;
}

function videoStream(t: OutTrack): PmtStream {
  const streamType = t.codec === "h264" ? TsStreamType.H264 : TsStreamType.H265;
  return { streamType, pid: t.pid, descriptors: new Uint8Array(0) };
}

function audioStream(t: OutTrack): PmtStream {
  if (t.codec === "aac") {
    return { streamType: TsStreamType.AAC, pid: t.pid, descriptors: new Uint8Array(0) };
  }
  // registration_descriptor 'Opus' + DVB extension descriptor (tag 0x80) with channel_config_code
  const descriptors = new Uint8Array([
    0x05,
    4,
    0x4f,
    0x70,
    0x75,
    0x73,
    0x7f,
    2,
    0x80,
    t.opusChannels ?? 2,
  ]);
  return { streamType: TsStreamType.PRIVATE_DATA, pid: t.pid, descriptors };
}
