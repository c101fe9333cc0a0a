/**
 * Errors of configs that cannot run.
 *
 * @module
 */

/** One thing wrong with a config: where (`path`) and what (`reason`). */
export interface ConfigProblem {
  /** The setting, as a list of keys from the top, e.g. `["rtmp", "listen"]`. */
  readonly path: readonly (string | number)[];
  /** What is wrong with it. */
  readonly reason: string;
}

/**
 * A config that cannot run. `problems` lists everything found wrong (at least one); the
 * message has one line per problem, `KEY: REASON` with the dotted key (e.g.
 * `rtmp.listen: takes PORT, HOST:PORT or off, not "x"`).
 *
 * @example
 * ```ts
 * import { ConfigError, resolveConfig } from "@arcly/stream/server";
 *
 * try {
 *   resolveConfig({ rtmp: { listen: "nope" } });
 * } catch (error) {
 *   if (error instanceof ConfigError) console.log(error.problems[0].path); // ["rtmp", "listen"]
 * }
 * ```
 */
export class ConfigError extends Error {
  /** Everything found wrong. */
  readonly problems: readonly ConfigProblem[];

  /** Make an error for one setting, or for several `problems` (the first is at `path`). */
  constructor(path: readonly (string | number)[], reason: string, more: ConfigProblem[] = []) {
    const problems = [{ path, reason }, ...more];
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/**
 * A problem as one line, `KEY: REASON`, with the dotted key (just the reason at the top).
 *
 * @example
 * ```ts
 * import { formatProblem } from "@arcly/stream/server";
 *
 * formatProblem({ path: ["hls", "segmentType"], reason: "must be one of ts, fmp4" });
 * // "hls.segmentType: must be one of ts, fmp4"
 * ```
 */
export function formatProblem(problem: ConfigProblem): string {
  return problem.path.length ? `${problem.path.join(".")}: ${problem.reason}` : problem.reason;
}
