/**
 * Push relays: a live stream forwarded to other servers (restreaming to YouTube or Twitch,
 * feeding another node), each target with its own connection, reconnects and back-off.
 *
 * @module
 */

import { redactUrl } from "./redact.ts";
import type { Logger, MediaFrame, StreamHandle } from "../mod.ts";
import { silentLogger } from "../mod.ts";

/** What a relay is doing now. */
export type RelayState = "connecting" | "relaying" | "waiting" | "stopped";

/** A relay's state, for the streams API. */
export interface RelayStatus {
  /** The target URL, its user info and query (credentials, passphrases) left out. */
  target: string;
  /** What the relay is doing. */
  state: RelayState;
  /** Frames sent over every connection so far. */
  frames: number;
  /** Connections made so far. */
  connections: number;
  /** Why the last connection ended or failed, if one did. */
  lastError?: string;
}

/** Options for {@linkcode PushRelay}. */
export interface PushRelayOptions {
  /** Where connects, drops and reconnects are logged. */
  logger?: Logger;
  /** The first wait before a reconnect, in ms (default 1,000); it doubles up to `maxBackoffMs`. */
  backoffMs?: number;
  /** The longest wait between reconnects, in ms (default 30,000). */
  maxBackoffMs?: number;
  /** A target that falls more than this many frames behind is dropped and reconnected (default 512). */
  maxLag?: number;
  /**
   * Set-up deadline of each connection, in ms (default 10,000); for `srt://` also the
   * longest silence of the target before the connection is given up.
   */
  timeoutMs?: number;
  /** `rtmps://` targets: certificates (PEM) to trust instead of the system's roots. */
  caCerts?: string[];
}

/** One connection to a target: what `RtmpPublisher` (rtmp) and `SrtPublisher` (srt) are. */
export interface RelayConnection {
  /** Send one frame; rejects once the connection has ended. */
  write(frame: MediaFrame): Promise<void>;
  /** End the connection. Idempotent. */
  close(): void;
  /** Resolves with why the connection ended. */
  readonly closed: Promise<string>;
}

/** The URL schemes a relay can push to. */
const SCHEMES = ["rtmp:", "rtmps:", "srt:"];

/**
 * Whether `url` is a target a {@linkcode PushRelay} can push to: `rtmp://`, `rtmps://` or
 * `srt://`.
 *
 * @example
 * ```ts
 * import { isRelayTarget } from "@arcly/stream/server";
 *
 * isRelayTarget("srt://backup:8890?streamid=publish:live/cam"); // true
 * isRelayTarget("http://example.com/"); // false
 * ```
 */
export function isRelayTarget(url: string): boolean {
  try {
    return SCHEMES.includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

/**
 * Forwards one stream to one `rtmp://`, `rtmps://` or `srt://` target (for SRT the URL's
 * `streamid=publish:…`, `passphrase`, `pbkeylen` and `latency` apply) for as long as the
 * stream lives: the replay
 * buffer first (so the target starts on a keyframe with the configs), then live frames. A
 * target that refuses, drops or falls behind is reconnected after a back-off that doubles up
 * to a limit and starts over once a connection has relayed for a while; its own subscription
 * means a slow target never slows the stream or other targets.
 *
 * @example
 * ```ts ignore
 * import { PushRelay } from "@arcly/stream/server";
 *
 * const relay = new PushRelay(handle, "rtmp://a.rtmp.youtube.com/live2/KEY");
 * relay.status(); // { target: "rtmp://a.rtmp.youtube.com/live2/…", state: "connecting", … }
 * await relay.finished; // once the stream ends or relay.stop()
 * ```
 */
export class PushRelay {
  /** Resolves once the relay has stopped (the stream ended, or {@linkcode PushRelay.stop}). */
  readonly finished: Promise<void>;
  readonly #handle: StreamHandle;
  readonly #url: string;
  readonly #options: Required<Omit<PushRelayOptions, "logger" | "caCerts">>;
  readonly #caCerts?: string[];
  readonly #logger: Logger;
  readonly #stop = new AbortController();
  #status: RelayStatus;
  #publisher: RelayConnection | undefined;

  /** Start relaying `handle` to `url`. */
  constructor(handle: StreamHandle, url: string, options: PushRelayOptions = {}) {
    this.#handle = handle;
    this.#url = url;
    this.#logger = options.logger ?? silentLogger;
    this.#options = {
      backoffMs: options.backoffMs ?? 1000,
      maxBackoffMs: options.maxBackoffMs ?? 30_000,
      maxLag: options.maxLag ?? 512,
      timeoutMs: options.timeoutMs ?? 10_000,
    };
    this.#caCerts = options.caCerts;
    this.#status = {
      target: redactUrl(url, { streamKey: true }),
      state: "connecting",
      frames: 0,
      connections: 0,
    };
    this.finished = this.#run();
  }

  /** What the relay is doing now (a copy). */
  status(): RelayStatus {
    return { ...this.#status };
  }

  /** Stop relaying; the target sees the connection close. Idempotent. */
  stop(): void {
    this.#stop.abort();
    this.#publisher?.close();
  }

  async #run(): Promise<void> {
    const what = `relay ${this.#handle.key} to ${this.#status.target}`;
    let backoff = this.#options.backoffMs;
    while (!this.#stopped()) {
      this.#status.state = "connecting";
      const started = performance.now();
      try {
        // A stop (or the stream's end) does not wait for a set-up that may take the timeout.
        const connecting = this.#connect();
        this.#publisher = await this.#unlessStopped(connecting);
        if (!this.#publisher) {
          connecting.then((late) => late.close(), () => {});
          break;
        }
        this.#status.connections++;
        this.#status.state = "relaying";
        this.#logger.info(`${what}: relaying`);
        await this.#relay(this.#publisher);
      } catch (error) {
        this.#status.lastError = error instanceof Error ? error.message : String(error);
      } finally {
        this.#publisher?.close();
        this.#publisher = undefined;
      }
      if (this.#stopped()) break;
      // a connection that relayed longer than the back-off was not a failing one
      if (performance.now() - started > 2 * backoff) backoff = this.#options.backoffMs;
      this.#status.state = "waiting";
      this.#logger.warn(`${what}: ${this.#status.lastError ?? "ended"}; again in ${backoff} ms`);
      await this.#sleep(backoff);
      backoff = Math.min(backoff * 2, this.#options.maxBackoffMs);
    }
    this.#status.state = "stopped";
    this.#logger.info(`${what}: stopped`);
  }

  /** What `promise` resolves to, or `undefined` as soon as the relay stops or its stream ends. */
  async #unlessStopped<T>(promise: Promise<T>): Promise<T | undefined> {
    const signals = [this.#stop.signal, this.#handle.signal];
    const stopped = Promise.withResolvers<undefined>();
    const done = () => stopped.resolve(undefined);
    for (const signal of signals) signal.addEventListener("abort", done, { once: true });
    if (this.#stopped()) done();
    try {
      return await Promise.race([promise, stopped.promise]);
    } finally {
      for (const signal of signals) signal.removeEventListener("abort", done);
    }
  }

  /** A connection to the target, its protocol's module loaded when first needed. */
  async #connect(): Promise<RelayConnection> {
    const timeoutMs = this.#options.timeoutMs;
    if (!isRelayTarget(this.#url)) throw new RangeError("not an rtmp://, rtmps:// or srt:// URL");
    if (new URL(this.#url).protocol === "srt:") {
      const { SrtPublisher } = await import("../ingest/srt/publisher.ts");
      return await SrtPublisher.connect(this.#url, {
        timeoutMs,
        logger: this.#logger,
        signal: this.#stop.signal,
      });
    }
    const { RtmpPublisher } = await import("../ingest/rtmp/client.ts");
    return await RtmpPublisher.connect(this.#url, { timeoutMs, caCerts: this.#caCerts });
  }

  async #relay(publisher: RelayConnection): Promise<void> {
    const subscription = this.#handle.subscribe({ replay: true, maxLag: this.#options.maxLag });
    const reader = subscription.getReader();
    const stop = () => void reader.cancel().catch(() => {});
    this.#stop.signal.addEventListener("abort", stop, { once: true });
    void publisher.closed.then(stop);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        await publisher.write(value);
        this.#status.frames++;
      }
    } finally {
      this.#stop.signal.removeEventListener("abort", stop);
      reader.releaseLock();
    }
    if (subscription.evicted) throw new Error("the target fell too far behind");
    if (!this.#handle.closed && !this.#stopped()) {
      throw new Error(`the target ended the publish: ${await publisher.closed}`);
    }
  }

  #stopped(): boolean {
    return this.#stop.signal.aborted || this.#handle.closed;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const ended = this.#handle.signal;
      function done() {
        clearTimeout(timer);
        ended.removeEventListener("abort", done);
        resolve();
      }
      ended.addEventListener("abort", done, { once: true });
      this.#stop.signal.addEventListener("abort", done, { once: true });
    });
  }
}
