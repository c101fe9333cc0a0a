/**
 * Path patterns of access rules, matched against `APP/NAME`:
 *
 * - a glob: `*` matches any characters but `/`, `**` any characters; everything else is
 *   literal (`live/*` is every stream of `live`);
 * - `~REGEX`: a JavaScript regular expression tested against the path, unanchored unless
 *   it anchors itself (`~^live/cam[0-9]+$`), as MediaMTX reads its `~` paths and as the
 *   server's `paths` section does;
 * - `""` or `"**"`: every path.
 *
 * @module
 */

/** A compiled path pattern. */
export type PathMatcher = (path: string) => boolean;

/**
 * Compile a path pattern.
 *
 * @throws {SyntaxError} for a `~` pattern that is not a valid regular expression.
 *
 * @example
 * ```ts
 * import { compilePathPattern } from "@arcly/stream/access";
 *
 * compilePathPattern("live/*")("live/cam"); // true
 * compilePathPattern("live/*")("other/cam"); // false
 * compilePathPattern("~^live/cam[0-9]+$")("live/cam12"); // true
 * compilePathPattern("~cam")("live/cam"); // true: unanchored
 * ```
 */
export function compilePathPattern(pattern: string): PathMatcher {
  if (pattern === "" || pattern === "**") return () => true;
  if (pattern.startsWith("~")) {
    let re: RegExp;
    try {
      re = new RegExp(pattern.slice(1), "u");
    } catch (error) {
      throw new SyntaxError(
        `path pattern ${JSON.stringify(pattern)}: ${(error as Error).message}`,
      );
    }
    return (path) => re.test(path);
  }
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*" && pattern[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (c === "*") source += "[^/]*";
    else source += c.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  const re = new RegExp(`^${source}$`, "su");
  return (path) => re.test(path);
}
