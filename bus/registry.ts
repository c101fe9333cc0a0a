/**
 * The registry of apps and live streams: one publisher per `(app, stream)`, lookups for
 * players, an authorization hook for protocols, and an idle reaper.
 *
 * @module
 */

import { type MonotonicClock, monotonicMs } from "./_clock.ts";
import { escapeForLog, isValidName } from "./log.ts";
import type { Observer, PublishInfo, StreamKey, UnpublishReason } from "./observe.ts";
import { type ConfigDescriber, StreamHandle, type Timers } from "./stream.ts";

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

/**
 * Settings for one stream, decided when it is published: `(app, stream)` to the options that
 * override its app's (`undefined` keeps the app's).
 */
export type StreamOptionsHook = (app: string, stream: string) => AppOptions | undefined;

/**
 * What a registry tells its listeners ({@linkcode Registry.on}), synchronously, as it happens.
 * This is the lifecycle channel for wiring (packagers, recorders, relays attaching to a
 * publish); telemetry goes through the {@linkcode Observer}.
 */
export interface RegistryEvents {
  /** A publisher claimed a stream; `handle` is its fresh handle. */
  publish: (handle: StreamHandle, info: PublishInfo) => void;
  /** A publish ended; `handle` is already closed. */
  unpublish: (handle: StreamHandle, reason: UnpublishReason) => void;
}

/**
 * Asked when a reader wants a stream that is not live (see {@linkcode Registry.acquire}):
 * resolves to true when a publisher for it is being started (an on-demand source, a copy
 * pulled from another node), false when there is none to start. It must not throw.
 */
export type DemandHook = (app: string, stream: string) => boolean | Promise<boolean>;

/** Options for {@linkcode Registry.acquire}. */
export interface AcquireOptions {
  /** The longest wait for a demanded stream's publish, in ms (default 10,000). */
  timeoutMs?: number;
  /** Gives up waiting when aborted (the reader left). */
  signal?: AbortSignal;
}

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
  /** Per-stream settings over the app's, asked at every publish (default: the app's). */
  streamOptions?: StreamOptionsHook;
  /** Monotonic milliseconds; defaults to `performance.now()`. */
  clock?: MonotonicClock;
  /**
   * The clock and timers every stream's players wait on (pacing, coalescing); defaults to
   * `performance.now()` and the platform's timers. Apart from `clock`: inject to drive it.
   */
  timers?: Timers;
  /**
   * Reads each stream's `CONFIG` frames into its metadata, e.g. `describeConfig` from
   * `@arcly/stream/codec`.
   */
  describeConfig?: ConfigDescriber;
  /** Starts a publisher for a stream a reader wants that is not live (default: none). */
  demand?: DemandHook;
}

/** What {@linkcode Registry.configure} may change while streams are live. */
export type RegistrySettings = Pick<
  RegistryOptions,
  "apps" | "authorize" | "streamOptions" | "idleTimeoutMs" | "demand"
>;

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

const allowAll: AuthorizeHook = () => true;

function appSettings(apps: Record<string, AppOptions> = { live: {} }) {
  return new Map(Object.entries(apps).map(([name, app]) => [name, { ...DEFAULT_APP, ...app }]));
}

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
  #timers: Timers | undefined;
  #describeConfig: ConfigDescriber | undefined;
  #streamOptions: StreamOptionsHook | undefined;
  #demand: DemandHook | undefined;
  #listeners: { [E in keyof RegistryEvents]: Set<RegistryEvents[E]> } = {
    publish: new Set(),
    unpublish: new Set(),
  };

  /** Make a registry; with no options it has one app, `live`. */
  constructor(options: RegistryOptions = {}) {
    this.#apps = appSettings(options.apps);
    this.#observer = options.observer ?? {};
    this.#authorize = options.authorize ?? allowAll;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.#clock = options.clock ?? monotonicMs;
    this.#timers = options.timers;
    this.#describeConfig = options.describeConfig;
    this.#streamOptions = options.streamOptions;
    this.#demand = options.demand;
  }

  /**
   * Change the apps, the authorization hook, the per-stream settings or the idle timeout
   * while streams are live (a config reload). Each option given replaces the current one
   * (`authorize: undefined` given explicitly allows everything again); streams already live
   * keep running as they are, and what is new applies to the next publish or read. A live
   * stream of an app that is no longer listed goes on until it ends.
   *
   * @example
   * ```ts
   * import { Registry } from "@arcly/stream";
   *
   * const registry = new Registry();
   * registry.configure({ apps: { live: {}, cams: { gopCapacity: 256 } } });
   * registry.apps; // ["live", "cams"]
   * ```
   */
  configure(settings: RegistrySettings): void {
    if ("apps" in settings) this.#apps = appSettings(settings.apps);
    if ("authorize" in settings) this.#authorize = settings.authorize ?? allowAll;
    if ("streamOptions" in settings) this.#streamOptions = settings.streamOptions;
    if ("idleTimeoutMs" in settings) this.#idleTimeoutMs = settings.idleTimeoutMs ?? 30_000;
    if ("demand" in settings) this.#demand = settings.demand;
  }

  /**
   * Call `listener` on every `publish` or `unpublish` from now on; call the result to stop.
   * Listeners run synchronously inside {@linkcode Registry.startPublish} and
   * {@linkcode Registry.endPublish}, after the observer; one that throws is skipped (the
   * publish goes on), so a listener reports its own failures.
   *
   * @example Start work on every publish
   * ```ts
   * import { Registry } from "@arcly/stream";
   *
   * const registry = new Registry();
   * const off = registry.on("publish", (handle, info) => {
   *   console.log(`${handle.key} from ${info.protocol}`);
   * });
   * registry.startPublish("live", "cam", { protocol: "rtmp" }); // logs "live/cam from rtmp"
   * off();
   * ```
   */
  on<E extends keyof RegistryEvents>(event: E, listener: RegistryEvents[E]): () => void {
    const set = this.#listeners[event] as Set<RegistryEvents[E]>;
    set.add(listener);
    return () => void set.delete(listener);
  }

  #emit<E extends keyof RegistryEvents>(event: E, ...args: Parameters<RegistryEvents[E]>): void {
    for (const listener of this.#listeners[event]) {
      try {
        (listener as (...a: Parameters<RegistryEvents[E]>) => void)(...args);
      } catch {
        // A listener reports its own failures; the publish must go on.
      }
    }
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
    const own = this.#streamOptions?.(app, stream);
    const handle = new StreamHandle({
      app,
      stream,
      capacity: own?.capacity ?? settings.capacity,
      gopCapacity: own?.gopCapacity ?? settings.gopCapacity,
      observer: this.#observer,
      clock: this.#clock,
      timers: this.#timers,
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
    this.#emit("publish", handle, publish);
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
    this.#emit("unpublish", handle, reason);
  }

  /** The live stream at `(app, stream)`, if any. */
  get(app: string, stream: string): StreamHandle | undefined {
    return this.#streams.get(`${app}/${stream}`);
  }

  /**
   * The live stream at `(app, stream)` for a reader: at once when it is live; otherwise the
   * demand hook is asked to start a publisher for it, and the reader waits (at most
   * `timeoutMs`, or until `signal` aborts) for that publish. `undefined` when there is no
   * such stream: nothing to start, or it did not start in time. Every protocol's play path
   * looks streams up this way, so a reader arriving while an on-demand source connects
   * waits instead of being refused.
   *
   * @example
   * ```ts
   * import { Registry } from "@arcly/stream";
   *
   * const registry = new Registry({
   *   demand: (app, stream) => {
   *     setTimeout(() => registry.startPublish(app, stream, { protocol: "pull" }), 10);
   *     return true;
   *   },
   * });
   * const handle = await registry.acquire("live", "cam"); // published 10 ms later
   * handle?.key; // "live/cam"
   * ```
   */
  async acquire(
    app: string,
    stream: string,
    options: AcquireOptions = {},
  ): Promise<StreamHandle | undefined> {
    const key: StreamKey = `${app}/${stream}`;
    const live = this.#streams.get(key);
    const demand = this.#demand;
    if (live || !demand || !this.#apps.has(app) || !isValidName(stream)) return live;
    if (options.signal?.aborted) return undefined;
    const { promise, resolve } = Promise.withResolvers<StreamHandle | undefined>();
    const off = this.on("publish", (handle) => handle.key === key && resolve(handle));
    const timer = setTimeout(() => resolve(undefined), options.timeoutMs ?? 10_000);
    const abort = () => resolve(undefined);
    options.signal?.addEventListener("abort", abort, { once: true });
    try {
      let starting: boolean;
      try {
        starting = await demand(app, stream);
      } catch {
        starting = false; // a hook that throws starts nothing
      }
      if (!starting) return this.#streams.get(key);
      return this.#streams.get(key) ?? await promise;
    } finally {
      off();
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", abort);
    }
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
