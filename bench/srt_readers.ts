/**
 * SRT egress cost without the network: N listener-side reader connections of one stream in
 * this process, their packets counted instead of sent and acknowledged every 10 ms as libsrt
 * does, fed a live synthetic publish (H.264 at 30 fps with a 2 s GOP, about 600 kbit/s, and
 * AAC) in real time. It prints the process's CPU per second of stream, per reader, for this
 * checkout and, with `--before DIR`, for the checkout in DIR (e.g. a worktree of `main`),
 * both in one run.
 *
 * ```sh
 * deno run -A bench/srt_readers.ts [--readers 100,500,1000] [--seconds 4] [--before DIR]
 * ```
 *
 * What it leaves out is the UDP socket (sends and receives, which bench/load.ts
 * `--protocols srt` includes): the figures are the connection's own work, muxing and
 * pacing included. Figures are for comparing checkouts within one run.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { FrameFlags, type MediaFrame, type StreamHandle } from "../mod.ts";
import { buildAvcConfig } from "../media/codec/mod.ts";
import { ackPacket } from "../ingest/srt/packet.ts";

const { values } = parseArgs({
  options: {
    readers: { type: "string", default: "100,500,1000" },
    seconds: { type: "string", default: "4" },
    before: { type: "string" },
  },
});
const STEPS = values.readers.split(",").map(Number);
const SECONDS = Number(values.seconds);
const WARMUP_MS = 1000;
const ROOT = new URL("..", import.meta.url).href;
const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);

/** What a checkout's `_connection.ts` offers, as far as this bench uses it. */
interface Connection {
  handlePacket(packet: Uint8Array, nowMs: number): void;
  tick(nowMs: number): void;
  close(why: string): void;
}
type ConnectionClass = new (
  params: Record<string, unknown>,
  settings: Record<string, unknown>,
  transmit: (packet: Uint8Array) => void,
  onClosed: () => void,
) => Connection;

/** One length-prefixed NAL unit of `size` bytes. */
function nal(type: number, size: number): Uint8Array {
  const out = new Uint8Array(size + 4).fill(0x5a, 5);
  new DataView(out.buffer).setUint32(0, size);
  out[4] = type;
  return out;
}

function frame(kind: "video" | "audio", ms: number, flags: number, data: Uint8Array): MediaFrame {
  const video = kind === "video";
  const dts = Math.round(ms * 90);
  return {
    track: video ? 0 : 1,
    kind,
    codec: video ? "h264" : "aac",
    pts: dts,
    dts,
    flags,
    data,
  };
}

/** Publish into `handle` in real time until `untilMs`: video every 33 ms, audio every 23 ms. */
async function publish(handle: StreamHandle, untilMs: number): Promise<void> {
  handle.publish(frame("video", 0, FrameFlags.CONFIG, buildAvcConfig({ sps: [SPS], pps: [PPS] })));
  handle.publish(frame("audio", 0, FrameFlags.CONFIG, new Uint8Array([0x12, 0x10])));
  const startMs = performance.now();
  let video = 0;
  let audio = 0;
  while (performance.now() < untilMs) {
    const now = performance.now() - startMs;
    for (; video * 100 / 3 <= now; video++) {
      const key = video % 60 === 0;
      const data = key ? nal(0x65, 12_000) : nal(0x41, 2_000);
      handle.publish(frame("video", video * 100 / 3, key ? FrameFlags.KEYFRAME : 0, data));
    }
    for (; audio * 23.22 <= now; audio++) {
      handle.publish(frame("audio", audio * 23.22, 0, nal(0x00, 180)));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** CPU ms of this process per second of stream per reader, for `n` readers of `root`. */
async function step(root: string, n: number): Promise<{ cpuUs: number; bytes: number }> {
  const { SrtConnection } = await import(`${root}ingest/srt/_connection.ts`) as {
    SrtConnection: ConnectionClass;
  };
  // The listener's pacing timer, in checkouts from before the play line paced its readers.
  const { PacingTimer } = await import(`${root}ingest/srt/_pacing_timer.ts`).catch(() => ({
    PacingTimer: undefined,
  }));
  const clock = () => performance.now();
  const settings = {
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    peerIdleTimeoutMs: 60_000,
    maxLag: 512,
    catchUpSpeed: 1.5,
    pacing: PacingTimer ? new PacingTimer(clock) : undefined,
    keyRefreshPackets: 1 << 24,
    clock,
  };
  // The checkout's own kernel, so that its connections read the stream they were written for.
  const kernel = await import(`${root}mod.ts`) as { StreamHandle: typeof StreamHandle };
  const handle = new kernel.StreamHandle({ app: "live", stream: "bench", capacity: 2048 });
  let bytes = 0;
  const highest: number[] = [];
  const connections: Connection[] = [];
  for (let i = 0; i < n; i++) {
    const transmit = (packet: Uint8Array) => {
      bytes += packet.length;
      if (!(packet[0] & 0x80)) {
        highest[i] = new DataView(packet.buffer, packet.byteOffset).getUint32(0);
      }
    };
    const now = clock();
    connections.push(
      new SrtConnection(
        {
          socketId: i + 1,
          peerSocketId: 1_000_000 + i,
          peerAddress: "127.0.0.1",
          peerPort: 10_000 + i,
          peer: `127.0.0.1:${10_000 + i}`,
          isn: 1000,
          latencyMs: 120,
          payloadSize: 1316,
          maxPackets: 8192,
          handshakeAtMs: now,
          handshakeTimestamp: 0,
          key: "live/bench",
          media: { kind: "read", handle },
          startMs: now,
        },
        settings,
        transmit,
        () => {},
      ),
    );
  }
  // The listener's 10 ms tick, and each reader's ACK as libsrt sends it.
  let ackNo = 1;
  const ticker = setInterval(() => {
    const now = clock();
    for (let i = 0; i < n; i++) {
      const c = connections[i];
      if (highest[i] !== undefined) {
        const ack = { ackNo: ackNo++, ackSeq: highest[i] + 1, rttUs: 1000, rttVarUs: 500 };
        c.handlePacket(ackPacket(ack, 0, i + 1), now);
      }
      c.tick(now);
    }
  }, 10);
  const startMs = performance.now();
  const publishing = publish(handle, startMs + WARMUP_MS + SECONDS * 1000);
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  const cpu0 = process.cpuUsage();
  const bytes0 = bytes;
  const t0 = performance.now();
  await publishing;
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - t0) / 1000;
  const sent = bytes - bytes0;
  clearInterval(ticker);
  for (const c of connections) c.close("bench over");
  handle.close();
  return { cpuUs: (cpu.user + cpu.system) / seconds / n, bytes: sent / seconds / n };
}

const roots: [string, string][] = [["this checkout", ROOT]];
if (values.before) {
  roots.unshift(["before", new URL(values.before.replace(/\/?$/, "/"), "file:///").href]);
}
console.log(
  `SRT readers in process: ${SECONDS} s of stream after ${WARMUP_MS} ms, ACKs every 10 ms`,
);
console.log(
  "| checkout | readers | CPU µs per reader per second of stream | sent kbit/s per reader |",
);
console.log("|---|---|---|---|");
for (const n of STEPS) {
  for (const [name, root] of roots) {
    const { cpuUs, bytes } = await step(root, n);
    console.log(`| ${name} | ${n} | ${cpuUs.toFixed(0)} | ${(bytes * 8 / 1000).toFixed(0)} |`);
  }
}
