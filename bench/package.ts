/**
 * Packaging benchmark: `cli.ts package` next to `ffmpeg -c copy -f hls` on the same input,
 * same run, and the peak memory of `cli.ts package` as the input grows.
 *
 * ```sh
 * deno run -A bench/package.ts [--seconds 60] [--long-seconds 600] [--runs 3]
 * ```
 *
 * The input is a 1080p30 H.264 (6 Mbit/s) + AAC FLV made by ffmpeg once and cached in the
 * temp dir (bench/_input.ts). Wall times are the best of `--runs`; peak RSS is the child's
 * `VmHWM`.
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

/** Run a command, returning wall seconds and peak RSS in MiB (from /proc while it runs). */
async function measure(cmd: string, args: string[]): Promise<{ seconds: number; peakMb: number }> {
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
}

async function best(runs: number, cmd: string, args: () => Promise<string[]>) {
  let result = { seconds: Infinity, peakMb: 0 };
  for (let i = 0; i < runs; i++) {
    const run = await measure(cmd, await args());
    result = {
      seconds: Math.min(result.seconds, run.seconds),
      peakMb: Math.max(result.peakMb, run.peakMb),
    };
  }
  return result;
}

async function freshDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "arcly-bench-out-" });
}

const seconds = Number(values.seconds);
const runs = Number(values.runs);
const flv = await benchInput(seconds);
const size = (await Deno.stat(flv)).size;
console.log(
  `package: ${seconds} s 1080p30 6 Mbit/s H.264 + AAC FLV (${(size / 2 ** 20).toFixed(1)} MiB), ` +
    `best of ${runs}, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
);
const ffmpeg = await best(runs, "ffmpeg", async () => {
  const dir = await freshDir();
  return [
    "-v",
    "error",
    "-i",
    flv,
    "-c",
    "copy",
    "-f",
    "hls",
    "-hls_time",
    "2",
    "-hls_list_size",
    "0",
    `${dir}/index.m3u8`,
  ];
});
console.log(
  `ffmpeg -c copy -f hls:          ${ffmpeg.seconds.toFixed(3)} s, peak RSS ${
    ffmpeg.peakMb.toFixed(0)
  } MiB`,
);
for (const type of ["ts", "fmp4"]) {
  const ours = await best(runs, Deno.execPath(), async () => [
    "run",
    "-A",
    CLI,
    "package",
    flv,
    "--out",
    await freshDir(),
    "--segment-type",
    type,
  ]);
  console.log(
    `cli.ts package --segment-type ${type.padEnd(4)} ${ours.seconds.toFixed(3)} s, ` +
      `peak RSS ${ours.peakMb.toFixed(0)} MiB, wall ratio ours/ffmpeg ${
        (ours.seconds / ffmpeg.seconds).toFixed(2)
      } (${(size / 2 ** 20 / ours.seconds).toFixed(0)} MiB/s)`,
  );
}
const longSeconds = Number(values["long-seconds"]);
const long = await benchInput(longSeconds);
const longSize = (await Deno.stat(long)).size;
const flat = await measure(Deno.execPath(), [
  "run",
  "-A",
  CLI,
  "package",
  long,
  "--out",
  await freshDir(),
]);
console.log(
  `memory: ${seconds} s input peak ${
    (await measure(Deno.execPath(), ["run", "-A", CLI, "package", flv, "--out", await freshDir()]))
      .peakMb.toFixed(0)
  } MiB; ${longSeconds} s input (${(longSize / 2 ** 20).toFixed(0)} MiB) peak ${
    flat.peakMb.toFixed(0)
  } MiB in ${flat.seconds.toFixed(1)} s`,
);
