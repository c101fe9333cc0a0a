/**
 * MPEG-TS benchmark: FLV → FlvReader → TsMuxer → file next to
 * `ffmpeg -i in.flv -c copy -f mpegts out.ts`, same input, same run; the
 * muxer once with one chunk (one file write) per frame, once with 256 KiB
 * chunks (ffmpeg writes through a 32 KiB buffer). Then the demuxer: out.ts →
 * TsDemuxer next to `ffmpeg -i out.ts -c copy -f null -`.
 *
 * ```sh
 * deno run -A bench/mux.ts [--seconds 60] [--runs 3] [--input some.flv]
 * ```
 *
 * The input is a 1080p30 6 Mbit/s H.264 + AAC FLV made by ffmpeg once and
 * cached in `$TMPDIR/arcly-bench` (bench/_input.ts, shared with
 * bench/package.ts). Wall times are the best of `--runs`. Our peak RSS is
 * this process's (`VmHWM`, and the highest `Deno.memoryUsage().rss` sampled
 * while running); ffmpeg's comes from `/usr/bin/time`. Output packet counts
 * are checked with ffprobe.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { FlvReader } from "../media/flv/mod.ts";
import { TsDemuxer, TsMuxer } from "../media/ts/mod.ts";
import { benchInput } from "./_input.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    runs: { type: "string", default: "3" },
    input: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const outDir = await Deno.makeTempDir({ prefix: "arcly-bench-mux-" });
const MiB = 2 ** 20;

async function command(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} failed: ${text.decode(out.stderr).slice(-500)}`);
  return text.decode(out.stdout) + text.decode(out.stderr);
}

/** Packets per stream, as ffprobe counts them (TS streams are listed twice: once per program). */
async function packetCounts(path: string): Promise<string> {
  return (await command("ffprobe", [
    ...["-v", "error", "-count_packets", "-show_entries", "stream=codec_type,nb_read_packets"],
    ...["-of", "csv=p=0", path],
  ])).trim().split("\n").filter((l, i, all) => l && all.indexOf(l) === i).sort().join(" ");
}

interface Run {
  seconds: number;
  peakMiB: number;
}

/** Runs `work` `runs` times in this process: best wall time, highest sampled RSS. */
async function inProcess(work: () => Promise<void>): Promise<Run> {
  let best = Infinity;
  let peak = 0;
  for (let i = 0; i < runs; i++) {
    const timer = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 5);
    const start = performance.now();
    await work();
    best = Math.min(best, (performance.now() - start) / 1000);
    clearInterval(timer);
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }
  return { seconds: best, peakMiB: peak / MiB };
}

/** Runs ffmpeg `runs` times under /usr/bin/time: best wall time, highest max RSS. */
async function ffmpeg(args: string[]): Promise<Run> {
  let best = Infinity;
  let peak = 0;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const out = await command("/usr/bin/time", ["-f", "maxrss=%M", "ffmpeg", ...args]);
    best = Math.min(best, (performance.now() - start) / 1000);
    peak = Math.max(peak, Number(/maxrss=(\d+)/.exec(out)?.[1] ?? 0) * 1024);
  }
  return { seconds: best, peakMiB: peak / MiB };
}

function selfPeakMiB(): number {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function line(name: string, run: Run, size: number, ref?: Run): string {
  const ratio = ref ? `, ours/ffmpeg wall ${(run.seconds / ref.seconds).toFixed(2)}` : "";
  return `${name.padEnd(50)} ${run.seconds.toFixed(3)} s  ${
    (size / MiB / run.seconds).toFixed(0).padStart(4)
  } MiB/s  peak RSS ${run.peakMiB.toFixed(0)} MiB${ratio}`;
}

const flv = values.input ?? await benchInput(seconds);
const size = (await Deno.stat(flv)).size;
console.log(
  `mux: ${values.input ?? `${seconds} s 1080p30 6 Mbit/s H.264 + AAC FLV`} (${
    (size / MiB).toFixed(1)
  } MiB), ` +
    `best of ${runs}, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
);

const theirsTs = `${outDir}/ffmpeg.ts`;
const theirMux = await ffmpeg([
  "-v",
  "error",
  "-y",
  "-i",
  flv,
  "-c",
  "copy",
  "-f",
  "mpegts",
  theirsTs,
]);
console.log(line("ffmpeg -c copy -f mpegts", theirMux, size));

const oursTs = `${outDir}/ours.ts`;
for (const minChunkSize of [0, 256 * 1024]) {
  const ourMux = await inProcess(async () => {
    const src = await Deno.open(flv);
    const dst = await Deno.create(oursTs);
    await src.readable.pipeThrough(new FlvReader()).pipeThrough(new TsMuxer({ minChunkSize }))
      .pipeTo(dst.writable);
  });
  const name = minChunkSize
    ? `→ TsMuxer(${minChunkSize / 1024} KiB chunks) → file`
    : "→ TsMuxer → file";
  console.log(line(`FlvReader ${name}`, ourMux, size, theirMux));
}

const tsSize = (await Deno.stat(oursTs)).size;
const theirDemux = await ffmpeg(["-v", "error", "-i", oursTs, "-c", "copy", "-f", "null", "-"]);
console.log(line("ffmpeg -i out.ts -c copy -f null", theirDemux, tsSize));
let frames = 0;
const ourDemux = await inProcess(async () => {
  const src = await Deno.open(oursTs);
  frames = 0;
  await src.readable.pipeThrough(new TsDemuxer()).pipeTo(
    new WritableStream({ write: () => void frames++ }),
  );
});
console.log(line("file → TsDemuxer", ourDemux, tsSize, theirDemux));

console.log(`this process's VmHWM: ${selfPeakMiB().toFixed(0)} MiB`);
const [inCount, ourCount, theirCount] = await Promise.all(
  [flv, oursTs, theirsTs].map(packetCounts),
);
console.log(
  `ffprobe packets (type,count): input ${inCount} | ours ${ourCount} | ffmpeg ${theirCount}; ` +
    `TsDemuxer frames ${frames}; sizes: ours ${(tsSize / MiB).toFixed(1)} MiB, ffmpeg ${
      ((await Deno.stat(theirsTs)).size / MiB).toFixed(1)
    } MiB`,
);
await Deno.remove(outDir, { recursive: true });
