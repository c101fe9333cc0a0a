/**
 * Streams mirrored between workers: what a publish in one worker looks like on the message
 * channel to another ({@linkcode MirrorMessage}), the side that sends a live stream
 * ({@linkcode mirrorStream}) and the side that republishes it ({@linkcode MirrorStreams}).
 *
 * A mirror is a stream of the receiving worker's registry published with the protocol
 * {@linkcode MIRROR_PROTOCOL}: its frames are the origin's, copied once per receiving
 * worker, starting from the origin's replay buffer, so a late joiner on any worker gets the
 * cached configs and the current GOP. Relays and clusters must not claim or relay a mirror.
 */

import {
  type Logger,
  type MediaFrame,
  type Observer,
  PublishError,
  type Registry,
  type StreamHandle,
  type StreamKey,
  type UnpublishReason,
} from "../mod.ts";

/** The `PublishInfo.protocol` of a stream mirrored from another worker. */
export const MIRROR_PROTOCOL = "worker";

/** What crosses between workers about mirrored streams; `id` names one publish. */
export type MirrorMessage =
  | {
    readonly type: "publish";
    readonly id: string;
    readonly app: string;
    readonly stream: string;
    /** The origin's ingest protocol (kept in the mirror's metadata). */
    readonly protocol: string;
    readonly peer?: string;
  }
  | { readonly type: "frames"; readonly id: string; readonly frames: MediaFrame[] }
  | { readonly type: "unpublish"; readonly id: string; readonly reason: UnpublishReason }
  /** The receiver already has a publisher for the key: the origin must end its publish. */
  | { readonly type: "refused"; readonly id: string };

/** Posts one message to every receiving worker. */
export type MirrorPost = (message: MirrorMessage) => void;

/**
 * Send `handle`'s publish as `id` through `post`: the publish, its replay buffer and live
 * frames (each frame's bytes copied once into a buffer of their own, so that no ingest
 * buffer crosses), then the unpublish once it ends or `signal` aborts; resolves then. It
 * reads in the background: a mirror is no viewer (the readers of the mirror are, and the
 * receiver reports them, see {@linkcode MirrorStreams.reading}).
 */
export async function mirrorStream(
  handle: StreamHandle,
  id: string,
  protocol: string,
  peer: string | undefined,
  post: MirrorPost,
  signal?: AbortSignal,
): Promise<void> {
  post({ type: "publish", id, app: handle.app, stream: handle.stream, protocol, peer });
  const subscription = handle.subscribe({ replay: true, background: true });
  const stop = () => void subscription.cancel().catch(() => {});
  signal?.addEventListener("abort", stop, { once: true });
  try {
    for await (const frame of subscription) {
      const { track, kind, codec, pts, dts, flags, data } = frame;
      post({
        type: "frames",
        id,
        frames: [{ track, kind, codec, pts, dts, flags, data: data.slice() }],
      });
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    const ended = handle.closed && !signal?.aborted;
    post({ type: "unpublish", id, reason: ended ? "ended" : "error" });
  }
}

/** How {@linkcode MirrorStreams} settles a key that already has a publisher here. */
export type MirrorConflict = "refuse" | "replace";

/**
 * The mirrors of one registry: republishes what {@linkcode mirrorStream} sends from other
 * workers. With `"refuse"` (the hub, which decides which publish came first) a key that is
 * live here already is refused back to its origin; with `"replace"` (a worker, which the
 * hub's order binds) a local publisher of that key is ended for the mirror.
 */
export class MirrorStreams {
  #registry: Registry;
  #logger: Logger;
  #conflict: MirrorConflict;
  #mirrors = new Map<string, StreamHandle>();

  /** Republish into `registry`. */
  constructor(registry: Registry, logger: Logger, conflict: MirrorConflict) {
    this.#registry = registry;
    this.#logger = logger;
    this.#conflict = conflict;
  }

  /**
   * Apply one message from the worker `reply` answers to; returns the new mirror for a
   * publish it took. A `refused` message is not for this class (see the origin's side).
   */
  receive(message: MirrorMessage, reply: MirrorPost): StreamHandle | undefined {
    switch (message.type) {
      case "publish":
        return this.#publish(message, reply);
      case "frames": {
        const mirror = this.#mirrors.get(message.id);
        if (mirror) { for (const frame of message.frames) mirror.publish(frame); }
        return undefined;
      }
      case "unpublish": {
        const mirror = this.#mirrors.get(message.id);
        this.#mirrors.delete(message.id);
        if (mirror) this.#registry.endPublish(mirror, message.reason);
        return undefined;
      }
    }
  }

  /** The ids of the mirrors that have viewers now (their origin counts them as reads). */
  reading(): string[] {
    return [...this.#mirrors].filter(([, mirror]) => mirror.readerCount > 0).map(([id]) => id);
  }

  /** End every mirror whose id `belongs` says came from a worker that is gone. */
  endFrom(belongs: (id: string) => boolean): void {
    for (const [id, mirror] of this.#mirrors) {
      if (!belongs(id)) continue;
      this.#mirrors.delete(id);
      this.#registry.endPublish(mirror, "error");
    }
  }

  #publish(
    message: Extract<MirrorMessage, { type: "publish" }>,
    reply: MirrorPost,
  ): StreamHandle | undefined {
    const { id, app, stream } = message;
    const live = this.#registry.get(app, stream);
    if (live && this.#conflict === "replace") {
      this.#logger.warn(
        `${live.key} is published on another worker first: this worker's publisher is ended`,
      );
      this.#registry.endPublish(live, "error");
    }
    let mirror: StreamHandle;
    try {
      mirror = this.#registry.startPublish(app, stream, {
        protocol: MIRROR_PROTOCOL,
        peer: message.peer,
      });
    } catch (error) {
      // busy (published here first) or an app this worker does not know (a reload under way)
      if (!(error instanceof PublishError)) throw error;
      reply({ type: "refused", id });
      return undefined;
    }
    mirror.updateMetadata((m) => m.ingestProtocol = message.protocol);
    this.#mirrors.set(id, mirror);
    return mirror;
  }
}

/**
 * `observer` without the publishes and unpublishes of mirrors: a stream is counted once,
 * by the worker it is published on.
 */
export function withoutMirrors(observer: Observer): Observer {
  const mirrors = new Set<StreamKey>();
  return {
    onFrame: observer.onFrame?.bind(observer),
    onSubscriberLagged: observer.onSubscriberLagged?.bind(observer),
    onSubscriberEvicted: observer.onSubscriberEvicted?.bind(observer),
    onGopTruncated: observer.onGopTruncated?.bind(observer),
    onPublish(key, info) {
      if (info.protocol === MIRROR_PROTOCOL) mirrors.add(key);
      else observer.onPublish?.(key, info);
    },
    onUnpublish(key, reason) {
      if (!mirrors.delete(key)) observer.onUnpublish?.(key, reason);
    },
  };
}
