/**
 * Test helpers around the installed ffmpeg and ffprobe: make fixtures at test
 * time (cached per process in one temp dir), check that ffmpeg decodes a file
 * cleanly, and read per-stream packet lists with `ffprobe -show_packets`.
 */

import assert from "node:assert/strict";

/** What a finished ffmpeg or ffprobe process printed. */
export interface ToolOutput {
  /** Exit code. */
  code: number;
  /** Standard output as text. */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
}

/** Runs `cmd` with `args` (no stdin) and collects its output. */
export async function run(cmd: string, args: readonly string[]): Promise<ToolOutput> {
  const out = await new Deno.Command(cmd, { args: [...args], stdin: "null" }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** Runs ffmpeg with `-hide_banner -nostdin` prepended. */
export function ffmpeg(args: readonly string[]): Promise<ToolOutput> {
  return run("ffmpeg", ["-hide_banner", "-nostdin", ...args]);
}

/** How a run of {@linkcode Procs.run} ended. */
export interface Finished extends ToolOutput {
  /** Whether the run was killed by its time limit. */
  timedOut: boolean;
}

/** How a child of {@linkcode Procs.spawn} ended. */
export interface Spawned {
  /** Exit code. */
  code: number;
  /** Standard output (empty unless `stdout` was asked for). */
  stdout: Uint8Array;
  /** Standard error as text. */
  stderr: string;
  /** Whether the child was killed by its time limit. */
  timedOut: boolean;
}

/** Options for {@linkcode Procs.spawn}. */
export interface SpawnOptions {
  /** Kill the child after this long. */
  limitMs: number;
  /**
   * Feeds the child's stdin (closed when this resolves; `exited` resolves when the child
   * has exited). Without it stdin is /dev/null.
   */
  feed?: (
    stdin: WritableStreamDefaultWriter<Uint8Array>,
    exited: Promise<unknown>,
  ) => Promise<void>;
  /** Keep stdout (default: discarded). */
  stdout?: boolean;
}

/**
 * The child processes of one test (ffmpeg, ffprobe, srt-live-transmit…), each bounded in
 * time; call `killAll()` when the test ends so that none outlives it.
 *
 * @example
 * ```ts
 * const procs = new Procs();
 * try {
 *   const out = await procs.run("ffmpeg", [...testsrc(), "-f", "null", "-"], 10_000);
 *   console.log(out.code, out.timedOut);
 * } finally {
 *   procs.killAll();
 * }
 * ```
 */
export class Procs {
  #children = new Set<Deno.ChildProcess>();

  /**
   * Runs `cmd` (ffmpeg with `-hide_banner -nostdin`, ffprobe with `-hide_banner`) and kills
   * it after `limitMs`; stdout comes back as text.
   */
  async run(
    cmd: "ffmpeg" | "ffprobe",
    args: readonly string[],
    limitMs: number,
  ): Promise<Finished> {
    const flags = cmd === "ffmpeg" ? ["-hide_banner", "-nostdin"] : ["-hide_banner"];
    const out = await this.spawn(cmd, [...flags, ...args], { limitMs, stdout: true });
    return { ...out, stdout: new TextDecoder().decode(out.stdout) };
  }

  /** Starts `command` as it is and resolves when it exits (or is killed at its limit). */
  spawn(command: string, args: readonly string[], options: SpawnOptions): Promise<Spawned> {
    const child = new Deno.Command(command, {
      args: [...args],
      stdin: options.feed ? "piped" : "null",
      stdout: options.stdout ? "piped" : "null",
      stderr: "piped",
    }).spawn();
    this.#children.add(child);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      kill(child);
    }, options.limitMs);
    if (options.feed) {
      const writer = child.stdin.getWriter();
      void options.feed(writer, child.status).then(() => writer.close()).catch(() => {});
    }
    return child.output().then((out) => ({
      code: out.code,
      stdout: options.stdout ? out.stdout : new Uint8Array(0),
      stderr: new TextDecoder().decode(out.stderr),
      timedOut,
    })).finally(() => {
      clearTimeout(timer);
      this.#children.delete(child);
    });
  }

  /** Kills every process still running. */
  killAll(): void {
    for (const child of this.#children) kill(child);
  }
}

function kill(child: Deno.ChildProcess): void {
  try {
    child.kill("SIGKILL");
  } catch {
    // already exited
  }
}

let tempDir: Promise<string> | undefined;

/** The per-process temp dir holding fixtures; removed when the process unloads. */
export function fixtureDir(): Promise<string> {
  tempDir ??= Deno.makeTempDir({ prefix: "arcly-fixtures-" }).then((dir) => {
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    });
    return dir;
  });
  return tempDir;
}

const fixtures = new Map<string, { key: string; path: Promise<string> }>();

/**
 * Makes `name` in the fixture dir with `ffmpeg -v error -y <args> <path>` and
 * returns its path. The same name and args are made once per process; reusing
 * a name with other args throws.
 *
 * @example
 * ```ts
 * const flv = await makeFixture("av.flv", [...testsrc(), ...sine(), "-c:v", "libx264", "-c:a", "aac"]);
 * ```
 */
export function makeFixture(name: string, args: readonly string[]): Promise<string> {
  const key = JSON.stringify(args);
  const cached = fixtures.get(name);
  if (cached) {
    if (cached.key !== key) throw new Error(`fixture ${name} already made with other arguments`);
    return cached.path;
  }
  const path = (async () => {
    const file = `${await fixtureDir()}/${name}`;
    const res = await ffmpeg(["-v", "error", "-y", ...args, file]);
    if (res.code !== 0) throw new Error(`ffmpeg failed making ${name}:\n${res.stderr}`);
    return file;
  })();
  fixtures.set(name, { key, path });
  return path;
}

/** A path for a test output file in the fixture dir (not created). */
export async function tempPath(name: string): Promise<string> {
  return `${await fixtureDir()}/${name}`;
}

/** Input args for a lavfi `testsrc2` video source. */
export function testsrc(
  { size = "320x240", rate = 25, duration = 2 }: {
    size?: string;
    rate?: number;
    duration?: number;
  } = {},
): string[] {
  return ["-f", "lavfi", "-i", `testsrc2=size=${size}:rate=${rate}:duration=${duration}`];
}

/** Input args for a lavfi `sine` audio source. */
export function sine(
  { sampleRate = 48000, duration = 2, frequency = 440 }: {
    sampleRate?: number;
    duration?: number;
    frequency?: number;
  } = {},
): string[] {
  return [
    "-f",
    "lavfi",
    "-i",
    `sine=frequency=${frequency}:sample_rate=${sampleRate}:duration=${duration}`,
  ];
}

/**
 * Output args for libx264 as most fixtures want it: `veryfast`, yuv420p, `bframes` B-frames
 * and a keyframe every `gop` frames.
 *
 * @example
 * ```ts
 * const flv = await makeFixture("gop50.flv", [...testsrc(), ...x264({ gop: 50 }), "-f", "flv"]);
 * ```
 */
export function x264(
  { gop = 25, bframes = 2, preset = "veryfast" }: {
    gop?: number;
    bframes?: number;
    preset?: string;
  } = {},
): string[] {
  return [
    ...["-c:v", "libx264", "-preset", preset, "-bf", String(bframes), "-g", String(gop)],
    ...["-pix_fmt", "yuv420p"],
  ];
}

/**
 * ffmpeg publishing `seconds` of a live (`-re`) 25 fps test pattern and a sine as H.264 (one
 * keyframe a second, 2 B-frames) + AAC in FLV to `url`, e.g. an RTMP server's.
 */
export function publishLive(
  procs: Procs,
  url: string,
  seconds: number,
  size = "320x240",
): Promise<Finished> {
  return procs.run("ffmpeg", [
    ...["-v", "warning", "-re"],
    ...testsrc({ duration: seconds, rate: 25, size }),
    ...sine({ duration: seconds }),
    ...x264({ gop: 25, bframes: 2 }),
    ...["-c:a", "aac", "-f", "flv", url],
  ], 60_000);
}

/**
 * Decodes `path` fully with `ffmpeg -v warning -xerror -i <path> -f null -` (timed as the input).
 * A clean file gives code 0 and an empty stderr.
 */
export function decodeCheck(path: string, inputArgs: readonly string[] = []): Promise<ToolOutput> {
  // passthrough: a variable frame rate (a browser's camera) is decoded as timed, not resampled;
  // and in the input's time base: in the default one (1 / the guessed frame rate) two pictures
  // closer than a frame (a browser's camera under load) would collide, "non monotonically
  // increasing dts" from the null muxer although the file's timestamps increase.
  return ffmpeg([
    ...["-v", "warning", "-xerror", ...inputArgs, "-i", path],
    ...["-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-"],
  ]);
}

/** One packet as ffprobe reports it, times in the stream's time base. */
export interface ProbePacket {
  /** Presentation time, or undefined when ffprobe reports N/A. */
  pts?: number;
  /** Decode time, or undefined when ffprobe reports N/A. */
  dts?: number;
  /** Duration, when known. */
  duration?: number;
  /** Payload bytes. */
  size: number;
  /** Byte position of the packet in the file, when ffprobe knows it. */
  pos?: number;
  /** The `K` flag. */
  keyframe: boolean;
  /** ffprobe's flag string (e.g. `K_`). */
  flags: string;
}

/** One stream with its packets, in file order. */
export interface ProbeStream {
  /** Stream index in the file. */
  index: number;
  /** `video`, `audio`, ... */
  codecType: string;
  /** ffprobe's codec name (`h264`, `hevc`, `aac`, ...). */
  codecName: string;
  /** The time base as [numerator, denominator]. */
  timeBase: [number, number];
  /** Packets of this stream in file order. */
  packets: ProbePacket[];
  /** Every other field ffprobe reported for the stream (width, sample_rate, profile, ...). */
  info: Record<string, unknown>;
}

/** Runs `ffprobe -show_streams -show_packets -of json` on `path`. */
export async function probePackets(
  path: string,
  inputArgs: readonly string[] = [],
): Promise<ProbeStream[]> {
  const res = await run("ffprobe", [
    "-v",
    "error",
    ...inputArgs,
    "-show_streams",
    "-show_packets",
    "-of",
    "json",
    path,
  ]);
  if (res.code !== 0) throw new Error(`ffprobe failed on ${path}:\n${res.stderr}`);
  // deno-lint-ignore no-explicit-any
  const json = JSON.parse(res.stdout) as { streams?: any[]; packets?: any[] };
  const streams: ProbeStream[] = (json.streams ?? []).map((s) => {
    const [num, den] = String(s.time_base).split("/").map(Number);
    return {
      index: s.index,
      codecType: s.codec_type,
      codecName: s.codec_name,
      timeBase: [num, den],
      packets: [],
      info: s,
    };
  });
  for (const p of json.packets ?? []) {
    const stream = streams.find((s) => s.index === p.stream_index);
    if (!stream) throw new Error(`ffprobe packet for unknown stream ${p.stream_index}`);
    stream.packets.push({
      pts: p.pts === undefined ? undefined : Number(p.pts),
      dts: p.dts === undefined ? undefined : Number(p.dts),
      duration: p.duration === undefined ? undefined : Number(p.duration),
      size: Number(p.size),
      pos: p.pos === undefined ? undefined : Number(p.pos),
      keyframe: String(p.flags ?? "").includes("K"),
      flags: String(p.flags ?? ""),
    });
  }
  return streams;
}

/** Converts `value` in `timeBase` to the 90 kHz clock, rounded to the nearest tick. */
export function to90k(value: number, timeBase: [number, number]): number {
  return Math.round((value * 90000 * timeBase[0]) / timeBase[1]);
}

/**
 * ffmpeg reading `url` for `seconds` into an FLV file (`-c copy`, warnings only); asserts it
 * exits cleanly and resolves with the file.
 */
export async function recordFlv(procs: Procs, url: string, seconds: number): Promise<string> {
  const file = await tempPath(`record-${Math.random().toString(36).slice(2)}.flv`);
  const out = await procs.run("ffmpeg", [
    ...["-v", "warning", "-i", url, "-t", String(seconds), "-c", "copy", "-f", "flv", "-y", file],
  ], 40_000);
  assert.deepEqual([out.code, out.stderr, out.timedOut], [0, "", false], `reading ${url}`);
  return file;
}

/**
 * Asserts `file` has H.264 and AAC, at least `minVideoFrames` video frames, starts on a
 * keyframe and decodes with `-xerror` without a warning.
 */
export async function assertPlaysAv(file: string, what: string, minVideoFrames = 1): Promise<void> {
  const streams = await probePackets(file);
  assert.deepEqual(streams.map((s) => s.codecName).sort(), ["aac", "h264"], what);
  const video = streams.find((s) => s.codecType === "video")!;
  assert.ok(
    video.packets.length >= minVideoFrames,
    `${what}: ${video.packets.length} video frames`,
  );
  assert.ok(video.packets[0].flags?.includes("K"), `${what}: starts on a keyframe`);
  const check = await decodeCheck(file);
  assert.deepEqual([check.code, check.stderr], [0, ""], what);
}
