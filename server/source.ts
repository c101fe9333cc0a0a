/**
 * One path's pull source: a remote stream (a camera's RTSP, another server's RTMP or SRT,
 * an HLS playlist, a WHEP endpoint) republished under a local key, for as long as it is
 * wanted, across the remote's drops.
 *
 * @module
 */

import {
  escapeForLog,
  FrameFlags,
  type Logger,
  type MediaFrame,
  PublishError,
  type Registry,
  silentLogger,
  type StreamHandle,
} from "../mod.ts";
import type { PullClient } from "../ingest/pull.ts";

/** What a source is doing now. */
export type SourceState = "connecting" | "live" | "waiting" | "stopped";

/** A source's state, for the streams API. */
export interface SourceStatus {
  /** The source URL, without credentials (user info and query). */
  url: string;
  /** Whether it starts when a reader comes and stops after the last one. */
  onDemand: boolean;
  /** What it is doing. */
  state: SourceState;
  /** Connections made so far. */
  connections: number;
  /** Why the last connection ended or failed, if one did. */
  lastError?: string;
}

/** Options for {@linkcode PullSource}. */
export interface PullSourceOptions {
  /** The registry it publishes into. */
  registry: Registry;
  /** The app and stream it publishes as. */
  app: string;
  /** The stream name within the app. */
  stream: string;
  /**
   * Where to pull from, asked before every connection (a cluster's directory may move a
   * stream); `undefined`: the source is gone (an on-demand one stops, one kept running
   * waits and asks again).
   */
  url: string | (() => string | undefined | Promise<string | undefined>);
  /** The pull client for a URL (`undefined`: no client takes it, the source stops). */
  clientFor: (url: URL) => PullClient | undefined | Promise<PullClient | undefined>;
  /**
   * Started for a reader, stopped `closeAfterMs` after the last one left (default false:
   * kept running until {@linkcode PullSource.stop}).
   */
  onDemand?: boolean;
  /** On demand: how long it runs with no reader, in ms (default 10,000). */
  closeAfterMs?: number;
  /**
   * How long the stream stays published while the source is lost, in ms (default
   * 10,000): a source back within it continues the stream (frames marked
   * `DISCONTINUITY`, timestamps carried on); past it the stream ends.
   */
  retryWindowMs?: number;
  /** The first wait before a reconnect, in ms (default 500); doubling up to `maxBackoffMs`. */
  backoffMs?: number;
  /** The longest wait between reconnects, in ms (default 10,000). */
  maxBackoffMs?: number;
  /** The pull client's set-up and silence deadline, in ms (default 10,000). */
  timeoutMs?: number;
  /** What the publish is labelled with (`PublishInfo.protocol`; default `"pull"`). */
  protocol?: string;
  /** Where connects, drops and reconnects are logged. */
  logger?: Logger;
  /** Monotonic milliseconds (default `performance.now()`), the registry's clock. */
  clock?: () => number;
}

/** How often an on-demand source looks whether anyone still reads, in ms. */
const IDLE_CHECK_MS = 1000;

/** The gap put between the last frame before a reconnect and the first after, on 90 kHz. */
const RECONNECT_GAP = 3000;

/**
 * Publishes a remote stream under `app/stream`: connects with the pull client its URL
 * needs, starts the publish at the first media frame (with the configs that came before
 * it, so the first reader gets them all), and reconnects with a doubling back-off when the
 * remote drops. Within the retry window the publish goes on: the new connection's frames
 * continue the timestamps and each track's first one is marked `DISCONTINUITY`. An
 * on-demand source stops once no viewer has read for `closeAfterMs`
 * ({@linkcode StreamHandle.readerCount}, {@linkcode StreamHandle.lastReadMs}); one kept
 * running retries for as long as it lives.
 *
 * @example
 * ```ts ignore
 * import { PullSource } from "@arcly/stream/server";
 * import { pullRtsp } from "@arcly/stream/rtsp";
 *
 * const source = new PullSource({
 *   registry, app: "live", stream: "cam",
 *   url: "rtsp://user:pass@192.168.1.20/stream1",
 *   clientFor: () => pullRtsp,
 *   onDemand: true,
 * });
 * source.status(); // { url: "rtsp://192.168.1.20/stream1", state: "connecting", … }
 * ```
 */
export class PullSource {
  /** Resolves once the source has stopped and its stream (if any) ended. */
  readonly finished: Promise<void>;
  readonly #options: PullSourceOptions;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #stop = new AbortController();
  #status: SourceStatus;
  #handle: StreamHandle | undefined;
  /** Configs of this connection that came before its first media frame. */
  #pendingConfigs: MediaFrame[] = [];
  /** Whether this connection's media flows (its first media frame was published). */
  #flowing = false;
  /** Added to the timestamps of this connection's frames. */
  #offset = 0;
  /** The tracks that got a media frame on this connection. */
  #tracksSeen = new Set<number>();
  /** The largest DTS published, on the stream's timeline. */
  #lastDts = -Infinity;
  /** Whether this connection's frames continue an earlier connection's publish. */
  #resumes = false;
  /** Why this connection was given up on, when the source did it. */
  #refusal: string | undefined;
  /** When the source was lost while its stream stayed published. */
  #lostAtMs: number | undefined;

  /** Start pulling (at once: an on-demand source is made when its first reader comes). */
  constructor(options: PullSourceOptions) {
    this.#options = options;
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? (() => performance.now());
    const shown = typeof options.url === "string" ? shownUrl(options.url) : "";
    this.#status = {
      url: shown,
      onDemand: options.onDemand ?? false,
      state: "connecting",
      connections: 0,
    };
    this.finished = this.#run();
  }

  /** The stream key it publishes. */
  get key(): string {
    return `${this.#options.app}/${this.#options.stream}`;
  }

  /** The stream it publishes now, if it does. */
  get handle(): StreamHandle | undefined {
    return this.#handle;
  }

  /** What it is doing. */
  status(): SourceStatus {
    return { ...this.#status };
  }

  /** Stop: the connection closes and the stream ends. */
  stop(): Promise<void> {
    this.#stop.abort();
    return this.finished;
  }

  async #run(): Promise<void> {
    const o = this.#options;
    const what = `source ${escapeForLog(this.key)}`;
    const retryWindowMs = o.retryWindowMs ?? 10_000;
    const maxBackoffMs = o.maxBackoffMs ?? 10_000;
    const startedAt = this.#clock();
    let backoff = o.backoffMs ?? 500;
    const idle = this.#watchIdle();
    try {
      while (!this.#stop.signal.aborted) {
        const url = await this.#resolve();
        if (this.#stop.signal.aborted) break;
        let published = false;
        if (url === undefined) {
          this.#status.lastError = "the source is gone";
        } else {
          this.#status.url = shownUrl(url);
          this.#status.state = "connecting";
          this.#status.connections++;
          published = await this.#connect(url, what);
        }
        if (this.#stop.signal.aborted) break;
        if (published) backoff = o.backoffMs ?? 500;
        const now = this.#clock();
        if (this.#handle && !this.#handle.closed) {
          this.#lostAtMs ??= now;
          if (now - this.#lostAtMs >= retryWindowMs) {
            this.#logger.warn(`${what}: not back within ${retryWindowMs} ms; the stream ends`);
            this.#endStream("error");
          }
        }
        // On demand, nobody waits for a stream that has ended or never started in time.
        if (o.onDemand && !this.#handle && now - startedAt >= retryWindowMs) break;
        if (o.onDemand && url === undefined) break;
        this.#status.state = "waiting";
        this.#logger.warn(`${what}: ${this.#status.lastError}; again in ${backoff} ms`);
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, maxBackoffMs);
      }
    } finally {
      clearInterval(idle);
      this.#endStream("ended");
      this.#status.state = "stopped";
      this.#logger.info(`${what}: stopped`);
    }
  }

  async #resolve(): Promise<string | undefined> {
    const url = this.#options.url;
    if (typeof url === "string") return url;
    try {
      return await url();
    } catch (error) {
      this.#status.lastError = `looking the source up failed: ${messageOf(error)}`;
      return undefined;
    }
  }

  /** One connection, until it ends; whether it published anything. */
  async #connect(url: string, what: string): Promise<boolean> {
    const o = this.#options;
    let parsed: URL;
    let client: PullClient | undefined;
    try {
      parsed = new URL(url);
      client = await o.clientFor(parsed);
    } catch (error) {
      this.#status.lastError = messageOf(error);
      return false;
    }
    if (!client) {
      this.#status.lastError = `no client for ${parsed.protocol} sources`;
      return false;
    }
    const connection = new AbortController();
    const stop = () => connection.abort();
    this.#stop.signal.addEventListener("abort", stop, { once: true });
    this.#flowing = false;
    this.#refusal = undefined;
    this.#pendingConfigs = [];
    this.#tracksSeen.clear();
    let frames = 0;
    this.#logger.info(`${what}: connecting to ${escapeForLog(shownUrl(url))}`);
    try {
      await client(parsed, {
        signal: connection.signal,
        timeoutMs: o.timeoutMs ?? 10_000,
        logger: this.#logger,
        onFrame: (frame) => {
          if (connection.signal.aborted) return;
          if (this.#take(frame, connection)) frames++;
        },
      });
      this.#status.lastError = this.#refusal ?? "the source ended";
    } catch (error) {
      this.#status.lastError = messageOf(error);
    } finally {
      this.#stop.signal.removeEventListener("abort", stop);
      connection.abort();
    }
    return frames > 0;
  }

  /**
   * Publish one frame of the current connection; whether it was published. Configs wait
   * for the connection's first media frame: the publish starts there with all of them (a
   * reader that joins at once gets every track), and a resumed publish's timestamps go on
   * from there.
   */
  #take(frame: MediaFrame, connection: AbortController): boolean {
    if (this.#handle?.closed) this.#endStream("ended"); // ended meanwhile (the reaper)
    if ((frame.flags & FrameFlags.CONFIG) !== 0 && !this.#flowing) {
      const at = this.#pendingConfigs.findIndex((c) => c.track === frame.track);
      if (at >= 0) this.#pendingConfigs[at] = frame;
      else this.#pendingConfigs.push(frame);
      return false;
    }
    const resumed = this.#handle !== undefined && !this.#flowing;
    if (!this.#handle && !this.#startStream(connection)) return false;
    const handle = this.#handle!;
    if (!this.#flowing) {
      this.#flowing = true;
      this.#resumes = resumed;
      this.#offset = resumed ? this.#lastDts + RECONNECT_GAP - frame.dts : 0;
      for (const config of this.#pendingConfigs) {
        // A resumed publish's configs take the time of the media they lead.
        this.#publish(handle, resumed ? { ...config, pts: frame.pts, dts: frame.dts } : config);
      }
      this.#pendingConfigs = [];
    }
    this.#publish(handle, frame);
    if (this.#status.state !== "live") {
      this.#status.state = "live";
      this.#lostAtMs = undefined;
      this.#logger.info(`source ${escapeForLog(this.key)}: live`);
    }
    return true;
  }

  #startStream(connection: AbortController): boolean {
    const o = this.#options;
    try {
      this.#handle = o.registry.startPublish(o.app, o.stream, {
        protocol: o.protocol ?? "pull",
        peer: this.#status.url,
      });
    } catch (error) {
      if (!(error instanceof PublishError)) throw error;
      this.#refusal = `the stream cannot be published: ${error.code}`;
      connection.abort();
      return false;
    }
    this.#lastDts = -Infinity;
    return true;
  }

  /** Carry the timestamps on across connections, mark each track's restart. */
  #publish(handle: StreamHandle, frame: MediaFrame): void {
    // A resumed publish marks its configs and each track's first media frame.
    const config = (frame.flags & FrameFlags.CONFIG) !== 0;
    const restart = this.#resumes && (config || !this.#tracksSeen.has(frame.track));
    if (!config) this.#tracksSeen.add(frame.track);
    const out = this.#offset === 0 && !restart ? frame : {
      ...frame,
      pts: frame.pts + this.#offset,
      dts: frame.dts + this.#offset,
      flags: restart ? frame.flags | FrameFlags.DISCONTINUITY : frame.flags,
    };
    if (out.dts > this.#lastDts) this.#lastDts = out.dts;
    handle.publish(out);
  }

  #endStream(reason: "ended" | "error"): void {
    const handle = this.#handle;
    this.#handle = undefined;
    this.#pendingConfigs = [];
    if (handle) this.#options.registry.endPublish(handle, reason);
  }

  /** On demand: stop once nobody has read for `closeAfterMs`. */
  #watchIdle(): ReturnType<typeof setInterval> | undefined {
    if (!this.#options.onDemand) return undefined;
    const closeAfterMs = this.#options.closeAfterMs ?? 10_000;
    const timer = setInterval(() => {
      const handle = this.#handle;
      if (!handle || handle.readerCount > 0) return;
      if (this.#clock() - handle.lastReadMs < closeAfterMs) return;
      this.#logger.info(
        `source ${escapeForLog(this.key)}: no reader for ${closeAfterMs} ms; stopping`,
      );
      this.#stop.abort();
    }, Math.min(IDLE_CHECK_MS, closeAfterMs));
    Deno.unrefTimer(timer);
    return timer;
  }

  #sleep(ms: number): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, ms);
    const wake = () => (clearTimeout(timer), resolve());
    this.#stop.signal.addEventListener("abort", wake, { once: true });
    return promise.finally(() => this.#stop.signal.removeEventListener("abort", wake));
  }
}

/** A URL as it may be shown: no user info, no query (tokens, passphrases). */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    return parsed.href;
  } catch {
    return "(not a URL)";
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
