/** Real players for end-to-end tests: ffmpeg reads a URL into a file that must decode. */

import assert from "node:assert/strict";
import { decodeCheck, probePackets, type Procs, tempPath } from "./ffmpeg.ts";

/** ffmpeg reading `url` for `seconds` into an FLV file (copying); resolves with the file. */
export async function recordPlay(
  procs: Procs,
  url: string,
  seconds: number,
  inputArgs: readonly string[] = [],
): Promise<string> {
  const file = await tempPath(`play-${crypto.randomUUID()}.flv`);
  const out = await procs.run("ffmpeg", [
    ...["-v", "warning", ...inputArgs, "-i", url, "-t", String(seconds)],
    ...["-c", "copy", "-f", "flv", "-y", file],
  ], 40_000 + seconds * 1000);
  assert.deepEqual([out.code, out.stderr, out.timedOut], [0, "", false], `reading ${url}`);
  return file;
}

/**
 * `file` holds H.264 and AAC, its video starts on a keyframe, and it decodes with
 * `-xerror` and no warning.
 */
export async function assertPlays(file: string, what: string): Promise<void> {
  const streams = await probePackets(file);
  assert.deepEqual(streams.map((s) => s.codecName).sort(), ["aac", "h264"], what);
  const video = streams.find((s) => s.codecType === "video")!;
  assert.ok(video.packets[0].flags?.includes("K"), `${what}: starts on a keyframe`);
  const check = await decodeCheck(file);
  assert.deepEqual([check.code, check.stderr], [0, ""], what);
}
