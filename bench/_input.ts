/**
 * The input the packaging and muxing benchmarks share: a 1080p30 H.264 + AAC FLV made by
 * ffmpeg once per length and cached in `$TMPDIR/arcly-bench`.
 *
 * @module
 */

/** Where bench inputs are cached: `$TMPDIR/arcly-bench` (`/tmp/arcly-bench` without TMPDIR). */
export const BENCH_CACHE_DIR = `${Deno.env.get("TMPDIR") ?? "/tmp"}/arcly-bench`;

/** Length of the part that is really encoded; longer inputs loop it. */
const ENCODED_SECONDS = 10;

/**
 * The path of a cached FLV of `seconds` seconds: 1080p30 H.264 at 6 Mbit/s (2-second GOPs,
 * 2 B-frames, `ultrafast`) + AAC 128 kbit/s, from lavfi testsrc2 and sine. Up to 10 s is
 * encoded; a longer input loops the 10 s one with `-c copy` (same bitrate, no re-encoding),
 * so even a 600 s input takes seconds to make. A file is written under a temporary name and
 * renamed when complete, so an interrupted run never leaves a truncated input in the cache.
 *
 * @throws {RangeError} when `seconds` is not a positive number.
 * @throws {Error} when ffmpeg fails.
 * @example
 * ```ts
 * import { benchInput } from "./_input.ts";
 *
 * const flv = await benchInput(60);
 * console.log(flv, (await Deno.stat(flv)).size);
 * ```
 */
export async function benchInput(seconds: number): Promise<string> {
  if (!(seconds > 0 && Number.isFinite(seconds))) {
    throw new RangeError(`bench input length must be a positive number of seconds, not ${seconds}`);
  }
  const path = `${BENCH_CACHE_DIR}/in-1080p30-${seconds}s.flv`;
  if (await Deno.stat(path).then(() => true, () => false)) return path;
  await Deno.mkdir(BENCH_CACHE_DIR, { recursive: true });
  const args = seconds <= ENCODED_SECONDS
    ? [
      ...["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", String(seconds)],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-b:v", "6M", "-maxrate", "6M"],
      ...["-bufsize", "12M", "-g", "60", "-bf", "2", "-pix_fmt", "yuv420p"],
      ...["-c:a", "aac", "-b:a", "128k"],
    ]
    : [
      ...["-stream_loop", String(Math.ceil(seconds / ENCODED_SECONDS) - 1)],
      ...["-i", await benchInput(ENCODED_SECONDS), "-t", String(seconds), "-c", "copy"],
    ];
  console.error(`making ${path} ...`);
  const partial = `${path}.${Deno.pid}.partial`;
  const out = await new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-nostdin", "-v", "error", "-y", ...args, "-f", "flv", partial],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(partial).catch(() => {});
    throw new Error(`ffmpeg could not make ${path}: ${new TextDecoder().decode(out.stderr)}`);
  }
  await Deno.rename(partial, path);
  return path;
}
