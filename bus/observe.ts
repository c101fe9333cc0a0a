/**
 * The kernel's only outward channels: an {@linkcode Observer} for telemetry and a
 * {@linkcode Logger} for text. Both are injected; the kernel has no defaults of its own
 * beyond doing nothing.
 *
 * @module
 */

import type { MediaFrame } from "./frame.ts";

/** Identifies a stream as `"app/stream"`, e.g. `"live/cam1"`. */
export type StreamKey = string;

/** What a publisher told the registry when it started. */
export interface PublishInfo {
  /** The ingest protocol, e.g. `"rtmp"`. */
  readonly protocol: string;
  /** The publisher's address, e.g. `"127.0.0.1:50432"`. */
  readonly peer?: string;
}

/** Why a publish ended. */
export type UnpublishReason = "ended" | "idle" | "error";

/**
 * Telemetry hooks. Every method is optional and called synchronously on the
 * publishing path, so implementations must be cheap and must not throw.
 *
 * @example Count lag events
 * ```ts
 * import { type Observer, StreamHandle } from "@arcly/stream";
 *
 * let lagged = 0;
 * const observer: Observer = { onSubscriberLagged: (_key, skipped) => (lagged += skipped) };
 * const handle = new StreamHandle({ app: "live", stream: "a", capacity: 64, observer });
 * ```
 */
export interface Observer {
  /** A frame was published. */
  onFrame?(key: StreamKey, frame: MediaFrame): void;
  /** A subscriber fell more than a ring behind and skipped `skipped` frames. */
  onSubscriberLagged?(key: StreamKey, skipped: number): void;
  /** A subscriber passed its `maxLag` and was closed. */
  onSubscriberEvicted?(key: StreamKey): void;
  /** The current GOP outgrew the GOP cache; fires once per GOP. */
  onGopTruncated?(key: StreamKey, capacity: number): void;
  /** A publisher claimed the stream. */
  onPublish?(key: StreamKey, info: PublishInfo): void;
  /** The publish ended. */
  onUnpublish?(key: StreamKey, reason: UnpublishReason): void;
}

/**
 * A line-oriented logger. `cli.ts` supplies one; library users may pass `console`.
 *
 * @example
 * ```ts
 * import type { Logger } from "@arcly/stream";
 *
 * const logger: Logger = console;
 * logger.info("ready");
 * ```
 */
export interface Logger {
  /** Routine events: connections, publishes, plays. */
  info(message: string): void;
  /** Something went wrong for one peer or stream; the process goes on. */
  warn(message: string): void;
  /** Something went wrong that an operator should look at. */
  error(message: string): void;
}

/**
 * One observer that forwards every event to each of `observers` in order.
 *
 * @example
 * ```ts
 * import { combineObservers, type Observer } from "@arcly/stream";
 *
 * const log: Observer = { onPublish: (key) => console.log("publish", key) };
 * const count: Observer = { onUnpublish: () => {} };
 * const observer = combineObservers(log, count);
 * observer.onPublish?.("live/a", { protocol: "rtmp" });
 * ```
 */
export function combineObservers(...observers: Observer[]): Observer {
  const each = <K extends keyof Observer>(name: K) => {
    const hooks = observers.map((o) => o[name]?.bind(o)).filter((h) => h !== undefined);
    if (hooks.length === 0) return undefined;
    return ((...args: unknown[]) => {
      for (const hook of hooks) (hook as (...a: unknown[]) => void)(...args);
    }) as Observer[K];
  };
  return {
    onFrame: each("onFrame"),
    onSubscriberLagged: each("onSubscriberLagged"),
    onSubscriberEvicted: each("onSubscriberEvicted"),
    onGopTruncated: each("onGopTruncated"),
    onPublish: each("onPublish"),
    onUnpublish: each("onUnpublish"),
  };
}

/** A logger that discards everything. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
