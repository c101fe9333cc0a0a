/**
 * Turns the frames of one segment into its bytes: MPEG-TS (through the TS
 * encoder) or fMP4 (one `moof` + `mdat` per segment).
 *
 * @module
 */

import { CLOCK_RATE, type MediaFrame } from "../../bus/frame.ts";
import { Fmp4Fragmenter } from "../fmp4/fragmenter.ts";
import type { Fmp4Track } from "../fmp4/track.ts";
import { TsEncoder } from "../ts/encoder.ts";
import { appendChunk } from "./_bytes.ts";

/** Writes the frames of one segment at a time. */
export interface SegmentWriter {
  /** File extension of the segments. */
  readonly extension: "ts" | "m4s";
  /** The initialization segment, when the format has one (fMP4). */
  readonly init: Uint8Array | undefined;
  /** Starts a segment; after a discontinuity, timing is not carried over. */
  begin(discontinuity: boolean): void;
  /**
   * Switches to new configurations between segments if the format allows it
   * without a new writer; returns whether it did.
   */
  reconfigure(tracks: readonly Fmp4Track[], configs: readonly MediaFrame[]): boolean;
  /**
   * Adds a media frame of one of the writer's tracks; returns whether the
   * writer still references `frame.data` afterwards (until the chunks of its
   * segment are released).
   */
  add(frame: MediaFrame): boolean;
  /**
   * Ends the segment, returning its bytes as chunks to store back to back;
   * `nextDts` is the 90 kHz dts of the lead frame that follows it.
   */
  end(nextDts: number | undefined): Uint8Array[] | undefined;
  /**
   * Takes back the chunks of an ended segment once they are stored, to reuse
   * their memory; `report` gets the data of each frame they referenced.
   */
  release(chunks: readonly Uint8Array[], report?: (data: Uint8Array) => void): void;
}

/** MPEG-TS segments, each starting with PAT and PMT, from one encoder (continuity counters run on). */
export class TsSegmentWriter implements SegmentWriter {
  readonly extension = "ts";
  readonly init = undefined;
  #encoder: TsEncoder;
  #chunks: Uint8Array[] = [];
  /** The encoder expects video on track 0 and audio on track 1. */
  #renumber: boolean;
  /** The tracks' codecs and numbers, which a new configuration must keep. */
  #layout: string;

  constructor(tracks: readonly Fmp4Track[], configs: readonly MediaFrame[]) {
    const { video, audio } = declaration(tracks);
    this.#encoder = new TsEncoder({ video, audio });
    this.#renumber = renumbers(tracks);
    this.#layout = layout(tracks);
    for (const c of configs) this.add(c);
  }

  /**
   * The encoder takes the new configurations and runs on; tracks or codecs that changed are
   * declared anew on the same PIDs, so continuity counters go on across the discontinuity.
   */
  reconfigure(tracks: readonly Fmp4Track[], configs: readonly MediaFrame[]): boolean {
    if (layout(tracks) !== this.#layout) {
      const { video, audio } = declaration(tracks);
      this.#encoder.redeclare(video, audio);
      this.#renumber = renumbers(tracks);
      this.#layout = layout(tracks);
    }
    for (const c of configs) this.add(c);
    return true;
  }

  begin(): void {
    this.#encoder.forceTables();
  }

  /** The encoder copies the frame: it is not referenced afterwards. */
  add(frame: MediaFrame): boolean {
    const f = this.#renumber ? { ...frame, track: frame.kind === "video" ? 0 : 1 } : frame;
    const out = this.#encoder.encode(f);
    // The encoder's outputs are adjacent views of its slabs: kept as a few wide views, not copied.
    if (out !== undefined) appendChunk(this.#chunks, out);
    return false;
  }

  end(): Uint8Array[] | undefined {
    if (this.#chunks.length === 0) return undefined;
    const out = this.#chunks;
    this.#chunks = [];
    return out;
  }

  /** The encoder writes its next segments into these slabs once nothing else is in them. */
  release(chunks: readonly Uint8Array[]): void {
    this.#encoder.release(chunks);
  }
}

/** fMP4 segments: one fragment each, after an init segment. */
export class Fmp4SegmentWriter implements SegmentWriter {
  readonly extension = "m4s";
  readonly init: Uint8Array;
  #fragmenter: Fmp4Fragmenter;
  #offset: number;
  /** The `moof` + `mdat` header chunks of the fragments written (the other chunks are frames'). */
  #headers = new WeakSet<Uint8Array>();

  /**
   * @param timeOffset 90 kHz ticks added to every dts; frames whose decode
   *   time stays negative are dropped
   * @param sequenceNumber the first `mfhd` sequence number
   */
  constructor(tracks: readonly Fmp4Track[], timeOffset: number, sequenceNumber: number) {
    this.#fragmenter = new Fmp4Fragmenter(tracks, { timeOffset, sequenceNumber });
    this.#offset = timeOffset;
    this.init = this.#fragmenter.initSegment();
  }

  begin(discontinuity: boolean): void {
    if (discontinuity) this.#fragmenter.resetTiming();
  }

  /** New configurations need a new init segment, so a new writer. */
  reconfigure(): boolean {
    return false;
  }

  /** The fragment references the frame until its segment is stored. */
  add(frame: MediaFrame): boolean {
    if (frame.dts + this.#offset < 0) return false;
    this.#fragmenter.push(frame);
    return true;
  }

  end(nextDts: number | undefined): Uint8Array[] | undefined {
    const chunks = this.#fragmenter.flushChunks(nextDts);
    if (chunks) this.#headers.add(chunks[0]);
    return chunks;
  }

  /** Nothing to reuse: the chunks are new headers and the frames' own data, which go to `report`. */
  release(chunks: readonly Uint8Array[], report?: (data: Uint8Array) => void): void {
    if (report === undefined) return;
    for (const c of chunks) if (!this.#headers.has(c)) report(c);
  }
}

/** The TS program for `tracks`: one video and one audio codec at most. */
function declaration(
  tracks: readonly Fmp4Track[],
): { video: "h264" | "h265" | null; audio: "aac" | "opus" | null } {
  const video = tracks.find((t) => t.kind === "video");
  const audio = tracks.find((t) => t.kind === "audio");
  return {
    video: video ? video.codec as "h264" | "h265" : null,
    audio: audio ? audio.codec as "aac" | "opus" : null,
  };
}

/** Whether frames of `tracks` need new numbers: the encoder expects video 0, audio 1. */
function renumbers(tracks: readonly Fmp4Track[]): boolean {
  return tracks.some((t) => t.track !== (t.kind === "video" ? 0 : 1));
}

function layout(tracks: readonly Fmp4Track[]): string {
  return tracks.map((t) => `${t.track}:${t.codec}`).join(",");
}

/** The fMP4 time offset for a stream whose first frame has `dts`: none unless it is negative. */
export function fmp4TimeOffset(dts: number): number {
  return dts < 0 ? CLOCK_RATE - dts : 0;
}
