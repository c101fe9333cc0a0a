/**
 * The inputs the benchmarks share, made by ffmpeg once and cached in `$TMPDIR/arcly-bench`:
 * a 1080p30 H.264 + AAC FLV per length for packaging and muxing, and the 640x360 live
 * stream the load benchmark publishes.
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
  return await cachedFlv(`in-1080p30-${seconds}s.flv`, args);
}

/** Seconds of the load benchmark's stream; it is published in a loop. */
const LOAD_STREAM_SECONDS = 20;

/**
 * The path of the cached stream `bench/load.ts` publishes in a loop with `-c copy`: 20 s of
 * 640x360 30 fps H.264 at about 530 kbit/s (`ultrafast`, `zerolatency`, 2-second GOPs) + AAC
 * 64 kbit/s, from lavfi testsrc and sine. Published from a file, it costs a stream copy
 * (about 1% of a core) instead of a live encode (12%) on the CPU it shares with the load
 * player.
 *
 * @throws {Error} when ffmpeg fails.
 */
export function loadStreamInput(): Promise<string> {
  const s = LOAD_STREAM_SECONDS;
  return cachedFlv(`load-360p30-${s}s.flv`, [
    ...["-f", "lavfi", "-i", `testsrc=size=640x360:rate=30:duration=${s}`],
    ...["-f", "lavfi", "-i", `sine=frequency=440:sample_rate=44100:duration=${s}`],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"],
    ...["-b:v", "530k", "-maxrate", "530k", "-bufsize", "1060k"],
    ...["-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k"],
  ]);
}

/** `name` in the cache, made by ffmpeg with `args` (its inputs and codecs) when missing. */
async function cachedFlv(name: string, args: string[]): Promise<string> {
  const path = `${BENCH_CACHE_DIR}/${name}`;
  if (await Deno.stat(path).then(() => true, () => false)) return path;
  await Deno.mkdir(BENCH_CACHE_DIR, { recursive: true });
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
