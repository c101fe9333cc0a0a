/**
 * Log lines a peer cannot forge: escaping of peer-supplied text (stream names, URLs,
 * command names, stream IDs) before it enters a log line, and a logger wrapper that keeps
 * every message on one line whatever its call site forgot.
 *
 * @module
 */

import type { Logger } from "./observe.ts";

/**
 * Characters that can break or disguise a log line: C0 and C1 controls and DEL (newlines,
 * NUL, ANSI escape sequences), the Unicode line and paragraph separators, and the
 * bidirectional embedding, override and isolate controls (which reorder what a terminal
 * shows).
 */
const UNSAFE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;
/** The same, and a backslash, so that escaped text reads back unambiguously. */
const UNSAFE_OR_BACKSLASH = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069\\]/gu;
/** Characters a stream name must not contain (controls and line breaks). */
const NOT_IN_NAMES = /[\p{Cc}\u2028\u2029]/u;

const SHORT: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" };

function escapeOne(char: string): string {
  const short = SHORT[char];
  if (short !== undefined) return short;
  const code = char.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * `text` as it may appear in a log line: control characters (newline, NUL, ESC, DEL, C1),
 * line and paragraph separators and bidirectional controls become escapes (`\n`, `\x00`,
 * `\x1b`, `\u2028`), and a backslash is doubled, so the result is one line that shows
 * exactly what the peer sent. Use it on every peer-supplied string a log line carries.
 *
 * @example
 * ```ts
 * import { escapeForLog } from "@arcly/stream";
 *
 * escapeForLog("cam\nINFO publish live/x\x00"); // "cam\\nINFO publish live/x\\x00"
 * ```
 */
export function escapeForLog(text: string): string {
  return text.replace(UNSAFE_OR_BACKSLASH, escapeOne);
}

/**
 * A logger that passes each message to `logger` with every control character, line
 * separator and bidirectional control escaped (backslashes are left alone, so text escaped
 * with {@linkcode escapeForLog} is not escaped twice): whatever a call site forgot to
 * escape, one message stays one line.
 *
 * @example
 * ```ts
 * import { lineSafeLogger } from "@arcly/stream";
 *
 * const lines: string[] = [];
 * const logger = lineSafeLogger({
 *   info: (m) => lines.push(m),
 *   warn: (m) => lines.push(m),
 *   error: (m) => lines.push(m),
 * });
 * logger.warn("bad name a\nb"); // lines: ["bad name a\\nb"]
 * ```
 */
export function lineSafeLogger(logger: Logger): Logger {
  const safe = (message: string) => message.replace(UNSAFE, escapeOne);
  return {
    info: (message) => logger.info(safe(message)),
    warn: (message) => logger.warn(safe(message)),
    error: (message) => logger.error(safe(message)),
  };
}

/**
 * Whether `name` may name an app or a stream: not empty, and without control characters
 * or line breaks (which would let a peer forge log lines and confuse every tool that
 * prints names). `Registry.startPublish` refuses other names.
 *
 * @example
 * ```ts
 * import { isValidName } from "@arcly/stream";
 *
 * isValidName("cam-1"); // true
 * isValidName("cam\n1"); // false
 * ```
 */
export function isValidName(name: string): boolean {
  return name.length > 0 && !NOT_IN_NAMES.test(name);
}
