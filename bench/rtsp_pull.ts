/**
 * The RTSP pull client's cost and join time. `cli.ts serve` runs as a child; ffmpeg
 * publishes the 1080p30 6 Mbit/s bench input (`-re`, looped, `-c copy`) over RTMP; this
 * process pulls it over RTSP `--pulls` times at once per transport.
 *
 *   deno run -A bench/rtsp_pull.ts [--pulls 8] [--seconds 10] [--transports tcp,udp]
 *
 * Per transport it prints the median time from the call to the first video keyframe
 * frame (the server replays the current GOP, so this is the client's set-up plus the
 * replay), the frames and megabits received per pull, and this process's CPU time per
 * pulled stream (user + system, as a share of one core).
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { FrameFlags } from "../mod.ts";
import { pullRtsp } from "../ingest/rtsp/mod.ts";
import { startServe } from "../tests/_util/serve.ts";
import { benchInput } from "./_input.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    pulls: { type: "string", default: "8" },
    seconds: { type: "string", default: "10" },
    transports: { type: "string", default: "tcp,udp" },
  },
});
const PULLS = Number(args.values.pulls);
const SECONDS = Number(args.values.seconds);
const TRANSPORTS = args.values.transports.split(",") as ("tcp" | "udp")[];

const input = await benchInput(10);
const server = await startServe(["rtmp", "rtsp"]);
const publisher = new Deno.Command("ffmpeg", {
  args: [
    ...["-hide_banner", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", input],
    ...["-c", "copy", "-f", "flv", `rtmp://127.0.0.1:${server.ports.rtmp}/live/bench`],
  ],
  stdin: "null",
  stdout: "null",
  stderr: "null",
}).spawn();
await new Promise((r) => setTimeout(r, 3000));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  for (const transport of TRANSPORTS) {
    const stop = new AbortController();
    const joins: number[] = [];
    const frames: number[] = [];
    const bytes: number[] = [];
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    const pulls = Array.from({ length: PULLS }, (_, i) => {
      frames[i] = bytes[i] = 0;
      const t0 = performance.now();
      return pullRtsp(new URL(`rtsp://127.0.0.1:${server.ports.rtsp}/live/bench`), {
        transport,
        signal: stop.signal,
        onFrame(frame) {
          frames[i]++;
          bytes[i] += frame.data.length;
          if (
            joins[i] === undefined && frame.kind === "video" && frame.flags & FrameFlags.KEYFRAME
          ) {
            joins[i] = performance.now() - t0;
          }
        },
      });
    });
    setTimeout(() => stop.abort(), SECONDS * 1000);
    const results = await Promise.allSettled(pulls);
    const wall = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const failed = results.filter((r) => r.status === "rejected");
    const cpuShare = (cpu.user + cpu.system) / 1e6 / wall / PULLS;
    console.log(
      `${transport}: ${PULLS} pulls for ${wall.toFixed(1)} s: join (call to first keyframe) ` +
        `median ${median(joins).toFixed(0)} ms, max ${Math.max(...joins).toFixed(0)} ms; ` +
        `${median(frames)} frames and ${(median(bytes) * 8 / 1e6 / wall).toFixed(1)} Mbit/s ` +
        `per pull; CPU ${
          (cpuShare * 100).toFixed(1)
        } % of a core per pull; ${failed.length} failed` +
        (failed.length ? ` (${(failed[0] as PromiseRejectedResult).reason})` : ""),
    );
  }
} finally {
  publisher.kill("SIGKILL");
  await publisher.status;
  await server.stop();
}
