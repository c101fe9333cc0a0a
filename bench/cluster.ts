/**
 * The cost of one cluster hop: an origin node A and an edge node B (both `serve()` in this
 * process, on one `redis-server`), ffmpeg publishing 640x360 30 fps H.264 + AAC with 1 s GOPs
 * to A over RTMP as `--streams` keys at once (one encode, the tee muxer).
 *
 *   deno run -A bench/cluster.ts [--over srt,rtmp] [--streams 6] [--seconds 20]
 *
 * Per hop protocol (A's advertise URL) it prints:
 * - join time: from spawning `ffmpeg -i rtmp://NODE/live/sN -frames:v 1 -f null -` to its
 *   exit (the first decoded frame), at the origin, at the edge when it has no copy of the
 *   stream yet (cold: the edge pulls from A first) and at the edge once it has one (warm);
 *   and, without a player's own start-up, from `Registry.acquire` to the first frame at a
 *   subscriber in this process (origin, and cold edge: half the keys join the edge cold this
 *   way, half with ffmpeg);
 * - the extra latency of the hop: for each video frame, when it arrives at a subscriber of
 *   B's copy minus when it arrived at a subscriber of A's stream (same process, same clock),
 *   median and 95th percentile over `--seconds`, on a copy made for it (a key no one joined
 *   before), once it has caught up from its join (its first 2 s left out).
 */

import { parseArgs } from "node:util";
import { FrameFlags, type MediaFrame } from "../mod.ts";
import { serve, type Server } from "../server/mod.ts";
import { freeTcpPort, freeUdpPort } from "../tests/_util/ports.ts";
import { startRedis } from "../tests/_util/redis.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    over: { type: "string", default: "srt,rtmp" },
    streams: { type: "string", default: "6" },
    seconds: { type: "string", default: "20" },
  },
});
const OVER = args.values.over.split(",") as ("srt" | "rtmp")[];
const STREAMS = Number(args.values.streams);
const SECONDS = Number(args.values.seconds);

/** A node on free loopback ports, advertising `over`. */
async function node(name: string, redis: string, over: "srt" | "rtmp") {
  const ports = { rtmp: freeTcpPort(), srt: await freeUdpPort() };
  const server = serve({
    quiet: true,
    rtmp: { listen: `127.0.0.1:${ports.rtmp}` },
    srt: { listen: `127.0.0.1:${ports.srt}` },
    http: { listen: "off" },
    rtsp: { listen: "off" },
    cluster: { redis, advertise: `${over}://127.0.0.1:${ports[over]}`, node: name },
  });
  await server.ready;
  return { server, ports };
}

/** ffmpeg publishing `keys` from one encode, for `seconds`. */
function publish(rtmpPort: number, keys: string[], seconds: number): Deno.ChildProcess {
  const outputs = keys.map((key) =>
    `[f=flv:flvflags=no_duration_filesize]rtmp://127.0.0.1:${rtmpPort}/${key}`
  );
  return new Deno.Command("ffmpeg", {
    args: [
      ...["-hide_banner", "-nostdin", "-v", "error", "-re"],
      ...["-f", "lavfi", "-i", `testsrc2=size=640x360:rate=30:duration=${seconds}`],
      ...["-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${seconds}`],
      ...["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "30"],
      ...["-pix_fmt", "yuv420p", "-c:a", "aac", "-map", "0:v", "-map", "1:a"],
      // The tee muxer's FLV outputs need the codec configs as extradata.
      ...["-flags", "+global_header"],
      ...["-f", "tee", outputs.join("|")],
    ],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
}

/** Milliseconds from spawning an ffmpeg player of `url` to its first decoded video frame. */
async function joinMs(url: string): Promise<number> {
  const start = performance.now();
  const out = await new Deno.Command("ffmpeg", {
    args: [
      "-hide_banner",
      "-nostdin",
      "-v",
      "error",
      "-i",
      url,
      "-frames:v",
      "1",
      "-f",
      "null",
      "-",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) throw new Error(`ffmpeg ${url}: ${new TextDecoder().decode(out.stderr)}`);
  return performance.now() - start;
}

/** Milliseconds from asking `server` for `key` to a subscriber's first frame (a keyframe). */
async function firstFrameMs(server: Server, key: string): Promise<number> {
  const start = performance.now();
  const [app, stream] = key.split("/");
  const handle = await server.registry.acquire(app, stream, { timeoutMs: 10_000 });
  if (!handle) throw new Error(`${key} did not start`);
  const frames = handle.subscribe({ replay: true });
  const reader = frames.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${key} ended`);
    if (value.kind === "video" && value.flags & FrameFlags.KEYFRAME) break;
  }
  const elapsed = performance.now() - start;
  await reader.cancel();
  return elapsed;
}

/** When each video frame (by PTS) arrives at a subscriber of `server`'s `key`. */
async function arrivals(
  server: Server,
  key: string,
  signal: AbortSignal,
): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  const [app, stream] = key.split("/");
  const handle = await server.registry.acquire(app, stream, { timeoutMs: 10_000 });
  if (!handle) throw new Error(`${key} is not live`);
  void (async () => {
    const frames = handle.subscribe();
    signal.addEventListener("abort", () => void frames.cancel().catch(() => {}), { once: true });
    for await (const frame of frames as AsyncIterable<MediaFrame>) {
      if (frame.kind === "video") seen.set(frame.pts, performance.now());
    }
  })();
  return seen;
}

const median = (values: number[]) => percentile(values, 0.5);
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}
const ms = (value: number) => `${value.toFixed(0)} ms`;

const redis = await startRedis();
try {
  for (const over of OVER) {
    const a = await node("a", redis.url, over);
    const b = await node("b", redis.url, over);
    const keys = Array.from({ length: STREAMS }, (_, i) => `live/s${i}`);
    const hop = "live/hop";
    const publisher = publish(a.ports.rtmp, [...keys, hop], SECONDS + 10 + STREAMS * 4);
    try {
      const live = () => [...keys, hop].every((key) => a.server.registry.lookup(key));
      for (let i = 0; i < 200 && !live(); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 1500)); // past the first GOP
      const origin: number[] = [], cold: number[] = [], warm: number[] = [];
      const originFirst: number[] = [], coldFirst: number[] = [];
      const url = (ports: { rtmp: number }, key: string) => `rtmp://127.0.0.1:${ports.rtmp}/${key}`;
      for (const [i, key] of keys.entries()) {
        origin.push(await joinMs(url(a.ports, key)));
        originFirst.push(await firstFrameMs(a.server, key));
        if (i % 2 === 0) cold.push(await joinMs(url(b.ports, key)));
        else coldFirst.push(await firstFrameMs(b.server, key));
        warm.push(await joinMs(url(b.ports, key)));
      }
      // The hop: a fresh copy's frames at A and at B (kept alive by this subscriber).
      const stop = new AbortController();
      const atA = await arrivals(a.server, hop, stop.signal);
      const atB = await arrivals(b.server, hop, stop.signal);
      const steady = performance.now() + 2000;
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      stop.abort();
      const delays = [...atB].flatMap(([pts, t]) => {
        const sent = atA.get(pts);
        return sent === undefined || t < steady ? [] : [t - sent];
      });
      console.log(`hop over ${over} (${STREAMS} streams, RTMP players):`);
      console.log(
        `  join at the origin: median ${ms(median(origin))} (${origin.map(ms).join(", ")})`,
      );
      console.log(
        `  join at the edge, cold: median ${ms(median(cold))} (${cold.map(ms).join(", ")})`,
      );
      console.log(
        `  join at the edge, warm: median ${ms(median(warm))} (${warm.map(ms).join(", ")})`,
      );
      const list = (values: number[]) => values.map((v) => `${v.toFixed(1)} ms`).join(", ");
      console.log(
        `  acquire to first frame in process: origin ${list(originFirst)}; edge, cold ${
          list(coldFirst)
        }`,
      );
      console.log(
        `  extra latency of the hop: median ${ms(median(delays))}, p95 ${
          ms(percentile(delays, 0.95))
        } ` +
          `over ${delays.length} video frames (of ${atB.size} at the edge)`,
      );
    } finally {
      try {
        publisher.kill("SIGKILL");
      } catch { /* exited */ }
      await publisher.status;
      await b.server.close();
      await a.server.close();
    }
  }
} finally {
  await redis.stop();
}
