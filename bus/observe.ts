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
export type UnpublishReason = "ended" | "idle" | "replaced" | "error";

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

/** A logger that discards everything. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
