/**
 * UDP port ranges for WebRTC media, as `MIN-MAX` text.
 *
 * @module
 */

/**
 * Read a `--webrtc-ports` value, `MIN-MAX` (inclusive, MIN < MAX).
 *
 * @throws {RangeError} when the text is not such a range of UDP ports.
 * @example
 * ```ts
 * import { parsePortRange } from "@arcly/stream/webrtc";
 *
 * parsePortRange("8189-8289"); // [8189, 8289]
 * ```
 */
export function parsePortRange(text: string): [number, number] {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const min = Number(match?.[1]), max = Number(match?.[2]);
  if (!match || min < 1 || max > 65535 || min >= max) {
    throw new RangeError(`a UDP port range is MIN-MAX with 1 <= MIN < MAX <= 65535, not "${text}"`);
  }
  return [min, max];
}
