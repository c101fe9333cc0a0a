/**
 * The pull clients' join time: how long `pullRtmp` and `pullWhep` take from the call to the
 * first keyframe, from a `serve()` on loopback that ffmpeg publishes a live 640x360 25 fps
 * H.264 (1 s GOP, no B-frames) + AAC test pattern to over RTMP (the WHEP side gets the AAC as
 * Opus). Joins happen at random points of the GOP; the server's GOP cache starts each pull on
 * the last keyframe. Then one pull per protocol runs for `--seconds` and the bench prints the
 * process's CPU time per pulled frame (the server's share included: the same process serves,
 * transcodes the WHEP side's audio and pulls).
 *
 *   deno run -A bench/pull_join.ts [--joins 5] [--seconds 5] [--protocols rtmp,whep]
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { FrameFlags, type MediaFrame } from "../mod.ts";
import { pullRtmp } from "../ingest/rtmp/mod.ts";
import { pullWhep } from "../ingest/webrtc/mod.ts";
import type { PullClient } from "../ingest/pull.ts";
import { Procs, sine, testsrc, x264 } from "../tests/_util/ffmpeg.ts";
import { startServer, waitFor } from "../tests/_util/serve.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    joins: { type: "string", default: "5" },
    seconds: { type: "string", default: "5" },
    protocols: { type: "string", default: "rtmp,whep" },
  },
});
const JOINS = Number(args.values.joins);
const SECONDS = Number(args.values.seconds);
const PROTOCOLS = args.values.protocols.split(",");

const server = await startServer(["rtmp", "http"]);
const procs = new Procs();
const publishing = procs.run("ffmpeg", [
  ...["-v", "warning", "-re"],
  ...testsrc({ duration: 600, rate: 25, size: "640x360" }),
  ...sine({ duration: 600 }),
  ...x264({ gop: 25, bframes: 0 }),
  ...["-c:a", "aac", "-f", "flv", `rtmp://127.0.0.1:${server.ports.rtmp}/live/cam`],
], 600_000);
await waitFor(
  "the publish",
  () => server.server.registry.get("live", "cam")?.cachedConfigs().audio,
);

const clients: Record<string, { client: PullClient; url: URL }> = {
  rtmp: { client: pullRtmp, url: new URL(`rtmp://127.0.0.1:${server.ports.rtmp}/live/cam`) },
  whep: { client: pullWhep, url: new URL(`http://127.0.0.1:${server.ports.http}/live/cam/whep`) },
};

const isMedia = (f: MediaFrame) => !(f.flags & FrameFlags.CONFIG);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const name of PROTOCOLS) {
  const { client, url } = clients[name];
  // warm-up (the server's Opus encoder, werift's first peer)
  await pullUntil(client, url, (f) => f.kind === "audio" && isMedia(f));
  const joins: number[] = [];
  for (let i = 0; i < JOINS; i++) {
    await new Promise((r) => setTimeout(r, Math.random() * 1000));
    const t0 = performance.now();
    await pullUntil(
      client,
      url,
      (f) => f.kind === "video" && (f.flags & FrameFlags.KEYFRAME) !== 0,
    );
    joins.push(performance.now() - t0);
  }
  const stop = new AbortController();
  let frames = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const timer = setTimeout(() => stop.abort(), SECONDS * 1000);
  await client(url, { onFrame: () => void frames++, signal: stop.signal });
  clearTimeout(timer);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `${name}: join to first keyframe median ${median(joins).toFixed(0)} ms ` +
      `(min ${Math.min(...joins).toFixed(0)}, max ${Math.max(...joins).toFixed(0)}, n=${JOINS}); ` +
      `${frames} frames in ${(wall / 1000).toFixed(1)} s, process CPU ` +
      `${((cpu.user + cpu.system) / frames).toFixed(0)} µs per pulled frame`,
  );
}

procs.killAll();
await publishing;
await server.stop();

/** Pull until `done(frame)`; the client is aborted then. */
async function pullUntil(client: PullClient, url: URL, done: (f: MediaFrame) => boolean) {
  const stop = new AbortController();
  await client(url, {
    onFrame: (frame) => {
      if (done(frame)) stop.abort();
    },
    signal: stop.signal,
  });
}
