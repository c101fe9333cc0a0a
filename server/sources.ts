/**
 * The server's pull sources: one {@linkcode PullSource} per stream whose path has a
 * `source`, run from start-up or started by the registry's demand hook when a reader
 * comes, and kept in step with the config on reload.
 *
 * @module
 */

import type { Logger, Registry } from "../mod.ts";
import type { PullClient } from "../ingest/pull.ts";
import type { PathRules, SourceSettings } from "./paths.ts";
import { PullSource, type PullSourceOptions, type SourceStatus } from "./source.ts";

/** What an on-demand source started from code (not from a path) is given. */
export type DemandedSource = Pick<
  PullSourceOptions,
  "url" | "closeAfterMs" | "retryWindowMs" | "protocol" | "timeoutMs"
>;

/** Options for {@linkcode Sources}. */
export interface SourcesOptions {
  /** The pull client for a source URL, and the RTP transport an `rtsp://` one is to use. */
  clientFor: (url: URL, rtspTransport: SourceSettings["rtspTransport"]) => Promise<
    PullClient | undefined
  >;
  /** Where the sources log. */
  logger: Logger;
}

/** One running source, and the settings it was started from (to tell a changed path). */
interface Running {
  readonly source: PullSource;
  readonly settings?: SourceSettings;
}

/**
 * Runs the pull sources of a config's paths in a registry: the kept ones at once, the
 * on-demand ones through {@linkcode Sources.demand} (the registry's `demand` hook), one
 * per stream key.
 */
export class Sources {
  readonly #registry: Registry;
  readonly #options: SourcesOptions;
  readonly #running = new Map<string, Running>();
  #paths: ReadonlyMap<string, SourceSettings> = new Map();
  #closed = false;

  /** Sources for `registry`; nothing runs before {@linkcode Sources.apply}. */
  constructor(registry: Registry, options: SourcesOptions) {
    this.#registry = registry;
    this.#options = options;
  }

  /**
   * Take the sources of `paths`: start the kept ones not running, stop those whose path
   * is gone or changed (a changed kept one starts again with its new settings).
   */
  apply(paths: PathRules): void {
    this.#paths = paths.sources();
    for (const [key, running] of this.#running) {
      const settings = this.#paths.get(key);
      if (!running.settings) continue; // started from code: not the config's
      if (settings && JSON.stringify(settings) === JSON.stringify(running.settings)) continue;
      this.#running.delete(key);
      void running.source.stop();
    }
    for (const [key, settings] of this.#paths) {
      if (!settings.onDemand && !this.#running.has(key)) this.#start(key, settings);
    }
  }

  /**
   * The registry's demand hook: start the on-demand source of `app/stream`'s path, if it
   * has one. True when one is starting (or already runs).
   */
  readonly demand = (app: string, stream: string): boolean => {
    const key = `${app}/${stream}`;
    if (this.#running.has(key)) return true;
    const settings = this.#paths.get(key);
    if (!settings || this.#closed) return false;
    this.#start(key, settings);
    return true;
  };

  /**
   * Start an on-demand source for `key` that no path configures (e.g. a copy of a stream
   * another node of a cluster has); true when one is starting or already runs.
   */
  startOnDemand(key: string, source: DemandedSource): boolean {
    if (this.#running.has(key)) return true;
    if (this.#closed) return false;
    this.#launch(key, { ...source, onDemand: true, rtspTransport: "automatic" });
    return true;
  }

  /** The state of `key`'s source, if one runs. */
  status(key: string): SourceStatus | undefined {
    return this.#running.get(key)?.source.status();
  }

  /** Stop every source (their streams end). */
  async close(): Promise<void> {
    this.#closed = true;
    const running = [...this.#running.values()];
    this.#running.clear();
    await Promise.all(running.map(({ source }) => source.stop()));
  }

  #start(key: string, settings: SourceSettings): void {
    this.#launch(key, {
      url: settings.url,
      onDemand: settings.onDemand,
      closeAfterMs: settings.closeAfterMs,
      retryWindowMs: settings.retryWindowMs,
      rtspTransport: settings.rtspTransport,
    }, settings);
  }

  #launch(
    key: string,
    options: DemandedSource & {
      onDemand: boolean;
      rtspTransport: SourceSettings["rtspTransport"];
    },
    settings?: SourceSettings,
  ): void {
    const slash = key.indexOf("/");
    const { rtspTransport, ...rest } = options;
    const source = new PullSource({
      ...rest,
      registry: this.#registry,
      app: key.slice(0, slash),
      stream: key.slice(slash + 1),
      clientFor: (url) => this.#options.clientFor(url, rtspTransport),
      logger: this.#options.logger,
    });
    const running: Running = { source, settings };
    this.#running.set(key, running);
    void source.finished.finally(() => {
      if (this.#running.get(key) === running) this.#running.delete(key);
    });
  }
}
