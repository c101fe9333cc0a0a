/**
 * HLS pull benchmark: how fast segments become frames (TS through `TsDecoder`, fMP4 through
 * `Fmp4Demuxer`, both by the pull's segment reader), how long `pullHls` takes to deliver
 * the first frame of our own serve's live HLS while ffmpeg publishes RTMP, and (TS) how far
 * its frames come behind the origin's newest one.
 *
 * ```sh
 * deno run -A bench/hls_pull.ts [--seconds 30] [--runs 5]
 * ```
 *
 * The input is the cached 1080p30 H.264 (6 Mbit/s) + AAC FLV of bench/_input.ts, cut by
 * `ffmpeg -c copy -f hls -hls_time 2` into TS and into fMP4 segments once per run of the
 * benchmark; the segments are read into memory before timing, so only parsing is timed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { benchInput } from "./_input.ts";
import { HlsSegmentReader } from "../ingest/http/_hls_segment_reader.ts";
import { pullHls } from "../ingest/http/mod.ts";
import { FrameFlags } from "../mod.ts";
import { serve } from "../server/mod.ts";

const { values } = parseArgs({
  options: { seconds: { type: "string", default: "30" }, runs: { type: "string", default: "5" } },
});
const seconds = Number(values.seconds);
const runs = Number(values.runs);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function segmentsOf(input: string, type: "mpegts" | "fmp4"): Promise<Uint8Array[]> {
  const dir = await Deno.makeTempDir({ prefix: "arcly-bench-hls-pull-" });
  const out = await new Deno.Command("ffmpeg", {
    args: [
      ...["-v", "error", "-i", input, "-c", "copy", "-f", "hls", "-hls_time", "2"],
      ...["-hls_playlist_type", "vod", "-hls_segment_type", type, `${dir}/index.m3u8`],
    ],
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  const text = await Deno.readTextFile(`${dir}/index.m3u8`);
  const names = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  const map = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)?.[1];
  const parts = await Promise.all(
    [...(map ? [map] : []), ...names].map((n) => Deno.readFile(`${dir}/${n}`)),
  );
  await Deno.remove(dir, { recursive: true });
  return parts;
}

const input = await benchInput(seconds);
for (const type of ["mpegts", "fmp4"] as const) {
  const parts = await segmentsOf(input, type);
  const bytes = parts.reduce((n, p) => n + p.length, 0);
  const walls: number[] = [];
  let frames = 0;
  for (let r = 0; r < runs; r++) {
    frames = 0;
    const reader = new HlsSegmentReader(() => frames++);
    const start = performance.now();
    if (type === "fmp4") reader.init("init", parts[0]);
    for (const part of type === "fmp4" ? parts.slice(1) : parts) reader.segment(part);
    walls.push(performance.now() - start);
  }
  const med = median(walls);
  console.log(
    `${type.padEnd(6)} ${(bytes / 1e6).toFixed(1)} MB, ${frames} frames: min ${
      Math.min(...walls).toFixed(1)
    } ms, median ${med.toFixed(1)} ms (${(bytes / 1e3 / med).toFixed(0)} MB/s, ${
      (seconds * 1000 / med).toFixed(0)
    }x real time)`,
  );
}

// Join: from pullHls() to its first frame, against our serve's live HLS (2 s segments).
for (const segmentType of ["ts", "fmp4"] as const) {
  const server = serve({
    rtmp: { listen: "127.0.0.1:0" },
    http: { listen: "127.0.0.1:0" },
    rtsp: { listen: "off" },
    srt: { listen: "off" },
    hls: { segmentType },
  }, { logger: { info() {}, warn() {}, error() {} } });
  await server.ready;
  const publisher = new Deno.Command("ffmpeg", {
    args: [
      ...["-v", "error", "-re", "-i", input, "-c", "copy", "-f", "flv"],
      `rtmp://127.0.0.1:${server.addresses.rtmp!.port}/live/bench`,
    ],
    stdin: "null",
  }).spawn();
  const url = new URL(`http://127.0.0.1:${server.addresses.http!.port}/live/bench/index.m3u8`);
  // Wait until the playlist lists three segments (a viewer joining a running stream).
  for (;;) {
    const media = await fetch(new URL("stream.m3u8", url)).then((r) => r.ok ? r.text() : "");
    if ((media.match(/#EXTINF/g) ?? []).length >= 3) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // The origin's newest frame, to see how far behind it the pulled frames come (TS keeps
  // the timestamps; the fMP4 packager moves them, so only TS has this figure).
  let originPts = NaN;
  const originRead = (async () => {
    for await (const f of server.registry.get("live", "bench")!.subscribe()) {
      if (f.kind === "video") originPts = f.pts;
    }
  })();
  const abort = new AbortController();
  const start = performance.now();
  let first = 0;
  const lags: number[] = [];
  const pulling = pullHls(url, {
    signal: abort.signal,
    onFrame(frame) {
      if (first === 0) first = performance.now() - start;
      if (frame.kind === "video" && !(frame.flags & FrameFlags.CONFIG)) {
        lags.push((originPts - frame.pts) / 90);
      }
    },
  });
  await new Promise((r) => setTimeout(r, 8000));
  abort.abort();
  await pulling;
  const live = lags.slice(-100); // after the start-up burst of the edge segments
  const lag = segmentType === "ts" ? `, then ${median(live).toFixed(0)} ms behind the origin` : "";
  console.log(`join ${segmentType.padEnd(4)} first frame after ${first.toFixed(0)} ms${lag}`);
  publisher.kill("SIGKILL");
  await publisher.status;
  await server.close();
  await originRead;
}
