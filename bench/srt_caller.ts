/**
 * SRT caller hops on loopback: a stream published live (paced by its timestamps) into node
 * A's serveSrt registry is pulled by `pullSrt` (read:) and, in the same run, pushed by an
 * `SrtPublisher` fed from A's subscription (as a push relay does) into node B's serveSrt.
 * For each hop it prints the join time (call → first frame) and the latency of every frame
 * from its publish on A to its arrival (median, p95, max), with what arrived and the CPU
 * the whole process spent.
 *
 *   deno run -A bench/srt_caller.ts [--seconds 8] [--pbkeylen 16]
 *
 * The input is bench/_input.ts's 1080p30 H.264 6 Mbit/s + AAC. A frame's latency includes
 * the MPEG-TS demuxer's wait for the next packet of its track (a frame is complete when the
 * next one starts), so it is about one frame interval above the network's share.
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { FrameFlags, type MediaFrame, Registry } from "../mod.ts";
import { FlvReader } from "../media/flv/mod.ts";
import { pullSrt, serveSrt, SrtPublisher } from "../ingest/srt/mod.ts";
import { benchInput } from "./_input.ts";

const args = parseArgs({
  args: Deno.args,
  options: { seconds: { type: "string", default: "8" }, pbkeylen: { type: "string" } },
});
const SECONDS = Number(args.values.seconds);
const PASSPHRASE = "bench-passphrase-0123";
const secret = args.values.pbkeylen
  ? `&passphrase=${PASSPHRASE}&pbkeylen=${args.values.pbkeylen}`
  : "";

const file = await Deno.open(await benchInput(Math.ceil(SECONDS)));
const frames: MediaFrame[] = [];
await file.readable.pipeThrough(new FlvReader()).pipeTo(
  new WritableStream({ write: (frame) => void frames.push(frame) }),
);

const a = new Registry();
const b = new Registry();
const passphrase = secret ? PASSPHRASE : undefined;
const serverA = await serveSrt({ registry: a, hostname: "127.0.0.1", port: 0, passphrase });
const serverB = await serveSrt({ registry: b, hostname: "127.0.0.1", port: 0, passphrase });
const source = a.startPublish("live", "src", { protocol: "bench" });
/** When each frame was published on A, by track and decode time. */
const publishedAt = new Map<string, number>();
const id = (frame: MediaFrame) => `${frame.kind}/${frame.dts}/${frame.flags & FrameFlags.CONFIG}`;

/** One hop's arrivals. */
class Hop {
  readonly latencies: number[] = [];
  bytes = 0;
  firstAt = NaN;
  readonly startedAt = performance.now();
  arrived(frame: MediaFrame): void {
    const now = performance.now();
    if (Number.isNaN(this.firstAt)) this.firstAt = now;
    this.bytes += frame.data.length;
    const sent = publishedAt.get(id(frame));
    if (sent !== undefined && !(frame.flags & FrameFlags.CONFIG)) this.latencies.push(now - sent);
  }
  line(name: string): string {
    const sorted = this.latencies.toSorted((x, y) => x - y);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return `${name.padEnd(22)} join ${(this.firstAt - this.startedAt).toFixed(1)} ms, ` +
      `${sorted.length} frames, latency median ${at(0.5).toFixed(1)} p95 ${at(0.95).toFixed(1)} ` +
      `max ${sorted.at(-1)!.toFixed(1)} ms, ${(this.bytes * 8 / SECONDS / 1e6).toFixed(2)} Mbit/s`;
  }
}

// Publish the first GOP at once (the replay a joiner gets), then the rest at its own pace.
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
let next = 0;
const publishUpTo = (until: number) => {
  for (; next < frames.length && frames[next].dts <= until; next++) {
    publishedAt.set(id(frames[next]), performance.now());
    source.publish(frames[next]);
  }
};
const t0 = frames[0].dts;
publishUpTo(t0);
const stop = new AbortController();
const pulled = new Hop();
const pull = pullSrt(
  new URL(`srt://127.0.0.1:${serverA.addr.port}?streamid=read:live/src${secret}`),
  { onFrame: (f) => pulled.arrived(f), signal: stop.signal },
);
const pushed = new Hop();
const out = await SrtPublisher.connect(
  `srt://127.0.0.1:${serverB.addr.port}?streamid=publish:live/copy${secret}`,
);
const reader = b.get("live", "copy")!.subscribe({ replay: true }).getReader();
const arrivals = (async () => {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    pushed.arrived(value);
  }
})();
const relay = (async () => {
  for await (const frame of source.subscribe({ replay: true })) await out.write(frame);
})();
const start = performance.now();
while (next < frames.length && performance.now() - start < SECONDS * 1000) {
  publishUpTo(t0 + (performance.now() - start) * 90);
  await new Promise((r) => setTimeout(r, 5));
}
a.endPublish(source, "ended");
await relay;
out.close();
await out.closed;
stop.abort();
await pull;
await arrivals.catch(() => {});
const cpu = process.cpuUsage(cpu0);
const wall = performance.now() - wall0;
console.log(
  `${frames.length} frames in the input, ${SECONDS} s published${secret ? ", encrypted" : ""}`,
);
console.log(pulled.line("pullSrt A → caller"));
console.log(pushed.line("SrtPublisher → B"));
console.log(
  `process CPU ${((cpu.user + cpu.system) / 1000 / wall * 100).toFixed(1)}% of one core ` +
    `(both listeners, both callers, the demuxers and muxer)`,
);
await serverA.close();
await serverB.close();
