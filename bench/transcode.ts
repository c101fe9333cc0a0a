/**
 * Audio transcoding cost: AudioTranscoder (ffmpeg's codecs in WebAssembly, in a worker)
 * against the native ffmpeg CLI on the same input, AAC → Opus and Opus → AAC.
 *
 *   deno run -A bench/transcode.ts [--seconds 20]
 *
 * For each direction it prints:
 * - flat out: the whole input written at once; media seconds per wall second, for the
 *   transcoder and for `ffmpeg -i IN -c:a CODEC -f null -` (native, same codec);
 * - live: the input written at its own pace; the CPU the process spent per second of
 *   media (worker threads included: that is one transcoded stream's share of a core) and
 *   the latency each output frame adds (its emission after the input frame of its time).
 */

import process from "node:process";
import { parseArgs } from "node:util";
import type { MediaFrame } from "../mod.ts";
import { FrameFlags } from "../mod.ts";
import { FlvDecoder } from "../media/flv/mod.ts";
import { TsDecoder } from "../media/ts/mod.ts";
import { AudioTranscoder, type TranscodeTarget } from "../media/transcode/mod.ts";

const args = parseArgs({
  args: Deno.args,
  options: { seconds: { type: "string", default: "20" } },
});
const SECONDS = Number(args.values.seconds);
const dir = await Deno.makeTempDir({ prefix: "arcly-bench-transcode-" });

async function ffmpeg(argv: string[]): Promise<number> {
  const started = performance.now();
  const out = await new Deno.Command("ffmpeg", {
    args: ["-hide_banner", "-nostdin", "-v", "error", ...argv],
    stdout: "null",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return (performance.now() - started) / 1000;
}

const source = `sine=frequency=440:sample_rate=48000:duration=${SECONDS}`;
const aacFile = `${dir}/in.flv`;
const opusFile = `${dir}/in.ts`;
await ffmpeg(["-f", "lavfi", "-i", source, "-ac", "2", "-c:a", "aac", "-f", "flv", aacFile]);
await ffmpeg([
  "-f",
  "lavfi",
  "-i",
  source,
  "-ac",
  "2",
  "-c:a",
  "libopus",
  "-f",
  "mpegts",
  opusFile,
]);

function framesOf(codec: "aac" | "opus"): MediaFrame[] {
  const frames: MediaFrame[] = [];
  const push = (f: MediaFrame) => void (f.kind === "audio" && frames.push(f));
  if (codec === "aac") {
    const decoder = new FlvDecoder();
    decoder.decode(Deno.readFileSync(aacFile), push);
    decoder.flush();
  } else {
    const decoder = new TsDecoder();
    decoder.decode(Deno.readFileSync(opusFile), push);
    decoder.flush(push);
  }
  return frames;
}

/** Runs `frames` through a transcoder; `paced` writes them at their own timing. */
async function run(frames: MediaFrame[], to: TranscodeTarget, paced: boolean) {
  const transcoder = new AudioTranscoder({ to });
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const inputTimes = frames.filter((f) => !(f.flags & FrameFlags.CONFIG)).map((f) => f.pts);
  const reading = (async () => {
    for await (const frame of transcoder.readable) {
      if (frame.flags & FrameFlags.CONFIG || !paced) continue;
      // the input frame that holds this output frame's start
      let i = inputTimes.findLastIndex((pts) => pts <= frame.pts);
      if (i < 0) i = 0;
      const at = sentAt.get(inputTimes[i]);
      if (at !== undefined) latencies.push(performance.now() - at);
    }
  })();
  const writer = transcoder.writable.getWriter();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const first = frames[0].pts;
  for (const frame of frames) {
    if (paced) {
      const wait = started + (frame.pts - first) / 90 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    sentAt.set(frame.pts, performance.now());
    await writer.write(frame);
  }
  await writer.close();
  await reading;
  const wall = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { wall, cpuMs: (used.user + used.system) / 1000, latencies, stats: transcoder.stats };
}

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
};

console.log(
  `${SECONDS} s of 48 kHz stereo sine; machine: ${Deno.build.os} ${navigator.hardwareConcurrency} cores`,
);
console.log(
  "direction   | flat out: ours x realtime | ffmpeg native x realtime | ours/native | live: CPU ms per media s | core share | latency p50 / p95 ms",
);
for (
  const [from, to, native] of [["aac", "opus", "opus -strict -2"], ["opus", "aac", "aac"]] as const
) {
  const frames = framesOf(from);
  const flat = await run(frames, to, false);
  const nativeSeconds = await ffmpeg([
    ...(from === "opus" ? ["-c:a", "opus"] : []),
    "-i",
    from === "aac" ? aacFile : opusFile,
    "-c:a",
    ...native.split(" "),
    "-f",
    "null",
    "-",
  ]);
  const live = await run(frames, to, true);
  const ours = SECONDS / flat.wall;
  const theirs = SECONDS / nativeSeconds;
  console.log(
    `${from} → ${to}`.padEnd(11) +
      ` | ${ours.toFixed(1).padStart(25)} | ${theirs.toFixed(1).padStart(24)} | ${
        (ours / theirs).toFixed(2).padStart(11)
      } | ${(live.cpuMs / SECONDS).toFixed(1).padStart(24)} | ${
        (live.cpuMs / SECONDS / 10).toFixed(1).padStart(9)
      }% | ${pct(live.latencies, 0.5).toFixed(0)} / ${pct(live.latencies, 0.95).toFixed(0)}`,
  );
}
await Deno.remove(dir, { recursive: true });
