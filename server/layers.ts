/**
 * Configs in layers (a file, then the environment, then the command line): merged so that
 * a later layer wins key by key, and with errors that name where the bad value came from.
 *
 * @module
 */

import type { ServerConfig } from "./config.ts";
import type { ConfigFile } from "./config_file.ts";
import type { ConfigError } from "./error.ts";

/** One source of settings. */
export interface ConfigLayer {
  /** What it sets. */
  readonly config: ServerConfig;
  /**
   * How an error names the setting at `path` when this layer set it: e.g. `--rtmp`,
   * `ARCLY_RTMP` or `arcly.yml:3:11: rtmp.listen`; `undefined` when this layer did not.
   */
  name(path: readonly (string | number)[]): string | undefined;
}

type Tree = Record<string, unknown>;

const isTree = (value: unknown): value is Tree =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Whether `config` sets `path` or a value above it (a value where a section should be). */
function sets(config: unknown, path: readonly (string | number)[]): boolean {
  let node = config;
  for (const part of path) {
    if (!isTree(node) && !Array.isArray(node)) return true;
    if (!(String(part) in node)) return false;
    node = (node as Tree)[String(part)];
  }
  return node !== undefined;
}

function merge(under: Tree, over: Tree): Tree {
  const out: Tree = { ...under };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    out[key] = isTree(value) && isTree(out[key]) ? merge(out[key] as Tree, value) : value;
  }
  return out;
}

/**
 * Merge `layers`, each over the ones before it: sections merge key by key, any other value
 * (a list too) replaces what is under it. The result names a setting as the topmost layer
 * that set it does.
 *
 * @example Command line over environment over file
 * ```ts
 * import { layerConfigs, type ConfigLayer } from "@arcly/stream/server";
 *
 * const layer = (config: object, name: string): ConfigLayer => ({ config, name: () => name });
 * const merged = layerConfigs([
 *   layer({ rtmp: { listen: 1935 }, srt: { listen: "off" } }, "arcly.yml"),
 *   layer({ rtmp: { listen: 1936 } }, "ARCLY_RTMP"),
 * ]);
 * merged.config; // { rtmp: { listen: 1936 }, srt: { listen: "off" } }
 * merged.name(["rtmp", "listen"]); // "ARCLY_RTMP"
 * ```
 */
export function layerConfigs(layers: readonly ConfigLayer[]): ConfigLayer {
  return {
    config: layers.reduce((under, layer) => merge(under, layer.config as Tree), {} as Tree),
    name(path) {
      for (let i = layers.length - 1; i >= 0; i--) {
        if (sets(layers[i].config, path)) return layers[i].name(path);
      }
      return undefined;
    },
  };
}

/**
 * A config file as a layer: its settings are named `FILE:LINE:COL: KEY`.
 *
 * @example
 * ```ts
 * import { fileLayer, parseConfigFile } from "@arcly/stream/server";
 *
 * const layer = fileLayer(parseConfigFile("rtmp:\n  listen: nope\n", "arcly.yml"));
 * layer.name(["rtmp", "listen"]); // "arcly.yml:2:3: rtmp.listen"
 * ```
 */
export function fileLayer(file: ConfigFile): ConfigLayer {
  return {
    config: file.config,
    name(path) {
      if (!sets(file.config, path)) return undefined;
      const at = file.positionOf(path);
      return `${file.file}${at ? `:${at.line}:${at.col}` : ""}: ${path.join(".")}`;
    },
  };
}

/**
 * The problems of `error` as lines, each naming where its setting came from (`layer`'s
 * names; the dotted key for a default).
 *
 * @example
 * ```ts
 * import { ConfigError, explainConfigError, fileLayer, parseConfigFile } from "@arcly/stream/server";
 *
 * const layer = fileLayer(parseConfigFile("rtmp:\n  listen: nope\n", "arcly.yml"));
 * explainConfigError(new ConfigError(["rtmp", "listen"], "takes PORT"), layer);
 * // ["arcly.yml:2:3: rtmp.listen: takes PORT"]
 * ```
 */
export function explainConfigError(error: ConfigError, layer: ConfigLayer): string[] {
  return error.problems.map(({ path, reason }) => {
    const name = layer.name(path) ?? path.join(".");
    return name ? `${name}: ${reason}` : reason;
  });
}
