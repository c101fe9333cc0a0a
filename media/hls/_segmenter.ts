/**
 * The HLS segmenter behind {@linkcode HlsPackager}: cuts frames into segments,
 * writes them and keeps the playlists.
 *
 * @module
 */

import { CLOCK_RATE, FrameFlags, hasFlag, type MediaFrame } from "../../bus/frame.ts";
import { type Fmp4Track, trackFromConfig } from "../fmp4/track.ts";
import { byteLengthOf } from "./_bytes.ts";
import {
  Fmp4SegmentWriter,
  fmp4TimeOffset,
  type SegmentWriter,
  TsSegmentWriter,
} from "./_segment_writer.ts";
import {
  type HlsPart,
  type HlsSegment,
  type HlsVariant,
  type MediaPlaylist,
  renderMasterPlaylist,
  renderMediaPlaylist,
} from "./playlist.ts";
import type { HlsStorage } from "./storage.ts";
import type { HlsPackager } from "./packager.ts";

/** Segment container: MPEG-TS or fragmented MP4. */
export type HlsSegmentType = "ts" | "fmp4";
/** Playlist kind: finished VOD, growing EVENT, or a live sliding window. */
export type HlsPlaylistType = "vod" | "event" | "live";

/** Options of {@linkcode HlsPackager}. */
export interface HlsPackagerOptions {
  /** Where playlists and segments go. */
  storage: HlsStorage;
  /** `ts` (default) or `fmp4`. */
  segmentType?: HlsSegmentType;
  /**
   * Segment duration to aim for, in seconds (default 2). A segment is cut at
   * the first video keyframe (any audio frame without video) at or after it.
   */
  targetDuration?: number;
  /**
   * `live` (default): a sliding window of `windowSize` segments, older ones
   * deleted; `event`: every segment stays listed; `vod`: the playlist is
   * written once, when the input ends.
   */
  playlistType?: HlsPlaylistType;
  /** Live: how many segments the playlist lists (default 6). */
  windowSize?: number;
  /** The media playlist's name (default `stream.m3u8`). */
  playlistName?: string;
  /** The master playlist's name (default `index.m3u8`); `null` for none. */
  masterName?: string | null;
  /** Segment names are this prefix, the media sequence number and the extension (default `seg`). */
  segmentPrefix?: string;
  /**
   * fMP4 init segment names are this prefix, a number counting the init segments of the
   * playlist and `.mp4` (default `init`).
   */
  initPrefix?: string;
  /**
   * Low-Latency HLS (fMP4 only): the duration of partial segments in seconds,
   * shorter than `targetDuration` (e.g. 0.5). Each part is written as its own
   * file (`seg12.3.m4s`), listed with `EXT-X-PART` for the last three target
   * durations, and announced ahead with `EXT-X-PRELOAD-HINT`; the playlist
   * declares blocking reloads, which a server answers with
   * {@linkcode HlsPackager.waitForPart}. Off by default.
   */
  partDuration?: number;
  /** Called after each segment and the playlist listing it are written. */
  onSegment?: (segment: HlsSegment) => void;
  /**
   * Called with a sentence saying what the packager skips and until when, once per
   * condition (again only after it cleared): media of a track before its CONFIG frame (or
   * of another codec than its CONFIG), a CONFIG frame it cannot use, a second track of a
   * kind. The packager never stops for these: it drops what it cannot use and goes on at
   * the next keyframe that has a configuration. For a log line, e.g. `logger.warn`.
   */
  onSkip?: (what: string) => void;
  /**
   * Called with the `data` of a media frame the packager is done with (the
   * `Uint8Array` it was given): from then on it neither reads nor keeps those
   * bytes, so a source may reuse their memory. TS segments are done with a
   * frame once it is written (or dropped); fMP4 segments once the segment
   * holding it is stored. Each frame is reported once at most: CONFIG frames,
   * and frames still held when the packager fails, are not reported.
   */
  onRelease?: (data: Uint8Array) => void;
  /**
   * Carry on the playlist of a finished packager writing to the same storage
   * (a live stream whose publisher came back). Its segments stay listed (in a
   * live window until they slide out, then deleted, as are the files it kept
   * for late readers), numbering goes on, and the first new segment gets
   * `EXT-X-DISCONTINUITY`.
   */
  continueFrom?: HlsPackager;
}

/** What a finished segmenter hands over to the one continuing its playlist. */
export interface Continuation {
  /** Its final playlist. */
  readonly playlist: MediaPlaylist;
  /** Segments out of the playlist but still in storage for late readers. */
  readonly retained: readonly HlsSegment[];
}

/** Counters of an {@linkcode HlsPackager} (a live view). */
export interface HlsPackagerStats {
  /** Media frames written into segments. */
  frames: number;
  /**
   * Media frames dropped: before the first keyframe, after a discontinuity or a changed
   * CONFIG until a keyframe, of a track without a usable CONFIG frame.
   */
  dropped: number;
  /** Segments written. */
  segments: number;
  /** Bytes of segments written (init segments and playlists not counted). */
  bytes: number;
  /** Seconds of media in the segments written. */
  duration: number;
}

/** A part written but whose segment is not finished: it keeps its bytes for the segment file. */
interface OpenPart extends HlsPart {
  readonly data: readonly Uint8Array[];
}

/** The open segment. */
interface OpenSegment {
  readonly startDts: number;
  readonly discontinuity: boolean;
  /** Low-Latency HLS: the parts ended so far. */
  readonly parts: OpenPart[];
  /** The dts where the current part starts. */
  partStart: number;
  /** Whether the current part starts with a keyframe. */
  partIndependent: boolean;
}

/** How long (90 kHz ticks of input) to wait at most for the configs of a second track. */
const PROBE_DURATION = CLOCK_RATE;
/** ... and how many frames to hold at most meanwhile. */
const PROBE_MAX_FRAMES = 512;
/** Parts are listed for the segments of the last this many target durations (RFC 8216bis 6.2.2). */
const PART_LISTED_TARGETS = 3;
/** Part files stay in storage this many segments after they stop being listed. */
const PART_KEPT_SEGMENTS = 3;
/** A lead-track jump forward by more than this many target durations is a discontinuity. */
const JUMP_TARGETS = 3;
/** ... and never less than this (90 kHz ticks). */
const MIN_JUMP = 10 * CLOCK_RATE;

const encoder = new TextEncoder();

export class Segmenter {
  readonly stats: HlsPackagerStats = { frames: 0, dropped: 0, segments: 0, bytes: 0, duration: 0 };
  readonly #storage: HlsStorage;
  readonly #fmp4: boolean;
  readonly #target: number;
  readonly #type: HlsPlaylistType;
  readonly #window: number;
  readonly #playlistName: string;
  readonly #masterName: string | null;
  readonly #prefix: string;
  readonly #initPrefix: string;
  /** Low-Latency HLS part duration in 90 kHz ticks; 0 when off. */
  readonly #part: number;
  readonly #onSegment?: (segment: HlsSegment) => void;
  readonly #onRelease?: (data: Uint8Array) => void;
  readonly #onSkip?: (what: string) => void;
  /** The conditions `onSkip` was told of that have not cleared since. */
  readonly #skipping = new Set<string>();

  /** The last CONFIG frame of every track, and what it describes. */
  #configs = new Map<number, { frame: MediaFrame; track: Fmp4Track }>();
  /** The tracks being written, by track number; empty until the first media frame. */
  #tracks = new Map<number, Fmp4Track>();
  #lead?: Fmp4Track;
  #writer?: SegmentWriter;
  /** Media frames held while probing which tracks there are (before the writer exists). */
  #held: MediaFrame[] = [];
  #configChanged = false;
  /** Tracks being written whose CONFIG changed: their frames are dropped until the cut. */
  #stale = new Set<number>();
  #timeOffset?: number;
  #init?: string;
  #inits = 0;

  #open?: OpenSegment;
  #nextDiscontinuity = false;
  #lastLeadDts = NaN;
  #lastLeadDuration = 0;

  #sequence = 0;
  #segments: HlsSegment[] = [];
  /** Live: segments out of the window that stay in storage a while for late readers. */
  #removed: HlsSegment[] = [];
  #discontinuitySequence = 0;
  #targetDuration: number;
  #peakBandwidth = 0;
  #master = "";
  /** Part files per segment, deleted some segments after they stop being listed. */
  #partFiles: { sequence: number; uris: string[] }[] = [];
  #waiters: { sequence: number; part: number; resolve: (listed: boolean) => void }[] = [];
  /** Storage of the last segment or part ended (rejects with its error). */
  #io: Promise<void> = Promise.resolve();
  /** Segments before this sequence number are stored and listed. */
  #listed = 0;
  /** Parts of segment `#listed` stored and listed. */
  #listedParts = 0;
  #finished = false;

  constructor(options: HlsPackagerOptions, previous?: Continuation) {
    const target = options.targetDuration ?? 2;
    const window = options.windowSize ?? 6;
    if (!(target > 0) || !Number.isFinite(target)) {
      throw new RangeError(`targetDuration must be a positive number of seconds, got ${target}`);
    }
    if (!Number.isInteger(window) || window < 1) {
      throw new RangeError(`windowSize must be a positive integer, got ${window}`);
    }
    const part = options.partDuration;
    if (part !== undefined) {
      if (!(part > 0 && part < target)) {
        throw new RangeError(`partDuration must be positive and below targetDuration, got ${part}`);
      }
      if (options.segmentType !== "fmp4" || options.playlistType === "vod") {
        throw new RangeError("partDuration (Low-Latency HLS) needs fmp4 segments, live or event");
      }
    }
    this.#part = (part ?? 0) * CLOCK_RATE;
    this.#storage = options.storage;
    this.#fmp4 = (options.segmentType ?? "ts") === "fmp4";
    this.#target = target * CLOCK_RATE;
    this.#targetDuration = Math.ceil(target);
    this.#type = options.playlistType ?? "live";
    this.#window = window;
    this.#playlistName = options.playlistName ?? "stream.m3u8";
    this.#masterName = options.masterName === undefined ? "index.m3u8" : options.masterName;
    this.#prefix = options.segmentPrefix ?? "seg";
    this.#initPrefix = options.initPrefix ?? "init";
    this.#onSegment = options.onSegment;
    this.#onRelease = options.onRelease;
    this.#onSkip = options.onSkip;
    if (previous) {
      const { playlist, retained } = previous;
      this.#segments = playlist.segments.map((s) => ({ ...s, parts: undefined }));
      this.#removed = [...retained];
      this.#sequence = playlist.mediaSequence + playlist.segments.length;
      this.#listed = this.#sequence;
      this.#discontinuitySequence = playlist.discontinuitySequence;
      this.#targetDuration = Math.max(this.#targetDuration, playlist.targetDuration);
      this.#nextDiscontinuity = true;
      // New init segments must not replace the ones earlier segments use.
      for (const s of [...playlist.segments, ...retained]) {
        const n = s.map?.startsWith(this.#initPrefix) &&
          /^(\d+)\.mp4$/.exec(s.map.slice(this.#initPrefix.length));
        if (n) this.#inits = Math.max(this.#inits, Number(n[1]) + 1);
      }
    }
  }

  /** The state a segmenter continuing this one's playlist starts from. */
  continuation(): Continuation {
    if (!this.#finished) throw new TypeError("continueFrom: that packager is not finished");
    return { playlist: this.playlist, retained: this.#removed };
  }

  /** The media playlist as it stands. */
  get playlist(): MediaPlaylist {
    const playlist: MediaPlaylist = {
      version: this.#part > 0 ? 9 : this.#fmp4 ? 7 : 3,
      targetDuration: this.#targetDuration,
      type: this.#type === "vod" ? "VOD" : this.#type === "event" ? "EVENT" : undefined,
      mediaSequence: this.#segments[0]?.sequence ?? this.#sequence,
      discontinuitySequence: this.#discontinuitySequence,
      segments: this.#segments,
      ended: this.#finished,
    };
    if (this.#part === 0) return playlist;
    const open = this.#open;
    const first = this.#firstWithParts();
    return {
      ...playlist,
      segments: this.#segments.map((s, i): HlsSegment =>
        i < first ? { ...s, parts: undefined } : s
      ),
      partTarget: this.#part / CLOCK_RATE,
      partial: {
        discontinuity: open?.discontinuity ?? false,
        map: this.#init,
        parts:
          open?.parts.map(({ uri, duration, independent }) => ({ uri, duration, independent })) ??
            [],
        preloadHint: this.#partUri(this.#sequence, open?.parts.length ?? 0),
      },
    };
  }

  /** The index in `#segments` of the first segment whose parts are listed. */
  #firstWithParts(): number {
    let i = this.#segments.length;
    let duration = 0;
    const limit = PART_LISTED_TARGETS * this.#targetDuration;
    while (i > 0 && duration + this.#segments[i - 1].duration <= limit) {
      duration += this.#segments[--i].duration;
    }
    return i;
  }

  #partUri(sequence: number, part: number): string {
    return `${this.#prefix}${sequence}.${part}.m4s`;
  }

  /**
   * Resolves true once part `part` of segment `sequence` (or the whole segment,
   * with `part` Infinity) is written and listed, false if that never happens.
   */
  waitFor(sequence: number, part: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#isListed(sequence, part)) return Promise.resolve(true);
    if (this.#finished) return Promise.resolve(false);
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(signal!.reason);
      };
      const waiter = {
        sequence,
        part,
        resolve: (listed: boolean) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(listed);
        },
      };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #isListed(sequence: number, part: number): boolean {
    return sequence < this.#listed || (sequence === this.#listed && part < this.#listedParts);
  }

  /** Resolves the waiters whose segment or part is now listed. */
  #wake(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!this.#isListed(w.sequence, w.part)) return true;
      w.resolve(true);
      return false;
    });
  }

  async write(frame: MediaFrame): Promise<void> {
    if (this.#finished) throw new TypeError("the HLS packager is finished");
    if (hasFlag(frame, FrameFlags.CONFIG)) return this.#config(frame);
    if (this.#configs.get(frame.track)?.frame.codec !== frame.codec) {
      this.#skip(
        frame,
        `config ${frame.track}`,
        `${describe(frame)}: media frame before its CONFIG frame; ` +
          "the track is skipped until a CONFIG frame and a keyframe",
      );
      return;
    }
    if (this.#writer !== undefined) return this.#process(frame);
    this.#held.push(frame);
    if (this.#probing()) return;
    await this.#start();
  }

  /**
   * Whether to hold frames still: until a video and an audio track are both
   * configured (a demuxer may announce one only with its first frame), for a
   * second of input at most.
   */
  #probing(): boolean {
    const held = this.#held;
    const tracks = [...this.#configs.values()].map((c) => c.track.kind);
    if (tracks.includes("video") && tracks.includes("audio")) return false;
    let min = Infinity;
    let max = -Infinity;
    for (const f of held) {
      min = Math.min(min, f.dts);
      max = Math.max(max, f.dts);
    }
    return max - min < PROBE_DURATION && held.length < PROBE_MAX_FRAMES;
  }

  /** Drops `frame`; `onSkip` hears of `condition` unless it already has. */
  #skip(frame: MediaFrame, condition: string, what: string): void {
    this.stats.dropped++;
    this.#onRelease?.(frame.data);
    this.#notice(condition, what);
  }

  #notice(condition: string, what: string): void {
    if (this.#skipping.has(condition)) return;
    this.#skipping.add(condition);
    this.#onSkip?.(what);
  }

  /** Starts writing the tracks configured so far, with the frames held while probing. */
  async #start(): Promise<void> {
    const held = this.#held;
    this.#held = [];
    this.#timeOffset = fmp4TimeOffset(Math.min(...held.map((f) => f.dts)));
    await this.#apply();
    for (const f of held) await this.#process(f);
  }

  async #process(frame: MediaFrame): Promise<void> {
    const lead = this.#lead!;
    const isLead = frame.track === lead.track;
    const key = isLead && (lead.kind === "audio" || hasFlag(frame, FrameFlags.KEYFRAME));
    const open = this.#open;
    if (
      open && (hasFlag(frame, FrameFlags.DISCONTINUITY) ||
        isLead && (frame.dts < this.#lastLeadDts ||
            frame.dts - this.#lastLeadDts > Math.max(MIN_JUMP, JUMP_TARGETS * this.#target)))
    ) {
      // Timestamps do not continue: end here, restart at the next keyframe.
      await this.#endSegment(undefined);
      this.#nextDiscontinuity = true;
      this.#lastLeadDts = NaN; // no frame duration across the gap
    } else if (open && key && (this.#configChanged || frame.dts - open.startDts >= this.#target)) {
      await this.#endSegment(frame.dts);
      if (this.#configChanged) this.#nextDiscontinuity = true;
    }
    if (this.#open === undefined) {
      if (!key) {
        this.stats.dropped++;
        this.#onRelease?.(frame.data);
        return;
      }
      if (this.#configChanged) {
        await this.#apply();
        return this.#process(frame); // the lead track may have changed
      }
      this.#begin(frame);
    }
    if (!this.#tracks.has(frame.track)) { // a track added later joins at the next cut
      this.#onRelease?.(frame.data);
      return;
    }
    if (this.#stale.has(frame.track)) { // its frames need the new CONFIG, from the cut on
      this.stats.dropped++;
      this.#onRelease?.(frame.data);
      return;
    }
    if (isLead) {
      if (frame.dts > this.#lastLeadDts) this.#lastLeadDuration = frame.dts - this.#lastLeadDts;
      this.#lastLeadDts = frame.dts;
      const open = this.#open!;
      // Low-Latency HLS: end the part before it would grow past the part target (this
      // frame's duration is not known yet: allow for it to be half as long again as the last).
      if (
        this.#part > 0 && frame.dts > open.partStart &&
        frame.dts + 1.5 * this.#lastLeadDuration - open.partStart > this.#part
      ) {
        await this.#endPart(frame.dts);
        open.partIndependent = key;
      }
    }
    if (!this.#writer!.add(frame)) this.#onRelease?.(frame.data);
    this.stats.frames++;
  }

  /** Ends the output: the open segment, the final playlists. */
  async finish(): Promise<void> {
    if (this.#finished) return;
    try {
      if (this.#held.length > 0) await this.#start();
      await this.#endSegment(undefined);
      await this.#io;
    } finally {
      this.#finished = true;
      for (const w of this.#waiters) w.resolve(false);
      this.#waiters = [];
    }
    if (this.#segments.length > 0) await this.#writePlaylists(this.#renderPlaylists());
  }

  #config(frame: MediaFrame): void {
    let track: Fmp4Track;
    try {
      track = trackFromConfig(frame);
    } catch (error) {
      // Unusable: the track goes on with the CONFIG it had, if any; media of another codec waits.
      const why = error instanceof Error ? error.message : String(error);
      this.#notice(
        `unusable ${frame.track}`,
        `${describe(frame)}: CONFIG frame not usable (${why}); ignored`,
      );
      return;
    }
    this.#skipping.delete(`unusable ${frame.track}`);
    this.#skipping.delete(`config ${frame.track}`);
    const previous = this.#configs.get(frame.track);
    this.#configs.set(frame.track, { frame, track });
    if (this.#writer !== undefined && !sameBytes(previous?.frame.data, frame.data)) {
      this.#configChanged = true;
      if (this.#tracks.has(frame.track)) this.#stale.add(frame.track);
    }
  }

  /** Starts writing the configured tracks (at the start, or at a cut after a config change). */
  async #apply(): Promise<void> {
    await this.#io; // the last segment is listed with the tracks it was written with
    const configs = this.#oneTrackPerKind();
    const tracks = configs.map((c) => c.track);
    this.#tracks = new Map(tracks.map((t) => [t.track, t]));
    this.#stale.clear();
    this.#lead = tracks.find((t) => t.kind === "video") ?? tracks[0];
    this.#configChanged = false;
    this.#lastLeadDts = NaN;
    if (this.#fmp4) {
      const writer = new Fmp4SegmentWriter(tracks, this.#timeOffset!, this.#sequence + 1);
      this.#init = `${this.#initPrefix}${this.#inits++}.mp4`;
      await this.#storage.write(this.#init, writer.init);
      this.#writer = writer;
    } else {
      const frames = configs.map((c) => c.frame);
      if (!this.#writer?.reconfigure(tracks, frames)) {
        this.#writer = new TsSegmentWriter(tracks, frames);
      }
    }
  }

  /**
   * The CONFIGs of the tracks to write, in track order: one video and one audio track at
   * most, those written so far where they still are, else the lowest-numbered ones.
   */
  #oneTrackPerKind(): { frame: MediaFrame; track: Fmp4Track }[] {
    const configs = [...this.#configs.values()].sort((a, b) => a.track.track - b.track.track);
    const chosen = new Map<string, { frame: MediaFrame; track: Fmp4Track }>();
    for (const c of configs) {
      const current = chosen.get(c.track.kind);
      if (!current || (!this.#tracks.has(current.track.track) && this.#tracks.has(c.track.track))) {
        chosen.set(c.track.kind, c);
      }
    }
    for (const c of configs) {
      if (chosen.get(c.track.kind) === c) continue;
      this.#notice(
        `extra ${c.track.track}`,
        `${describe(c.frame)}: HLS takes one ${c.track.kind} track; this one is skipped`,
      );
    }
    return configs.filter((c) => chosen.get(c.track.kind) === c);
  }

  #begin(frame: MediaFrame): void {
    // The first segment of the output has nothing to be discontinuous with.
    const discontinuity = this.#nextDiscontinuity && this.#sequence > 0;
    this.#open = {
      startDts: frame.dts,
      discontinuity,
      parts: [],
      partStart: frame.dts,
      partIndependent: true,
    };
    this.#nextDiscontinuity = false;
    this.#writer!.begin(discontinuity);
  }

  /**
   * Closes the open segment; `nextDts` is the lead frame after it (unknown at an
   * end). Its storage runs while the next segment's frames come in: one segment
   * is written at a time, so I/O overlaps the muxing and memory stays bounded.
   */
  async #endSegment(nextDts: number | undefined): Promise<void> {
    const open = this.#open;
    if (open === undefined) return;
    if (this.#part > 0) await this.#endPart(nextDts);
    this.#open = undefined;
    const data = this.#part === 0
      ? this.#writer!.end(nextDts)
      : open.parts.length > 0
      ? open.parts.flatMap((p) => p.data)
      : undefined;
    if (data === undefined) return;
    const writer = this.#writer!;
    const bytes = byteLengthOf(data);
    const end = nextDts ?? this.#lastLeadDts + this.#lastLeadDuration;
    const duration = Math.max(0, end - open.startDts) / CLOCK_RATE;
    const segment: HlsSegment = {
      uri: `${this.#prefix}${this.#sequence}.${writer.extension}`,
      sequence: this.#sequence++,
      duration,
      discontinuity: open.discontinuity,
      map: this.#fmp4 ? this.#init : undefined,
      bytes,
      parts: this.#part > 0
        ? open.parts.map(({ uri, duration, independent }) => ({ uri, duration, independent }))
        : undefined,
    };
    await this.#io; // the previous segment is stored and listed (or this throws its error)
    this.stats.segments++;
    this.stats.bytes += bytes;
    this.stats.duration += duration;
    this.#targetDuration = Math.max(this.#targetDuration, Math.round(duration));
    if (duration >= this.#target / CLOCK_RATE / 2) {
      this.#peakBandwidth = Math.max(this.#peakBandwidth, (bytes * 8) / duration);
    }
    this.#segments.push(segment);
    const expired = this.#type === "live" ? this.#slide() : [];
    if (this.#part > 0) expired.push(...this.#expiredParts(segment));
    const playlists = this.#type === "vod" ? undefined : this.#renderPlaylists();
    this.#schedule(async () => {
      await this.#storage.write(segment.uri, data);
      writer.release(data, this.#onRelease); // stored: that memory may be reused
      if (playlists) await this.#writePlaylists(playlists);
      for (const name of expired) await this.#storage.delete(name);
      this.#listed = segment.sequence + 1;
      this.#listedParts = 0;
      this.#onSegment?.(segment);
      this.#wake();
    });
  }

  /** Low-Latency HLS: ends the current part of the open segment and publishes it. */
  async #endPart(nextDts: number | undefined): Promise<void> {
    const open = this.#open!;
    const data = this.#writer!.end(nextDts);
    if (data === undefined) return;
    const end = nextDts ?? this.#lastLeadDts + this.#lastLeadDuration;
    const part: OpenPart = {
      uri: this.#partUri(this.#sequence, open.parts.length),
      duration: Math.max(0, end - open.partStart) / CLOCK_RATE,
      independent: open.partIndependent,
      data,
    };
    await this.#io;
    open.parts.push(part);
    open.partStart = end;
    const listed = open.parts.length;
    // Players want a whole segment in the first playlist they load (hls.js: levelEmptyError).
    const playlists = this.#segments.length > 0 ? this.#renderPlaylists() : undefined;
    this.#schedule(async () => {
      await this.#storage.write(part.uri, data);
      if (playlists) await this.#writePlaylists(playlists);
      this.#listedParts = listed;
      this.#wake();
    });
  }

  /** Runs `io` after the storage work scheduled before it; `#io` keeps its outcome. */
  #schedule(io: () => Promise<void>): void {
    const next = io();
    next.catch(() => {}); // awaited later; not an unhandled rejection meanwhile
    this.#io = next;
  }

  /** Part files to delete: those of segments whose parts stopped being listed a while ago. */
  #expiredParts(segment: HlsSegment): string[] {
    this.#partFiles.push({ sequence: segment.sequence, uris: segment.parts!.map((p) => p.uri) });
    const listedFrom = this.#segments[this.#firstWithParts()]?.sequence ?? this.#sequence;
    const expired: string[] = [];
    while (
      this.#partFiles.length > 0 && this.#partFiles[0].sequence < listedFrom - PART_KEPT_SEGMENTS
    ) {
      expired.push(...this.#partFiles.shift()!.uris);
    }
    return expired;
  }

  /**
   * Live: drops segments out of the window; returns the files to delete, those
   * out of it long enough that no client can still want them.
   */
  #slide(): string[] {
    const expired: string[] = [];
    while (this.#segments.length > this.#window) {
      this.#removed.push(this.#segments.shift()!);
      if (this.#segments[0].discontinuity) this.#discontinuitySequence++;
    }
    // A removed segment stays readable for its duration plus the playlist's (RFC 8216 6.2.2).
    while (this.#removed.length > this.#window + 1) {
      const old = this.#removed.shift()!;
      expired.push(old.uri);
      const map = old.map;
      if (map !== undefined && map !== this.#init && !this.#usesMap(map)) expired.push(map);
    }
    return expired;
  }

  #usesMap(map: string): boolean {
    return this.#segments.some((s) => s.map === map) || this.#removed.some((s) => s.map === map);
  }

  /**
   * The playlists as they stand, rendered now and written later (after the
   * files they list): the media playlist, and the master playlist when it changed.
   */
  #renderPlaylists(): { media: Uint8Array; master?: Uint8Array } {
    const media = encoder.encode(renderMediaPlaylist(this.playlist));
    if (this.#masterName === null) return { media };
    const master = renderMasterPlaylist([this.#variant()]);
    if (master === this.#master) return { media };
    this.#master = master;
    return { media, master: encoder.encode(master) };
  }

  async #writePlaylists(playlists: { media: Uint8Array; master?: Uint8Array }): Promise<void> {
    await this.#storage.write(this.#playlistName, playlists.media);
    if (playlists.master) await this.#storage.write(this.#masterName!, playlists.master);
  }

  #variant(): HlsVariant {
    const tracks = [...this.#tracks.values()];
    const video = tracks.find((t) => t.kind === "video");
    const average = this.stats.duration > 0 ? (this.stats.bytes * 8) / this.stats.duration : 0;
    // Live: BANDWIDTH moves only in 10 % steps up, so the master playlist rarely changes.
    const peak = Math.max(this.#peakBandwidth, average);
    const bandwidth = this.#finished ? peak : 1.1 ** Math.ceil(Math.log(peak || 1) / Math.log(1.1));
    return {
      uri: this.#playlistName,
      bandwidth,
      averageBandwidth: this.#finished ? average : undefined,
      codecs: tracks.map((t) => t.codecString),
      resolution: video ? { width: video.width, height: video.height } : undefined,
    };
  }
}

/** How notices name the track of `frame`: `track 0 (video h264)`. */
function describe(frame: MediaFrame): string {
  return `track ${frame.track} (${frame.kind} ${frame.codec})`;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (a === undefined || a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
