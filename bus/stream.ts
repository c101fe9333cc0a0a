/**
 * The live stream handle: one publisher, a shared ring, any number of subscribers
 * each reading the ring as a `ReadableStream` at its own cursor.
 *
 * @module
 */

import { FrameFlags, type MediaFrame } from "./frame.ts";
import { FrameRing } from "./ring.ts";
import { GopCache } from "./_gop_cache.ts";
import { type Qos, QosMeter } from "./_qos.ts";
import { type MonotonicClock, monotonicMs } from "./_clock.ts";
import { platformTimers, type Timers } from "./_timers.ts";
import { type CursorHooks, NOTHING_TO_REPLAY, type ReplayPlan } from "./_cursor.ts";
import { RingSubscription } from "./_subscription.ts";
import { PlayerHub } from "./_player.ts";
import type { PlayOptions, PlayResult, PlaySink } from "./play.ts";
import type { Derived } from "./derived.ts";
import type { Observer, StreamKey } from "./observe.ts";

export type { Qos } from "./_qos.ts";
export type { MonotonicClock } from "./_clock.ts";
export type { Timers } from "./_timers.ts";

/**
 * Where a stream is in its life: made (`"idle"`), claimed by a publisher
 * (`"publishing"`), closed (`"ended"`). What else happens to a live stream,
 * such as being recorded, is a separate property ({@linkcode StreamHandle.recording}),
 * since it happens while the stream is publishing.
 */
export type StreamState = "idle" | "publishing" | "ended";

/**
 * What is known about a stream: set by its ingest through
 * {@linkcode StreamHandle.updateMetadata}, with measured rates overlaid by
 * {@linkcode StreamHandle.metadata}.
 */
export interface StreamMetadata {
  /** The stream's `"app/stream"` key. */
  readonly key: StreamKey;
  /** The publisher's address, when the ingest knows it. */
  publisherAddr?: string;
  /** Video width in pixels (0 when unknown). */
  width: number;
  /** Video height in pixels (0 when unknown). */
  height: number;
  /** Video frames per second: measured while publishing, else what the ingest declared. */
  fps: number;
  /** Measured video bitrate in bits per second. */
  videoBitrateBps: number;
  /** Measured audio bitrate in bits per second. */
  audioBitrateBps: number;
  /** Wall-clock time of the first frame (Unix ms; 0 before it), for display only. */
  startedAtMs: number;
  /** The ingest protocol, e.g. `"rtmp"` (empty when unknown). */
  ingestProtocol: string;
  /** The video codec string, e.g. `"avc1.64001f"`, when known. */
  videoCodec?: string;
  /** The audio codec string, e.g. `"mp4a.40.2"`, when known. */
  audioCodec?: string;
}

/** What a `CONFIG` frame says about its track, as far as the stream's metadata goes. */
export interface TrackDescription {
  /** The RFC 6381 codec string, e.g. `"avc1.64001f"`. */
  codec: string;
  /** Picture width in pixels (video). */
  width?: number;
  /** Picture height in pixels (video). */
  height?: number;
  /** Frames per second signalled by the codec (video). */
  frameRate?: number;
}

/**
 * Reads a `CONFIG` frame for {@linkcode StreamHandle.metadata}; `describeConfig` from
 * `@arcly/stream/codec` is one. The kernel knows no codec itself, so it takes this as an option.
 */
export type ConfigDescriber = (frame: MediaFrame) => TrackDescription;

/** Options for {@linkcode StreamHandle}. */
export interface StreamHandleOptions {
  /** The application name, e.g. `"live"`. */
  app: string;
  /** The stream name within the app. */
  stream: string;
  /** Ring slots: how far a subscriber may fall behind before it skips frames. */
  capacity: number;
  /** Most frames kept from the current GOP for late joiners (0, the default, keeps none). */
  gopCapacity?: number;
  /** Telemetry hooks. */
  observer?: Observer;
  /** Monotonic milliseconds; defaults to `performance.now()`. Inject to drive time in tests. */
  clock?: MonotonicClock;
  /**
   * The clock and timers players wait on (pacing, coalescing); defaults to
   * `performance.now()` and the platform's timers. Inject to drive that time in tests; it
   * is apart from `clock`, so a test can hold the stream's rates still and still play.
   */
  timers?: Timers;
  /** Fills the codec, picture size and frame rate of the metadata from each `CONFIG` frame. */
  describeConfig?: ConfigDescriber;
}

/** Options for {@linkcode StreamHandle.subscribe}. */
export interface SubscribeOptions {
  /** Start with {@linkcode StreamHandle.replayBuffer} (configs, then the current GOP). */
  replay?: boolean;
  /** Close the subscription once it has skipped more than this many frames in all. */
  maxLag?: number;
  /**
   * Read on the server's own behalf (a packager, a recorder, a relay), not a viewer's: not
   * counted in {@linkcode StreamHandle.readerCount}, so it does not keep an on-demand
   * source running (default false).
   */
  background?: boolean;
}

/** Something a stream can be packaged into: a frame sink, or an object that has one. */
export type FrameSinkLike = WritableStream<MediaFrame> | {
  readonly writable: WritableStream<MediaFrame>;
};

/** Options for {@linkcode StreamHandle.driveTo} and {@linkcode StreamHandle.packageTo}. */
export interface DriveOptions {
  /** Stops the drive when aborted. */
  signal?: AbortSignal;
  /** Not a viewer: see {@linkcode SubscribeOptions.background} (default false). */
  background?: boolean;
}

/**
 * One reader's view of a stream: a `ReadableStream<MediaFrame>` with a high-water mark of
 * zero that pulls straight from the shared ring, so it holds no queue of its own. Its
 * `getReader()` and async iteration take a frame that is already in the ring without a
 * pull: a read then costs one resolved promise. Get one from
 * {@linkcode StreamHandle.subscribe}.
 *
 * @example
 * ```ts
 * import { StreamHandle } from "@arcly/stream";
 *
 * const handle = new StreamHandle({ app: "live", stream: "a", capacity: 64 });
 * const sub = handle.subscribe();
 * handle.close();
 * for await (const _frame of sub) { /* none: the stream ended *\/ }
 * console.log(sub.dropped, sub.evicted); // 0 false
 * ```
 */
export interface Subscription extends ReadableStream<MediaFrame> {
  /** Frames this subscriber has skipped because it fell behind. */
  readonly dropped: number;
  /** Whether the subscription ended because it passed its `maxLag`. */
  readonly evicted: boolean;
}

/**
 * A live stream: the publisher calls {@linkcode StreamHandle.publish}, every reader calls
 * {@linkcode StreamHandle.subscribe}. Frames are shared by reference through one
 * fixed-capacity ring; publishing never waits and costs the same for any number of
 * readers. A reader that falls more than a ring behind skips ahead (to a keyframe where
 * one is buffered) and, past its `maxLag`, is evicted; nobody else notices.
 *
 * @example Publish and subscribe
 * ```ts
 * import { FrameFlags, StreamHandle } from "@arcly/stream";
 *
 * const handle = new StreamHandle({ app: "live", stream: "cam", capacity: 256, gopCapacity: 256 });
 * const sub = handle.subscribe({ replay: true });
 * handle.publish({
 *   track: 0, kind: "video", codec: "h264", pts: 0, dts: 0,
 *   flags: FrameFlags.KEYFRAME, data: new Uint8Array([0, 0, 0, 1, 0x65]),
 * });
 * handle.close();
 * for await (const frame of sub) console.log(frame.pts); // 0
 * ```
 */
export class StreamHandle {
  /** The application name. */
  readonly app: string;
  /** The stream name within the app. */
  readonly stream: string;
  /** `"app/stream"`. */
  readonly key: StreamKey;
  /** Most frames kept from the current GOP for late joiners. */
  readonly gopCapacity: number;
  #ring: FrameRing;
  #gop: GopCache;
  #qos: QosMeter;
  #observer: Observer;
  #clock: MonotonicClock;
  #describeConfig: ConfigDescriber | undefined;
  #videoConfig: MediaFrame | undefined;
  #audioConfig: MediaFrame | undefined;
  #hasVideo = false;
  #subscribers = 0;
  #background = 0;
  #lastReadMs: number;
  #state: StreamState = "idle";
  #recorders = 0;
  #metadata: StreamMetadata;
  #ended = new AbortController();
  #hooks: CursorHooks;
  #backgroundHooks: CursorHooks;
  #players: PlayerHub;
  #derived = new Map<string, { value: unknown; holders: number }>();

  /** Make a stream with an empty ring of `capacity` slots. */
  constructor(options: StreamHandleOptions) {
    this.app = options.app;
    this.stream = options.stream;
    this.key = `${options.app}/${options.stream}`;
    this.gopCapacity = options.gopCapacity ?? 0;
    this.#ring = new FrameRing(options.capacity);
    this.#gop = new GopCache(this.gopCapacity);
    this.#clock = options.clock ?? monotonicMs;
    this.#qos = new QosMeter(this.#clock);
    this.#observer = options.observer ?? {};
    this.#describeConfig = options.describeConfig;
    this.#metadata = {
      key: this.key,
      width: 0,
      height: 0,
      fps: 0,
      videoBitrateBps: 0,
      audioBitrateBps: 0,
      startedAtMs: 0,
      ingestProtocol: "",
    };
    this.#hooks = {
      ring: this.#ring,
      startsGop: (frame) => this.#startsGop(frame),
      lagged: (skipped) => this.#observer.onSubscriberLagged?.(this.key, skipped),
      evicted: () => this.#observer.onSubscriberEvicted?.(this.key),
      released: () => {
        this.#subscribers--;
        this.#lastReadMs = this.#clock();
      },
    };
    this.#backgroundHooks = {
      ...this.#hooks,
      released: () => {
        this.#subscribers--;
        this.#background--;
      },
    };
    this.#lastReadMs = this.#clock();
    this.#players = new PlayerHub(this.#hooks, this.#clock, options.timers ?? platformTimers);
  }

  /** Ring slots. */
  get capacity(): number {
    return this.#ring.capacity;
  }

  /**
   * Hand a frame to every subscriber. Synchronous and constant-time: the frame is stored
   * by reference in the ring and waiting readers are woken once. Returns how many
   * subscribers are attached; 0 once the stream is closed (the frame is then dropped).
   */
  publish(frame: MediaFrame): number {
    if (this.#ring.closed) return 0;
    this.#observer.onFrame?.(this.key, frame);
    if (frame.kind === "video") this.#hasVideo = true;
    if (frame.flags & FrameFlags.CONFIG) {
      if (frame.kind === "video") this.#videoConfig = frame;
      else this.#audioConfig = frame;
      this.#recordConfig(frame);
    } else if (this.#gop.add(frame, this.#startsGop(frame))) {
      this.#observer.onGopTruncated?.(this.key, this.gopCapacity);
    }
    if (this.#metadata.startedAtMs === 0) this.#metadata.startedAtMs = Date.now();
    this.#qos.record(frame.data.byteLength, frame.kind === "audio");
    this.#ring.push(frame);
    return this.#subscribers;
  }

  /**
   * Read the stream from now on (after the replay buffer with `replay: true`). The
   * returned stream pulls from the shared ring; cancelling it frees its place. It ends
   * when the stream closes (after the frames still buffered) or when `maxLag` is passed.
   */
  subscribe(options: SubscribeOptions = {}): Subscription {
    const replay = options.replay && !this.closed ? this.#replayPlan() : NOTHING_TO_REPLAY;
    this.#subscribers++;
    if (options.background) this.#background++;
    const hooks = options.background ? this.#backgroundHooks : this.#hooks;
    return new RingSubscription(hooks, replay, options.maxLag ?? Infinity);
  }

  /**
   * Play the stream into `sink`: the replay buffer (unless `replay: false`), then live
   * frames, each batch being every frame due at that moment. Resolves with why it ended:
   * the stream closed, the reader passed `maxLag`, a write stayed pending past
   * `stallTimeoutMs`, `signal` aborted, or the sink failed. Counts as a subscriber meanwhile.
   *
   * @example
   * ```ts
   * import { StreamHandle } from "@arcly/stream";
   *
   * const handle = new StreamHandle({ app: "live", stream: "a", capacity: 64 });
   * const playing = handle.play({ write: (frames, count) => console.log(count, "frames") });
   * handle.close();
   * console.log((await playing).end); // "ended"
   * ```
   */
  play(sink: PlaySink, options: PlayOptions = {}): Promise<PlayResult> {
    let replay = (options.replay ?? true) && !this.closed ? this.#replayPlan() : NOTHING_TO_REPLAY;
    if (options.replayAfter !== undefined) replay = replayAfter(replay, options.replayAfter);
    this.#subscribers++;
    return this.#players.play(sink, replay, options);
  }

  /**
   * The value derived from this stream for output form `form` (e.g. `"flv"`), made by
   * `create` for the first holder and shared with every later one until the last releases
   * it. The kernel does not look inside: the form and the value are the caller's.
   *
   * @example
   * ```ts
   * import { EncodedFrames, StreamHandle } from "@arcly/stream";
   *
   * const handle = new StreamHandle({ app: "live", stream: "a", capacity: 64 });
   * const a = handle.derive("copy", () => new EncodedFrames((f) => f.data.slice()));
   * const b = handle.derive("copy", () => new EncodedFrames((f) => f.data.slice()));
   * a.value === b.value; // true
   * a.release();
   * b.release();
   * ```
   */
  derive<T>(form: string, create: () => T): Derived<T> {
    let entry = this.#derived.get(form);
    if (entry === undefined) {
      entry = { value: create(), holders: 0 };
      this.#derived.set(form, entry);
    }
    entry.holders++;
    const held = entry;
    let released = false;
    return {
      value: held.value as T,
      release: () => {
        if (released) return;
        released = true;
        if (--held.holders === 0 && this.#derived.get(form) === held) this.#derived.delete(form);
      },
    };
  }

  /**
   * What a late joiner needs before live frames: the cached video config, the cached
   * audio config, then the current GOP from its keyframe, each frame once.
   */
  replayBuffer(): MediaFrame[] {
    const { configs, gop, gopLength } = this.#replayPlan();
    const out = [...configs];
    for (let i = 0; i < gopLength; i++) if (!configs.includes(gop[i])) out.push(gop[i]);
    return out;
  }

  /** The replay buffer by reference: no frame list is copied per subscriber. */
  #replayPlan(): ReplayPlan {
    const configs: MediaFrame[] = [];
    if (this.#videoConfig) configs.push(this.#videoConfig);
    if (this.#audioConfig) configs.push(this.#audioConfig);
    const { frames, length } = this.#gop.snapshot();
    return { configs, gop: frames, gopLength: length };
  }

  /** The latest video and audio `CONFIG` frames. */
  cachedConfigs(): { video?: MediaFrame; audio?: MediaFrame } {
    return { video: this.#videoConfig, audio: this.#audioConfig };
  }

  /** Measured throughput: rates over the last one-second window, and totals. */
  qos(): Qos {
    return this.#qos.snapshot();
  }

  /** Monotonic time of the latest frame (or of creation before the first one). */
  get lastFrameMs(): number {
    return this.#qos.lastFrameMs;
  }

  /** How many subscriptions are open. */
  get subscriberCount(): number {
    return this.#subscribers;
  }

  /**
   * How many viewers read the stream now: its subscriptions and players, but not those
   * opened with `background` (packagers, recorders, relays).
   */
  get readerCount(): number {
    return this.#subscribers - this.#background;
  }

  /**
   * When the stream last had a viewer, on the stream's clock: when the last reader left,
   * or the last {@linkcode StreamHandle.noteRead}; the handle's creation before either.
   * An on-demand source stops a while after this once {@linkcode StreamHandle.readerCount}
   * is 0.
   */
  get lastReadMs(): number {
    return this.readerCount > 0 ? this.#clock() : this.#lastReadMs;
  }

  /**
   * Note a viewer that reads without holding a subscription (an HLS player's request for a
   * playlist or segment made from a background packager): it counts as a read now.
   */
  noteRead(): void {
    this.#lastReadMs = this.#clock();
  }

  /** Whether {@linkcode StreamHandle.close} was called. */
  get closed(): boolean {
    return this.#ring.closed;
  }

  /** Aborted when the stream closes, so ingest and egress can tie their lifetime to it. */
  get signal(): AbortSignal {
    return this.#ended.signal;
  }

  /** The lifecycle state; `"ended"` once closed. */
  get state(): StreamState {
    return this.#state;
  }

  /** Move to another lifecycle state. A closed stream stays `"ended"`. */
  setState(state: StreamState): void {
    if (!this.closed) this.#state = state;
  }

  /** Whether a recorder is writing the stream now (see {@linkcode StreamHandle.beginRecording}). */
  get recording(): boolean {
    return this.#recorders > 0;
  }

  /**
   * Mark the stream as being recorded until the returned token is disposed, so
   * {@linkcode StreamHandle.recording} reads `true` meanwhile; the state stays
   * `"publishing"`. Recorders may overlap; disposing a token twice counts once.
   *
   * @example Record while the stream lasts
   * ```ts ignore
   * using _recording = handle.beginRecording();
   * await handle.packageTo(packager);
   * ```
   */
  beginRecording(): Disposable {
    this.#recorders++;
    let active = true;
    return {
      [Symbol.dispose]: () => {
        if (active) this.#recorders--;
        active = false;
      },
    };
  }

  /** A copy of the metadata with measured fps and bitrates overlaid. */
  metadata(): StreamMetadata {
    const qos = this.#qos.snapshot();
    return {
      ...this.#metadata,
      videoBitrateBps: qos.videoBitrateBps,
      audioBitrateBps: qos.audioBitrateBps,
      fps: qos.fps > 0 ? qos.fps : this.#metadata.fps,
    };
  }

  /** Change the metadata in place, e.g. `h.updateMetadata((m) => { m.width = 1920; })`. */
  updateMetadata(update: (metadata: StreamMetadata) => void): void {
    update(this.#metadata);
  }

  /**
   * End the stream: no more frames are accepted, every subscription ends once it has read
   * what is buffered, and {@linkcode StreamHandle.signal} aborts. Idempotent.
   */
  close(): void {
    if (this.#ring.closed) return;
    this.#ring.close();
    this.#state = "ended";
    this.#ended.abort(new DOMException(`stream ${this.key} ended`, "AbortError"));
  }

  /**
   * Play the stream into `sink`: the replay buffer, then live frames. When the stream ends
   * the sink is closed; when `signal` aborts the sink is aborted and this resolves; when
   * the sink fails this rejects.
   */
  async driveTo(sink: WritableStream<MediaFrame>, options: DriveOptions = {}): Promise<void> {
    const { signal, background } = options;
    try {
      await this.subscribe({ replay: true, background }).pipeTo(sink, { signal });
    } catch (error) {
      if (!signal?.aborted || error !== signal.reason) throw error;
    }
  }

  /**
   * Feed the stream into a packager (HLS segmenter, recorder…): the replay buffer, which
   * carries the configs published before the packager existed, then live frames. Whether
   * the stream ends or `signal` aborts, the packager is closed so it can finish its output.
   */
  async packageTo(packager: FrameSinkLike, options: DriveOptions = {}): Promise<void> {
    const { signal, background } = options;
    const writable = packager instanceof WritableStream ? packager : packager.writable;
    try {
      await this.subscribe({ replay: true, background }).pipeTo(writable, {
        signal,
        preventAbort: true,
      });
    } catch (error) {
      if (!signal?.aborted || error !== signal.reason) throw error;
      await writable.close();
    }
  }

  /** Put what a config says into the metadata; a config the describer rejects changes nothing. */
  #recordConfig(frame: MediaFrame): void {
    let track: TrackDescription;
    try {
      if (!this.#describeConfig) return;
      track = this.#describeConfig(frame);
    } catch {
      return; // metadata is advisory: the frames still flow, players report the problem
    }
    const m = this.#metadata;
    if (frame.kind === "audio") {
      m.audioCodec = track.codec;
      return;
    }
    m.videoCodec = track.codec;
    if (track.width) m.width = track.width;
    if (track.height) m.height = track.height;
    if (track.frameRate && !m.fps) m.fps = track.frameRate;
  }

  /** Whether `frame` anchors a new GOP: a video keyframe (any keyframe without video). */
  #startsGop(frame: MediaFrame): boolean {
    return (frame.flags & (FrameFlags.KEYFRAME | FrameFlags.CONFIG)) === FrameFlags.KEYFRAME &&
      (frame.kind === "video" || !this.#hasVideo);
  }
}

/**
 * `plan` without its media frames decoded at or before `dts` (configs stay): the replay of a
 * reader resuming where it stopped. A copy, made only for such a play.
 */
function replayAfter(plan: ReplayPlan, dts: number): ReplayPlan {
  const gop = plan.gop.slice(0, plan.gopLength).filter((frame) =>
    frame.flags & FrameFlags.CONFIG || frame.dts > dts
  );
  return { configs: plan.configs, gop, gopLength: gop.length };
}
