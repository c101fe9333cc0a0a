/**
 * The registry of apps and live streams: one publisher per `(app, stream)`, lookups for
 * players, an authorization hook for protocols, and an idle reaper.
 *
 * @module
 */

import { type MonotonicClock, monotonicMs } from "./_clock.ts";
import { escapeForLog, isValidName } from "./log.ts";
import type { Observer, PublishInfo, StreamKey, UnpublishReason } from "./observe.ts";
import { type ConfigDescriber, StreamHandle } from "./stream.ts";

/** Per-app settings for the streams published into it. */
export interface AppOptions {
  /** Ring slots per stream (default 2048). */
  capacity?: number;
  /** Frames kept from the current GOP for late joiners (default 1024; 0 disables instant start). */
  gopCapacity?: number;
}

/** Credentials a protocol extracted from its peer. */
export interface Credentials {
  /** User name (RTSP, SRT `u=`, …). */
  readonly user?: string;
  /** Password. */
  readonly password?: string;
  /** A token: a Bearer token (WHIP/WHEP, HTTP), `?token=`/`?jwt=`, SRT `s=` without `u=`. */
  readonly token?: string;
}

/**
 * What a peer wants to do: publish into a stream, read one, read the streams API, or read
 * the metrics.
 */
export type AuthAction = "publish" | "read" | "api" | "metrics";

/** A question a protocol asks before letting a peer publish or read. */
export interface AuthRequest {
  /** What the peer wants to do. */
  readonly action: AuthAction;
  /** The app it names (`""` for `api` and `metrics` requests that name no stream). */
  readonly app: string;
  /** The stream it names, without any query string (`""` when it names none). */
  readonly stream: string;
  /** The raw query string that came with the stream name (`""` when none). */
  readonly query: string;
  /** The protocol asking, e.g. `"rtmp"`. */
  readonly protocol: string;
  /** The peer's address. */
  readonly peer?: string;
  /** Whatever credentials the protocol carried. */
  readonly credentials?: Credentials;
  /** An id of the connection or session asking, when the protocol has one (for auth hooks). */
  readonly id?: string;
}

/** Decides whether a request may go ahead. */
export type AuthorizeHook = (request: AuthRequest) => boolean | Promise<boolean>;

/** Options for {@linkcode Registry}. */
export interface RegistryOptions {
  /** The apps that may be published to, by name (default: `{ live: {} }`). */
  apps?: Record<string, AppOptions>;
  /** Telemetry for every stream. */
  observer?: Observer;
  /** Authorization for every publish and read (default: allow everything). */
  authorize?: AuthorizeHook;
  /** A stream with no frame for this long is ended by the reaper (default 30,000 ms). */
  idleTimeoutMs?: number;
  /** Monotonic milliseconds; defaults to `performance.now()`. */
  clock?: MonotonicClock;
  /**
   * Reads each stream's `CONFIG` frames into its metadata, e.g. `describeConfig` from
   * `@arcly/stream/codec`.
   */
  describeConfig?: ConfigDescriber;
}

/**
 * Why {@linkcode Registry.startPublish} refused: the app is unknown, the stream already has
 * a publisher, or the stream name is empty or has control characters (see
 * {@linkcode isValidName}).
 */
export type PublishErrorCode = "unknown-app" | "busy" | "bad-name";

/**
 * A publish the registry refused: `code` says why, so protocols can answer with their own
 * error (RTMP `NetStream.Publish.BadName`, RTSP 400/404, SRT rejection codes, WHIP 400/404/409).
 * The message shows the key escaped ({@linkcode escapeForLog}), so it may be logged or sent
 * back as it is.
 *
 * @example
 * ```ts
 * import { PublishError, Registry } from "@arcly/stream";
 *
 * const registry = new Registry();
 * registry.startPublish("live", "a");
 * try {
 *   registry.startPublish("live", "a");
 * } catch (error) {
 *   if (error instanceof PublishError) console.log(error.code); // "busy"
 * }
 * ```
 */
export class PublishError extends Error {
  /** Why the publish was refused. */
  readonly code: PublishErrorCode;
  /** The stream that was asked for. */
  readonly key: StreamKey;

  /** Make an error for `key`. */
  constructor(code: PublishErrorCode, key: StreamKey) {
    const shown = escapeForLog(key);
    super(
      code === "busy"
        ? `stream ${shown} already has a publisher`
        : code === "bad-name"
        ? `stream name in ${shown} is empty or has control characters`
        : `unknown app in ${shown}: nothing may be published there`,
    );
    this.name = "PublishError";
    this.code = code;
    this.key = key;
  }
}

const DEFAULT_APP: Required<AppOptions> = { capacity: 2048, gopCapacity: 1024 };

/**
 * Apps and their live streams. Protocols call {@linkcode Registry.startPublish} when a
 * publisher arrives and {@linkcode Registry.endPublish} when it leaves; players look
 * streams up with {@linkcode Registry.get}.
 *
 * @example
 * ```ts
 * import { Registry } from "@arcly/stream";
 *
 * const registry = new Registry({ apps: { live: { gopCapacity: 512 } } });
 * const handle = registry.startPublish("live", "cam", { protocol: "rtmp" });
 * registry.get("live", "cam") === handle; // true
 * registry.endPublish(handle);
 * registry.get("live", "cam"); // undefined
 * ```
 */
export class Registry {
  #apps: Map<string, Required<AppOptions>>;
  #streams = new Map<StreamKey, StreamHandle>();
  #observer: Observer;
  #authorize: AuthorizeHook;
  #idleTimeoutMs: number;
  #clock: MonotonicClock;
  #describeConfig: ConfigDescriber | undefined;

  /** Make a registry; with no options it has one app, `live`. */
  constructor(options: RegistryOptions = {}) {
    this.#apps = new Map(
      Object.entries(options.apps ?? { live: {} }).map((
        [name, app],
      ) => [name, { ...DEFAULT_APP, ...app }]),
    );
    this.#observer = options.observer ?? {};
    this.#authorize = options.authorize ?? (() => true);
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#clock = options.clock ?? monotonicMs;
    this.#describeConfig = options.describeConfig;
  }

  /** The names of the apps streams may be published to. */
  get apps(): string[] {
    return [...this.#apps.keys()];
  }

  /**
   * Claim `(app, stream)` for a publisher and return a fresh handle for its frames.
   * Throws {@linkcode PublishError} when the app is unknown, the stream is live or its
   * name is not valid ({@linkcode isValidName}: empty, or with control characters).
   */
  startPublish(app: string, stream: string, info: Partial<PublishInfo> = {}): StreamHandle {
    const key: StreamKey = `${app}/${stream}`;
    const settings = this.#apps.get(app);
    if (!settings) throw new PublishError("unknown-app", key);
    if (!isValidName(stream)) throw new PublishError("bad-name", key);
    if (this.#streams.has(key)) throw new PublishError("busy", key);
    const handle = new StreamHandle({
      app,
      stream,
      capacity: settings.capacity,
      gopCapacity: settings.gopCapacity,
      observer: this.#observer,
      clock: this.#clock,
      describeConfig: this.#describeConfig,
    });
    const publish: PublishInfo = { protocol: info.protocol ?? "", peer: info.peer };
    handle.updateMetadata((m) => {
      m.ingestProtocol = publish.protocol;
      m.publisherAddr = publish.peer;
    });
    handle.setState("publishing");
    this.#streams.set(key, handle);
    this.#observer.onPublish?.(key, publish);
    return handle;
  }

  /**
   * End a publish: the handle closes (its subscribers end) and the key is free again. A
   * handle that is no longer the stream's publisher is closed without touching the new one.
   */
  endPublish(handle: StreamHandle, reason: UnpublishReason = "ended"): void {
    handle.close();
    if (this.#streams.get(handle.key) !== handle) return;
    this.#streams.delete(handle.key);
    this.#observer.onUnpublish?.(handle.key, reason);
  }

  /** The live stream at `(app, stream)`, if any. */
  get(app: string, stream: string): StreamHandle | undefined {
    return this.#streams.get(`${app}/${stream}`);
  }

  /** The live stream with the key `"app/stream"` (as observers are given it), if any. */
  lookup(key: StreamKey): StreamHandle | undefined {
    return this.#streams.get(key);
  }

  /** Every live stream. */
  list(): StreamHandle[] {
    return [...this.#streams.values()];
  }

  /** Ask the authorization hook; a hook that throws counts as a refusal. */
  async authorize(request: AuthRequest): Promise<boolean> {
    try {
      return await this.#authorize(request) === true;
    } catch {
      return false;
    }
  }

  /** End every stream that has had no frame for the idle timeout; returns how many. */
  reapIdle(): number {
    const now = this.#clock();
    let reaped = 0;
    for (const handle of this.list()) {
      if (now - handle.lastFrameMs < this.#idleTimeoutMs) continue;
      this.endPublish(handle, "idle");
      reaped++;
    }
    return reaped;
  }

  /** Run {@linkcode Registry.reapIdle} every `intervalMs`; call the result to stop. */
  startReaper(intervalMs = 1000): () => void {
    const timer = setInterval(() => this.reapIdle(), intervalMs);
    Deno.unrefTimer(timer);
    return () => clearInterval(timer);
  }

  /** End every stream, e.g. on shutdown. */
  closeAll(): void {
    for (const handle of this.list()) this.endPublish(handle, "ended");
  }
}
