/**
 * The synchronous core of the MPEG-TS demuxer: bytes in, {@linkcode MediaFrame}s out.
 *
 * @module
 */

import { type CodecId, FrameFlags, type MediaFrame } from "../../bus/frame.ts";
import { TS_PACKET_SIZE, TsPid, TsStreamType } from "./constants.ts";
import { AdtsEs, type EsParser, OpusEs, VideoEs } from "./_es.ts";
import { PAYLOAD_MAX } from "./_packet.ts";
import { parsePesHeader } from "./_pes.ts";
import { findDescriptor, parsePat, parsePmt, SectionAssembler } from "./_psi.ts";
import { Unwrapper } from "./_timestamp.ts";

/** Options of {@linkcode TsDecoder} and {@linkcode TsDemuxer}. */
export interface TsDecoderOptions {
  /**
   * The largest PES packet reassembled, in bytes (default 16 MiB). A larger
   * one is dropped and the next frame of its track flagged DISCONTINUITY.
   */
  maxPesSize?: number;
  /**
   * Bytes without a single valid packet at the start after which the input is
   * declared not to be MPEG-TS (default 1 MiB). Garbage after the first valid
   * packet is skipped and counted, never fatal.
   */
  maxSyncSearch?: number;
}

/** Counters kept by {@linkcode TsDecoder}. */
export interface TsDecoderStats {
  /** Transport packets parsed. */
  packets: number;
  /** Bytes skipped while looking for packet sync, plus unparseable elementary stream bytes. */
  garbageBytes: number;
  /** Continuity counter jumps and transport_error_indicator packets on tracked PIDs. */
  continuityErrors: number;
  /** PES packets dropped: damaged, truncated, oversized or malformed. */
  droppedPes: number;
  /** PSI sections dropped for a bad CRC or size. */
  sectionErrors: number;
  /** Frames emitted (CONFIG frames included). */
  frames: number;
}

/** One elementary stream being demuxed. */
interface InStream {
  readonly pid: number;
  readonly streamType: number;
  readonly kind: "video" | "audio";
  readonly codec: CodecId;
  readonly track: number;
  readonly es: EsParser;
  /** Last continuity counter, -1 before the first packet. */
  cc: number;
  buf: Uint8Array;
  len: number;
  /** A PES is being reassembled. */
  active: boolean;
  /**
   * The last packet of the open PES ended in adaptation-field stuffing: a muxer pads only a
   * PES's last packet, so the PES is likely whole even without a declared length.
   */
  endsInStuffing: boolean;
  randomAccess: boolean;
  /** The next frame of this track gets DISCONTINUITY. */
  discontinuity: boolean;
  lastPts: number;
  lastDts: number;
}

const SYNC = 0x47;
const INITIAL_PES_BUFFER = 64 * 1024;

/**
 * Demuxes an MPEG transport stream into {@linkcode MediaFrame}s, one chunk
 * at a time with chunk boundaries anywhere. This is the engine of
 * {@linkcode TsDemuxer}; use it directly for datagram input (SRT, UDP).
 *
 * The first program of the PAT is followed through PMT changes; its first
 * H.264/H.265 stream becomes track 0 and its first AAC (ADTS) or Opus stream
 * track 1. Video becomes length-prefixed NAL units without access unit
 * delimiters, with a CONFIG frame (avcC/hvcC) whenever the in-band parameter
 * sets change. ADTS is split into raw access units with a CONFIG frame
 * (AudioSpecificConfig) whenever the config changes. Timestamps are unwrapped
 * from 33 bits into one monotonic timeline. A continuity error drops the
 * damaged PES and flags the next frame of that track DISCONTINUITY.
 *
 * @example Demux a file in one go
 * ```ts ignore
 * import { TsDecoder } from "@arcly/stream/ts";
 *
 * const dec = new TsDecoder();
 * const frames = [];
 * dec.decode(await Deno.readFile("in.ts"), (f) => frames.push(f));
 * dec.flush((f) => frames.push(f));
 * ```
 */
export class TsDecoder {
  readonly #maxPes: number;
  readonly #maxSync: number;
  readonly #stats: TsDecoderStats = {
    packets: 0,
    garbageBytes: 0,
    continuityErrors: 0,
    droppedPes: 0,
    sectionErrors: 0,
    frames: 0,
  };
  /** Bytes of an unfinished packet or undecided sync (< 2 packets) carried to the next chunk. */
  readonly #pending = new Uint8Array(TS_PACKET_SIZE * 5);
  #pendingLength = 0;
  #synced = false;
  readonly #pat = new SectionAssembler();
  readonly #pmt = new SectionAssembler();
  #patCc = -1;
  #pmtCc = -1;
  #pmtPid = -1;
  #pmtCrc = -1;
  readonly #byPid: (InStream | undefined)[] = new Array(8192);
  #streams: InStream[] = [];
  readonly #clock = new Unwrapper();
  #emit: (frame: MediaFrame) => void = () => {};

  /** Creates a decoder; see {@linkcode TsDecoderOptions}. */
  constructor(options: TsDecoderOptions = {}) {
    this.#maxPes = options.maxPesSize ?? 16 * 1024 * 1024;
    this.#maxSync = options.maxSyncSearch ?? 1024 * 1024;
  }

  /** Counters so far (a live view). */
  get stats(): Readonly<TsDecoderStats> {
    return this.#stats;
  }

  /**
   * Parses `chunk` (any length), calling `emit` for each completed frame.
   * `chunk` is not kept; emitted payloads are owned by the receiver.
   *
   * @throws {Error} when no valid packet is found in the first
   * `maxSyncSearch` bytes (the input is not MPEG-TS).
   */
  decode(chunk: Uint8Array, emit: (frame: MediaFrame) => void): void {
    this.#emit = emit;
    let offset = 0;
    if (this.#pendingLength > 0) {
      const pending = this.#pending;
      const had = this.#pendingLength;
      const take = Math.min(chunk.length, pending.length - had);
      pending.set(chunk.subarray(0, take), had);
      const total = had + take;
      const stop = this.#scan(pending, 0, total, had, false);
      if (stop < had) {
        pending.copyWithin(0, stop, total);
        this.#pendingLength = total - stop;
        this.#checkSync();
        return;
      }
      offset = stop - had;
      this.#pendingLength = 0;
    }
    const stop = this.#scan(chunk, offset, chunk.length, chunk.length, false);
    if (stop < chunk.length) {
      this.#pending.set(chunk.subarray(stop));
      this.#pendingLength = chunk.length - stop;
    }
    this.#checkSync();
  }

  /**
   * Ends the input: parses what is left and emits the PES packets still open. With
   * `cutShort: true` (a network sender lost before it ended the stream) a PES that declares
   * no length (video, usually) is emitted only when its last packet ended in stuffing, as a
   * muxer pads a PES's last packet only; one whose last packet was full is taken as a picture
   * cut mid-way and dropped instead of served broken.
   */
  flush(emit: (frame: MediaFrame) => void, options: { cutShort?: boolean } = {}): void {
    this.#emit = emit;
    const len = this.#pendingLength;
    if (len > 0) {
      const stop = this.#scan(this.#pending, 0, len, len, true);
      this.#stats.garbageBytes += len - stop;
      this.#pendingLength = 0;
    }
    for (const s of this.#streams) {
      if (!s.active) continue;
      const unbounded = ((s.buf[4] << 8) | s.buf[5]) === 0;
      if (options.cutShort && unbounded && !s.endsInStuffing) {
        s.active = false;
        this.#stats.droppedPes++;
      } else this.#finishPes(s);
    }
  }

  #checkSync(): void {
    if (this.#stats.packets === 0 && this.#stats.garbageBytes > this.#maxSync) {
      throw new Error(
        `not an MPEG-TS stream: no packet sync in the first ${this.#stats.garbageBytes} bytes`,
      );
    }
  }

  /**
   * Parses the packets that start in `buf[pos..limit)` with data up to `end`.
   * Out of sync, a 0x47 counts when two more follow at 188-byte steps. In
   * sync, a packet is taken when the next one starts with 0x47, or when it
   * continues a followed PID with the next continuity counter (then garbage
   * follows it); otherwise its 0x47 was garbage and sync is lost. Returns
   * where it stopped: at `limit` or later, or earlier when a decision needs
   * bytes beyond `end` (at most 2 packets' worth). `final` decides with the
   * bytes there are.
   */
  #scan(buf: Uint8Array, pos: number, end: number, limit: number, final: boolean): number {
    const size = TS_PACKET_SIZE;
    while (pos < limit) {
      if (buf[pos] === SYNC) {
        const next = pos + size;
        if (next > end || (next === end && !final)) return pos;
        if (this.#synced) {
          const followed = next === end || buf[next] === SYNC;
          if (followed || this.#continues(buf, pos)) {
            this.#synced = followed;
            this.#packet(buf, pos);
            pos = next;
            continue;
          }
        } else {
          if (next + size >= end && !final) return pos;
          if (
            next === end ||
            (buf[next] === SYNC && (next + size >= end || buf[next + size] === SYNC))
          ) {
            this.#synced = true;
            continue;
          }
        }
      }
      this.#synced = false;
      let next = buf.indexOf(SYNC, pos + 1);
      if (next < 0 || next > limit) next = limit;
      this.#stats.garbageBytes += next - pos;
      pos = next;
    }
    return pos;
  }

  /**
   * Whether the packet at `off`, not followed by a sync byte, continues a PID
   * we follow with the next continuity counter: then it is real and garbage
   * follows it (garbage that merely starts with 0x47 almost never does).
   */
  #continues(buf: Uint8Array, off: number): boolean {
    const pid = ((buf[off + 1] & 0x1f) << 8) | buf[off + 2];
    const last = pid === TsPid.PAT
      ? this.#patCc
      : pid === this.#pmtPid
      ? this.#pmtCc
      : this.#byPid[pid]?.cc ?? -2;
    const cc = buf[off + 3] & 15;
    const payload = (buf[off + 3] & 0x10) !== 0;
    return last >= 0 && cc === (payload ? (last + 1) & 15 : last);
  }

  #packet(buf: Uint8Array, off: number): void {
    this.#stats.packets++;
    const b1 = buf[off + 1];
    const pid = ((b1 & 0x1f) << 8) | buf[off + 2];
    if (pid === TsPid.NULL) return;
    const stream = this.#byPid[pid];
    if (b1 & 0x80) { // transport_error_indicator
      if (stream) this.#damaged(stream);
      return;
    }
    const b3 = buf[off + 3];
    const control = (b3 >> 4) & 3;
    const cc = b3 & 15;
    const end = off + TS_PACKET_SIZE;
    let p = off + 4;
    let flags = 0;
    if (control & 2) {
      const afLength = buf[p];
      if (p + 1 + afLength > end) {
        if (stream) this.#damaged(stream);
        return;
      }
      if (afLength > 0) flags = buf[p + 1];
      p += 1 + afLength;
    }
    if (!(control & 1)) return; // no payload (or reserved): the counter does not advance
    const unitStart = (b1 & 0x40) !== 0;
    if (stream) {
      this.#streamPacket(stream, buf, p, end, unitStart, cc, flags);
    } else if (pid === TsPid.PAT) {
      this.#patCc = this.#psiContinuity(this.#pat, this.#patCc, cc);
      this.#pat.push(buf, p, end, unitStart, this.#onPat);
    } else if (pid === this.#pmtPid) {
      this.#pmtCc = this.#psiContinuity(this.#pmt, this.#pmtCc, cc);
      this.#pmt.push(buf, p, end, unitStart, this.#onPmt);
    }
    this.#stats.sectionErrors = this.#pat.errors + this.#pmt.errors;
  }

  #psiContinuity(assembler: SectionAssembler, last: number, cc: number): number {
    if (last >= 0 && cc !== last && cc !== ((last + 1) & 15)) assembler.reset();
    return cc;
  }

  readonly #onPat = (section: Uint8Array): void => {
    const pid = parsePat(section);
    if (pid < 0 || pid === this.#pmtPid) return;
    this.#pmtPid = pid;
    this.#pmtCc = -1;
    this.#pmtCrc = -1;
    this.#pmt.reset();
  };

  readonly #onPmt = (section: Uint8Array): void => {
    const n = section.length;
    const crc = ((section[n - 4] << 24) | (section[n - 3] << 16) | (section[n - 2] << 8) |
      section[n - 1]) >>> 0;
    if (crc === this.#pmtCrc) return; // unchanged
    const pmt = parsePmt(section);
    if (pmt === undefined) return;
    this.#pmtCrc = crc;
    let video: InStream | undefined;
    let audio: InStream | undefined;
    for (const entry of pmt.streams) {
      const type = entry.streamType;
      if (!video && (type === TsStreamType.H264 || type === TsStreamType.H265)) {
        const codec = type === TsStreamType.H264 ? "h264" : "h265";
        video = this.#keep(entry.pid, type, 0) ?? newStream(entry.pid, type, codec, 0);
      } else if (!audio && type === TsStreamType.AAC) {
        audio = this.#keep(entry.pid, type, 1) ?? newStream(entry.pid, type, "aac", 1);
      } else if (!audio && type === TsStreamType.PRIVATE_DATA) {
        const reg = findDescriptor(entry.descriptors, 0x05);
        if (!reg || reg.length < 4 || String.fromCharCode(...reg.subarray(0, 4)) !== "Opus") {
          continue;
        }
        const ext = findDescriptor(entry.descriptors, 0x7f);
        const channels = ext && ext.length >= 2 && ext[0] === 0x80 ? ext[1] : 2;
        audio = this.#keep(entry.pid, type, 1) ?? newStream(entry.pid, type, "opus", 1, channels);
      }
    }
    for (const s of this.#streams) {
      if (s !== video && s !== audio) {
        if (s.active) this.#finishPes(s);
        this.#byPid[s.pid] = undefined;
      }
    }
    const previous = this.#streams;
    this.#streams = [video, audio].filter((s) => s !== undefined);
    for (const s of this.#streams) {
      this.#byPid[s.pid] = s;
      // A new stream on a track that had another one (codec or PID change): timestamps and
      // decoder state do not continue.
      if (!previous.includes(s) && previous.some((p) => p.track === s.track)) {
        s.discontinuity = true;
      }
    }
  };

  /** The current stream on `pid` when it keeps its type and track. */
  #keep(pid: number, streamType: number, track: number): InStream | undefined {
    const s = this.#byPid[pid];
    return s && s.streamType === streamType && s.track === track ? s : undefined;
  }

  #streamPacket(
    s: InStream,
    buf: Uint8Array,
    p: number,
    end: number,
    unitStart: boolean,
    cc: number,
    afFlags: number,
  ): void {
    if (s.cc >= 0 && !(afFlags & 0x80)) {
      if (cc === s.cc) return; // a duplicate packet
      if (cc !== ((s.cc + 1) & 15)) {
        s.cc = cc;
        this.#damaged(s);
        if (!unitStart) return;
      }
    }
    if (afFlags & 0x80) s.discontinuity = true; // discontinuity_indicator
    s.cc = cc;
    if (unitStart) {
      if (s.active) this.#finishPes(s);
      s.active = true;
      s.len = 0;
      s.randomAccess = (afFlags & 0x40) !== 0;
    } else if (!s.active) {
      return; // the middle of a PES whose start we did not see
    }
    const n = end - p;
    if (s.len + n > s.buf.length && !this.#grow(s, s.len + n)) return;
    s.buf.set(buf.subarray(p, end), s.len);
    s.len += n;
    // A 183-byte payload follows an adaptation field of its length byte alone (one byte of
    // stuffing); a shorter one ends in 0xFF stuffing when the muxer padded it.
    s.endsInStuffing = n === PAYLOAD_MAX - 1 || (n < PAYLOAD_MAX - 1 && buf[p - 1] === 0xff);
    if (s.len >= 6) {
      const declared = (s.buf[4] << 8) | s.buf[5];
      if (declared !== 0 && s.len >= 6 + declared) this.#finishPes(s);
    }
  }

  /** Makes room for `size` bytes, or drops the PES when it exceeds the limit. */
  #grow(s: InStream, size: number): boolean {
    if (size > this.#maxPes) {
      s.active = false;
      s.discontinuity = true;
      this.#stats.droppedPes++;
      return false;
    }
    let cap = Math.max(s.buf.length * 2, INITIAL_PES_BUFFER);
    while (cap < size) cap *= 2;
    const next = new Uint8Array(Math.min(cap, this.#maxPes));
    next.set(s.buf.subarray(0, s.len));
    s.buf = next;
    return true;
  }

  /** A continuity or transport error: the PES in progress is lost. */
  #damaged(s: InStream): void {
    this.#stats.continuityErrors++;
    if (s.active) this.#stats.droppedPes++;
    s.active = false;
    s.discontinuity = true;
    s.es.reset();
  }

  #finishPes(s: InStream): void {
    s.active = false;
    const h = parsePesHeader(s.buf, s.len);
    if (typeof h === "string") {
      this.#stats.droppedPes++;
      s.discontinuity = true;
      return;
    }
    const hasTimestamp = h.pts >= 0;
    let pts = s.lastPts;
    let dts = s.lastDts;
    if (hasTimestamp) {
      dts = this.#clock.unwrap(h.dts);
      pts = this.#clock.near(h.pts);
    } else if (Number.isNaN(dts) && s.kind === "video") {
      this.#stats.droppedPes++;
      return;
    }
    s.lastPts = pts;
    s.lastDts = dts;
    const payload = s.buf.subarray(h.payloadStart, h.payloadEnd);
    const pes = { data: payload, pts, dts, hasTimestamp, randomAccess: s.randomAccess };
    this.#stats.garbageBytes += s.es.push(
      pes,
      (data, framePts, frameDts, flags) => {
        if (s.discontinuity && !(flags & FrameFlags.CONFIG)) {
          flags |= FrameFlags.DISCONTINUITY;
          s.discontinuity = false;
        }
        this.#stats.frames++;
        this.#emit({
          track: s.track,
          kind: s.kind,
          codec: s.codec,
          pts: framePts,
          dts: frameDts,
          flags,
          data,
        });
      },
    );
  }
}

function newStream(
  pid: number,
  streamType: number,
  codec: "h264" | "h265" | "aac" | "opus",
  track: number,
  opusChannels = 2,
): InStream {
  const es = codec === "aac"
    ? new AdtsEs()
    : codec === "opus"
    ? new OpusEs(opusChannels)
    : new VideoEs(codec);
  return {
    pid,
    streamType,
    kind: track === 0 ? "video" : "audio",
    codec,
    track,
    es,
    cc: -1,
    buf: new Uint8Array(0),
    len: 0,
    active: false,
    endsInStuffing: false,
    randomAccess: false,
    discontinuity: false,
    lastPts: Number.NaN,
    lastDts: Number.NaN,
  };
}
