/**
 * Packaging benchmark: `cli.ts package` next to `ffmpeg -c copy -f hls` on the same input,
 * same run, and the peak memory of `cli.ts package` as the input grows.
 *
 * ```sh
 * deno run -A bench/package.ts [--seconds 60] [--long-seconds 600] [--runs 3]
 * ```
 *
 * The input is a 1080p30 H.264 (6 Mbit/s) + AAC FLV made by ffmpeg once and cached in the
 * temp dir (bench/_input.ts). Every tool does the same work: the same input, 2-second
 * segments, a VOD playlist, output written to a fresh directory on disk. The tools take turns
 * (each round starts with a different one) and every output is deleted after its run, so no
 * tool inherits another's dirty pages or a fuller disk. Wall times are reported as the min and
 * median of `--runs`; peak RSS is the child's `VmHWM`, the highest seen.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchInput } from "./_input.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    "long-seconds": { type: "string", default: "600" },
    runs: { type: "string", default: "3" },
  },
});
const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** One run: wall seconds and peak RSS in MiB. */
interface Run {
  seconds: number;
  peakMb: number;
}

/** A command packaging `input` into `dir`. */
interface Tool {
  label: string;
  command(input: string, dir: string): [string, string[]];
}

const ffmpeg: Tool = {
  label: "ffmpeg -c copy -f hls",
  command: (input, dir) => [
    "ffmpeg",
    ["-v", "error", "-i", input, "-c", "copy", "-f", "hls", "-hls_time", "2"]
      .concat(["-hls_list_size", "0", `${dir}/index.m3u8`]),
  ],
};

function ours(type: "ts" | "fmp4"): Tool {
  return {
    label: `cli.ts package --segment-type ${type}`,
    command: (input, dir) => [
      Deno.execPath(),
      ["run", "-A", CLI, "package", input, "--out", dir, "--segment-type", type],
    ],
  };
}

/** Runs `tool` on `input` into a fresh directory, deleted afterwards; wall time and peak RSS. */
async function measure(tool: Tool, input: string): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "arcly-bench-out-" });
  try {
    const [cmd, args] = tool.command(input, dir);
    const start = performance.now();
    const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
    let peakKb = 0;
    const poll = setInterval(() => {
      try {
        const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
        peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0));
      } catch { /* exited */ }
    }, 20);
    const out = await child.output();
    clearInterval(poll);
    const seconds = (performance.now() - start) / 1000;
    if (!out.success) {
      throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr).slice(-500)}`);
    }
    return { seconds, peakMb: peakKb / 1024 };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const seconds = Number(values.seconds);
const runs = Number(values.runs);
const flv = await benchInput(seconds);
const size = (await Deno.stat(flv)).size;
console.log(
  `package: ${seconds} s 1080p30 6 Mbit/s H.264 + AAC FLV (${(size / 2 ** 20).toFixed(1)} MiB), ` +
    `${runs} runs each, taking turns, Deno ${Deno.version.deno}, ` +
    `${navigator.hardwareConcurrency} cores`,
);
const tools = [ffmpeg, ours("ts"), ours("fmp4")];
const results = tools.map((): Run[] => []);
for (let round = 0; round < runs; round++) {
  for (let i = 0; i < tools.length; i++) {
    const t = (round + i) % tools.length;
    results[t].push(await measure(tools[t], flv));
  }
}
const [base] = results.map((r) => r.map((x) => x.seconds));
for (let t = 0; t < tools.length; t++) {
  const walls = results[t].map((r) => r.seconds);
  const [min, med] = [Math.min(...walls), median(walls)];
  const peak = Math.max(...results[t].map((r) => r.peakMb));
  const ratio = t === 0
    ? ""
    : `, ours/ffmpeg min ${(min / Math.min(...base)).toFixed(2)} median ${
      (med / median(base)).toFixed(2)
    }`;
  console.log(
    `${tools[t].label.padEnd(34)} min ${min.toFixed(3)} s, median ${med.toFixed(3)} s, ` +
      `peak RSS ${peak.toFixed(0)} MiB${ratio}`,
  );
}
const longSeconds = Number(values["long-seconds"]);
const long = await benchInput(longSeconds);
const longSize = (await Deno.stat(long)).size;
const short = await measure(ours("ts"), flv);
const flat = await measure(ours("ts"), long);
console.log(
  `memory: ${seconds} s input peak ${short.peakMb.toFixed(0)} MiB; ${longSeconds} s input ` +
    `(${(longSize / 2 ** 20).toFixed(0)} MiB) peak ${flat.peakMb.toFixed(0)} MiB in ` +
    `${flat.seconds.toFixed(1)} s`,
);
