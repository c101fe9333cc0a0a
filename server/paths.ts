/**
 * Per-stream settings by name or pattern: the `paths` section of the config.
 *
 * @module
 */

import type { PathConfig } from "./config.ts";
import { ConfigError } from "./error.ts";
import { compilePathPattern } from "./access/pattern.ts";

/** The settings of one stream: its path entry over the defaults. */
export interface PathSettings {
  /** The `paths` entry that matched (`undefined`: none did, these are the defaults). */
  readonly pattern?: string;
  /** Whether publishes of it are recorded. */
  readonly record: boolean;
  /** Frames of the current GOP kept for late joiners; `undefined` keeps the app's. */
  readonly gopCache?: number;
  /** The SRT passphrase of its own (`false`: in clear); `undefined` keeps `srt.passphrase`. */
  readonly srtPassphrase?: string | false;
  /** Where the stream is pulled from, when a source is set. */
  readonly source?: SourceSettings;
}

/** A path's pull source: its `source*` settings, with the defaults filled in. */
export interface SourceSettings {
  /** The URL pulled from. */
  readonly url: string;
  /** Started for the first reader, stopped `closeAfterMs` after the last one. */
  readonly onDemand: boolean;
  /** On demand: how long it runs with no reader, in ms. */
  readonly closeAfterMs: number;
  /** How long the stream stays published while the source is lost, in ms. */
  readonly retryWindowMs: number;
  /** RTP transport of an `rtsp://` source. */
  readonly rtspTransport: "tcp" | "udp" | "automatic";
}

/** The path settings that only mean something with a `source`. */
const SOURCE_SETTINGS = [
  "sourceOnDemand",
  "sourceCloseAfterMs",
  "sourceRetryWindowMs",
  "rtspTransport",
] as const;

interface Rule {
  readonly pattern: string;
  readonly test: (key: string) => boolean;
  readonly settings: PathSettings;
}

/**
 * The `paths` of a config, ready to match stream keys (`APP/NAME`). An exact name wins;
 * otherwise the first pattern that matches, in the order written: a glob (`*` matches any
 * characters but `/`, `**` any at all) or, after `~`, a regular expression tested against
 * the whole key (unanchored unless it anchors itself).
 *
 * @example
 * ```ts
 * import { PathRules } from "@arcly/stream/server";
 *
 * const paths = new PathRules({
 *   "live/*": { record: true },
 *   "~^live/test": { record: false },
 *   "live/test1": { gopCache: 0 },
 * }, false);
 * paths.match("live/cam").record; // true: "live/*" comes first
 * paths.match("live/test1").gopCache; // 0: an exact name wins
 * paths.match("other/x").pattern; // undefined: the defaults
 * ```
 */
export class PathRules {
  #exact = new Map<string, PathSettings>();
  #patterns: Rule[] = [];
  #defaults: PathSettings;
  #source: Record<string, PathConfig>;

  /**
   * Read `paths`; `recording` says whether a record directory is set (the default of each
   * path's `record`).
   *
   * @throws {ConfigError} for a pattern that cannot match a stream or a regular expression
   * that does not compile, or `record: true` with no record directory.
   */
  constructor(paths: Record<string, PathConfig>, recording: boolean) {
    this.#defaults = { record: recording };
    this.#source = paths;
    for (const [pattern, config] of Object.entries(paths)) {
      if (config.record && !recording) {
        throw new ConfigError(["paths", pattern, "record"], "needs record.dir to record to");
      }
      const settings: PathSettings = {
        pattern,
        record: config.record ?? recording,
        gopCache: config.gopCache,
        srtPassphrase: config.srtPassphrase,
        source: config.source === undefined ? undefined : {
          url: config.source,
          onDemand: config.sourceOnDemand ?? false,
          closeAfterMs: config.sourceCloseAfterMs ?? 10_000,
          retryWindowMs: config.sourceRetryWindowMs ?? 10_000,
          rtspTransport: config.rtspTransport ?? "automatic",
        },
      };
      if (config.source === undefined) {
        const stray = SOURCE_SETTINGS.find((key) => config[key] !== undefined);
        if (stray) throw new ConfigError(["paths", pattern, stray], "needs a source");
      }
      if (!pattern.startsWith("~") && !pattern.includes("/") && pattern !== "**") {
        throw new ConfigError(
          ["paths", pattern],
          "a path is APP/NAME, a glob such as live/* or **, or ~REGEX",
        );
      } else if (pattern.startsWith("~") || pattern.includes("*")) {
        if (settings.source) {
          throw new ConfigError(
            ["paths", pattern, "source"],
            "a source publishes one stream: give it an exact APP/NAME path",
          );
        }
        // The same patterns as the access rules' permissions.
        let test: (key: string) => boolean;
        try {
          test = compilePathPattern(pattern);
        } catch (error) {
          throw new ConfigError(["paths", pattern], (error as Error).message);
        }
        this.#patterns.push({ pattern, test, settings });
      } else {
        this.#exact.set(pattern, settings);
      }
    }
  }

  /** The paths as given, so that `JSON.stringify` tells two sets of rules apart. */
  toJSON(): Record<string, PathConfig> {
    return this.#source;
  }

  /** The exact paths that have a source, by stream key. */
  sources(): Map<string, SourceSettings> {
    const sources = new Map<string, SourceSettings>();
    for (const [key, settings] of this.#exact) {
      if (settings.source) sources.set(key, settings.source);
    }
    return sources;
  }

  /** The settings for the stream `key` (`APP/NAME`). */
  match(key: string): PathSettings {
    return this.#exact.get(key) ?? this.#patterns.find((rule) => rule.test(key))?.settings ??
      this.#defaults;
  }
}
