/**
 * Config files: YAML (JSON is YAML too) in the shape of {@linkcode ServerConfig}, read with
 * errors that name the file, line, column and key, and watched for changes.
 *
 * @module
 */

import { isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { ServerConfig } from "./config.ts";
import { type ConfigProblem, formatProblem } from "./error.ts";

/** Where a config file sets something: 1-based line and column. */
export interface FilePosition {
  /** Line, from 1. */
  readonly line: number;
  /** Column, from 1. */
  readonly col: number;
}

/**
 * A config file that cannot be used: its problems with the place in the file of each, one
 * line per problem as `FILE:LINE:COL: KEY: REASON`.
 */
export class ConfigFileError extends Error {
  /** The file. */
  readonly file: string;
  /** What is wrong, each with where it is (when the file says it). */
  readonly problems: readonly (ConfigProblem & { readonly position?: FilePosition })[];

  /** Make an error for `problems` in `file`. */
  constructor(file: string, problems: (ConfigProblem & { position?: FilePosition })[]) {
    super(
      problems.map((problem) => {
        const where = problem.position ? `:${problem.position.line}:${problem.position.col}` : "";
        return `${file}${where}: ${formatProblem(problem)}`;
      }).join("\n"),
    );
    this.name = "ConfigFileError";
    this.file = file;
    this.problems = problems;
  }
}

/**
 * A parsed config file: the config it holds and a way to find where it sets a key.
 */
export interface ConfigFile {
  /** The file's name, as given. */
  readonly file: string;
  /** What it configures (not yet checked: {@linkcode resolveConfig} does that). */
  readonly config: ServerConfig;
  /** Where the file sets the setting at `path` (or its closest enclosing one). */
  positionOf(path: readonly (string | number)[]): FilePosition | undefined;
}

/**
 * Parse the text of a config file. An empty file is an empty config, and a key with no
 * value (`webrtc:` with only comments under it) is as if it were not there.
 *
 * @throws {ConfigFileError} for YAML that does not parse (with its line and column), a
 * repeated key, or a document that is not a mapping.
 * @example
 * ```ts
 * import { parseConfigFile } from "@arcly/stream/server";
 *
 * const { config, positionOf } = parseConfigFile("rtmp:\n  listen: 1936\n", "arcly.yml");
 * config.rtmp?.listen; // 1936
 * positionOf(["rtmp", "listen"]); // { line: 2, col: 3 }
 * ```
 */
export function parseConfigFile(text: string, file: string): ConfigFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) =>
    offset === undefined ? undefined : lineCounter.linePos(offset);
  if (doc.errors.length) {
    throw new ConfigFileError(
      file,
      doc.errors.map((error) => ({
        path: [],
        reason: error.message.split("\n")[0],
        position: at(error.pos[0]),
      })),
    );
  }
  const config = withoutNulls(doc.toJS()) ?? {};
  if (typeof config !== "object" || Array.isArray(config)) {
    throw new ConfigFileError(file, [{
      path: [],
      reason: "a config file holds a mapping of settings (e.g. rtmp:, paths:)",
      position: at(doc.contents?.range?.[0]),
    }]);
  }
  return {
    file,
    config: config as ServerConfig,
    positionOf(path) {
      let node: unknown = doc.contents;
      let found: Node | undefined = doc.contents ?? undefined;
      for (const part of path) {
        if (isMap(node)) {
          const pair = node.items.find((item) =>
            String(
              (item.key as Node & { value?: unknown })
                ?.toJSON?.() ?? item.key,
            ) === String(part)
          );
          if (!pair) break;
          found = (pair.key as Node) ?? found;
          node = pair.value;
        } else if (isSeq(node)) {
          node = node.items[Number(part)];
          if (!node) break;
          found = node as Node;
        } else {
          break;
        }
      }
      return at(found?.range?.[0]);
    },
  };
}

/** `value` without the keys that hold nothing (`key:` with no value, or `null`), all the way down. */
function withoutNulls(value: unknown): unknown {
  if (value === null) return undefined;
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== "object") return value;
  const entries = Object.entries(value as Record<string, unknown>)
    .map(([key, inner]) => [key, withoutNulls(inner)])
    .filter(([, inner]) => inner !== undefined);
  return Object.fromEntries(entries);
}

/**
 * Read and parse a config file.
 *
 * @throws {ConfigFileError} when it cannot be read or parsed.
 * @example
 * ```ts
 * import { readConfigFile } from "@arcly/stream/server";
 *
 * const { config } = await readConfigFile("arcly.yml");
 * ```
 */
export async function readConfigFile(file: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new ConfigFileError(file, [{
      path: [],
      reason: `cannot read: ${(error as Error).message}`,
    }]);
  }
  return parseConfigFile(text, file);
}

/**
 * Call `onChange` when `file` changes (written in place, or replaced as editors do), at
 * most once per `debounceMs` (default 200) of quiet. Returns a function that stops watching.
 *
 * @example
 * ```ts
 * import { watchConfigFile } from "@arcly/stream/server";
 *
 * const stop = watchConfigFile("arcly.yml", () => console.log("arcly.yml changed"));
 * stop();
 * ```
 */
export function watchConfigFile(
  file: string,
  onChange: () => void,
  debounceMs = 200,
): () => void {
  const path = Deno.realPathSync(file);
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const name = path.slice(path.lastIndexOf("/") + 1);
  // The directory, not the file: an editor that saves by renaming a new file over the old
  // one would leave a watch on the file itself watching nothing.
  const watcher = Deno.watchFs(dir, { recursive: false });
  let timer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    for await (const event of watcher) {
      if (event.kind === "access") continue;
      if (!event.paths.some((p) => p.slice(p.lastIndexOf("/") + 1) === name)) continue;
      clearTimeout(timer);
      timer = setTimeout(onChange, debounceMs);
    }
  })().catch(() => {}); // the watcher was closed
  return () => {
    clearTimeout(timer);
    watcher.close();
  };
}
