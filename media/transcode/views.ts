/**
 * Transcoded views of live streams, shared by every viewer that needs one: made when the
 * first such viewer arrives, ended a while after the last one leaves.
 *
 * @module
 */

import { FrameFlags } from "../../bus/frame.ts";
import { type Logger, silentLogger } from "../../bus/observe.ts";
import { StreamHandle } from "../../bus/stream.ts";
import { AudioTranscoder, type TranscodeTarget } from "./transcoder.ts";

/** Options for {@linkcode TranscodedViews}. */
export interface TranscodedViewsOptions {
  /** Where the transcoders' errors go. */
  logger?: Logger;
  /** How long a view outlives its last viewer, in ms (default 5,000), so a reload reuses it. */
  lingerMs?: number;
}

/** A viewer's hold on a transcoded view; release it once, when the viewer leaves. */
export interface TranscodedLease {
  /** The view: subscribe to it as to the source. */
  readonly handle: StreamHandle;
  /** The viewer is done with the view. */
  release(): void;
}

interface View {
  readonly handle: StreamHandle;
  leases: number;
  linger?: ReturnType<typeof setTimeout>;
  stop(): void;
}

/**
 * Makes and shares transcoded views of streams: a view is a stream of its own whose video
 * frames are the source's (the same objects, never copied) and whose audio is the source's
 * transcoded once, for every viewer of that view (see {@linkcode AudioTranscoder}). A view
 * starts from the source's replay buffer, so its first viewer starts on a keyframe at once;
 * it ends with the source, or {@linkcode TranscodedViewsOptions.lingerMs} after its last
 * viewer released it.
 *
 * @example Opus for WebRTC viewers of an AAC stream
 * ```ts ignore
 * import { TranscodedViews } from "@arcly/stream/transcode";
 *
 * const views = new TranscodedViews();
 * const lease = views.acquire(handle, "opus");
 * play(lease.handle.subscribe({ replay: true })); // video as published, audio in Opus
 * lease.release();
 * ```
 */
export class TranscodedViews {
  readonly #logger: Logger;
  readonly #lingerMs: number;
  readonly #views = new Map<StreamHandle, Map<TranscodeTarget, View>>();

  /** Make an empty set of views. */
  constructor(options: TranscodedViewsOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#lingerMs = options.lingerMs ?? 5000;
  }

  /** Views running now. */
  get size(): number {
    let n = 0;
    for (const byTarget of this.#views.values()) n += byTarget.size;
    return n;
  }

  /** Whether a viewer that can only play `to` audio needs a view of `source` (AAC ⇄ Opus). */
  needed(source: StreamHandle, to: TranscodeTarget): boolean {
    const audio = source.cachedConfigs().audio;
    return audio !== undefined && audio.codec !== to &&
      (audio.codec === "aac" || audio.codec === "opus");
  }

  /**
   * A lease on the view of `source` whose audio is `to`, once `source` has said what its
   * audio is: its first audio CONFIG frame, waited for up to `waitMs` (default 3,000 ms,
   * for a publish that has just started). Undefined when no view is needed: the audio is
   * already `to`, or there is none by then, or the stream ended.
   */
  async acquireWhenNeeded(
    source: StreamHandle,
    to: TranscodeTarget,
    waitMs = 3000,
  ): Promise<TranscodedLease | undefined> {
    await audioConfigOf(source, waitMs);
    return !source.closed && this.needed(source, to) ? this.acquire(source, to) : undefined;
  }

  /** A lease on the view of `source` with its audio in `to`, made if there is none. */
  acquire(source: StreamHandle, to: TranscodeTarget): TranscodedLease {
    let byTarget = this.#views.get(source);
    if (!byTarget) this.#views.set(source, byTarget = new Map());
    let view = byTarget.get(to);
    if (!view) byTarget.set(to, view = this.#start(source, to));
    clearTimeout(view.linger);
    view.linger = undefined;
    view.leases++;
    const held = view;
    let released = false;
    return {
      handle: held.handle,
      release: () => {
        if (released) return;
        released = true;
        if (--held.leases > 0 || held.handle.closed) return;
        held.linger = setTimeout(() => held.stop(), this.#lingerMs);
      },
    };
  }

  /** End every view now. */
  close(): void {
    for (const byTarget of [...this.#views.values()]) {
      for (const view of [...byTarget.values()]) view.stop();
    }
  }

  #start(source: StreamHandle, to: TranscodeTarget): View {
    const handle = new StreamHandle({
      app: source.app,
      stream: source.stream,
      capacity: source.capacity,
      gopCapacity: source.gopCapacity,
    });
    handle.setState("publishing");
    // what players are told of the stream (picture size, frame rate) is the source's
    handle.updateMetadata((m) => {
      const { audioCodec: _, ...described } = source.metadata();
      Object.assign(m, described, { key: handle.key });
    });
    const transcoder = new AudioTranscoder({ to, name: source.key, logger: this.#logger });
    const input = source.subscribe({ replay: true }).getReader();
    const audio = transcoder.writable.getWriter();
    const forget = () => {
      const byTarget = this.#views.get(source);
      if (byTarget?.get(to) !== view) return;
      byTarget.delete(to);
      if (byTarget.size === 0) this.#views.delete(source);
    };
    const view: View = {
      handle,
      leases: 0,
      stop: () => {
        clearTimeout(view.linger);
        forget();
        input.cancel().catch(() => {});
        audio.abort().catch(() => {});
        handle.close();
      },
    };
    const pump = async () => {
      for (;;) {
        const { value, done } = await input.read();
        if (done) break;
        if (value.kind === "video") handle.publish(value);
        else await audio.write(value);
      }
      await audio.close();
    };
    const drain = async () => {
      for await (const frame of transcoder.readable) handle.publish(frame);
    };
    Promise.all([pump(), drain()]).catch((error) => {
      this.#logger.warn(
        `transcode ${source.key}: ${error instanceof Error ? error.message : error}`,
      );
    }).finally(() => {
      forget();
      clearTimeout(view.linger);
      handle.close();
    });
    return view;
  }
}

/**
 * Resolves once `handle` has an audio config (at once if it has one), it ended, or `waitMs`
 * passed: for a consumer that declares its tracks from the configs, as packagers do, and
 * for a view whose transcoded audio starts a moment after its video.
 *
 * @example
 * ```ts ignore
 * import { audioConfigOf } from "@arcly/stream/transcode";
 *
 * await audioConfigOf(lease.handle, 3000);
 * await lease.handle.packageTo(packager); // both configs lead the replay
 * ```
 */
export async function audioConfigOf(handle: StreamHandle, waitMs: number): Promise<void> {
  if (handle.cachedConfigs().audio || handle.closed) return;
  const frames = handle.subscribe({ replay: true, background: true }).getReader();
  const timer = setTimeout(() => void frames.cancel().catch(() => {}), waitMs);
  try {
    for (;;) {
      const { value, done } = await frames.read();
      if (done || (value.kind === "audio" && value.flags & FrameFlags.CONFIG)) return;
    }
  } finally {
    clearTimeout(timer);
    await frames.cancel().catch(() => {});
  }
}
