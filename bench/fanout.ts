/**
 * Fan-out benchmark: the shared ring against a `ReadableStream.tee()` chain, same workload,
 * same run.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/fanout.ts [--frames 100000] [--tee-budget 20000000]
 * ```
 *
 * For each N it publishes `--frames` frames in bursts of half a ring and lets every reader
 * drain between bursts. It prints the publisher's cost (ns per frame, time spent inside
 * `publish` or `enqueue`) and deliveries per second (frames × readers / wall time). The
 * tee() side runs `min(frames, tee-budget / N)` frames so N = 10,000 finishes. Last, memory
 * with one stalled reader: the ring stays bounded where tee() buffers everything.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { FrameFlags, type MediaFrame, StreamHandle } from "../mod.ts";

const { values } = parseArgs({
  options: {
    frames: { type: "string", default: "100000" },
    "tee-budget": { type: "string", default: "20000000" },
    readers: { type: "string", default: "1,100,1000,10000" },
  },
});
const FRAMES = Number(values.frames);
const TEE_BUDGET = Number(values["tee-budget"]);
const READERS = values.readers.split(",").map(Number);
const CAPACITY = 1024;
const BURST = CAPACITY / 2;

const payload = new Uint8Array(1024);
const frames: MediaFrame[] = Array.from({ length: BURST }, (_, i) => ({
  track: 0,
  kind: "video",
  codec: "h264",
  pts: i * 3000,
  dts: i * 3000,
  flags: i === 0 ? FrameFlags.KEYFRAME : FrameFlags.NONE,
  data: payload,
}));

interface Result {
  publishNsPerFrame: number;
  deliveriesPerSecond: number;
  frames: number;
}

/** Readers that count frames and report when all of them have reached a target. */
class Drain {
  #remaining = 0;
  #done: () => void = () => {};
  #counts: number[];
  #target = 0;

  constructor(readers: number) {
    this.#counts = new Array(readers).fill(0);
  }

  expect(target: number): Promise<void> {
    this.#target = target;
    this.#remaining = this.#counts.filter((c) => c < target).length;
    if (this.#remaining === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#done = resolve));
  }

  async read(index: number, stream: ReadableStream<MediaFrame>): Promise<void> {
    const reader = stream.getReader();
    for (;;) {
      const { done } = await reader.read();
      if (done) return;
      if (++this.#counts[index] === this.#target && --this.#remaining === 0) this.#done();
    }
  }
}

async function runRing(readers: number, total: number): Promise<Result> {
  const handle = new StreamHandle({ app: "bench", stream: "ring", capacity: CAPACITY });
  const drain = new Drain(readers);
  const reading = Array.from({ length: readers }, (_, i) => drain.read(i, handle.subscribe()));
  let publishMs = 0;
  const start = performance.now();
  for (let sent = 0; sent < total; sent += BURST) {
    const t0 = performance.now();
    for (let i = 0; i < BURST; i++) handle.publish(frames[i]);
    publishMs += performance.now() - t0;
    await drain.expect(sent + BURST);
  }
  const wallMs = performance.now() - start;
  handle.close();
  await Promise.all(reading);
  return {
    publishNsPerFrame: (publishMs * 1e6) / total,
    deliveriesPerSecond: (total * readers) / (wallMs / 1000),
    frames: total,
  };
}

async function runTee(readers: number, total: number): Promise<Result> {
  let source!: ReadableStreamDefaultController<MediaFrame>;
  // A balanced tee() tree: depth log2(N), the cheapest way tee() reaches N readers.
  const branches: ReadableStream<MediaFrame>[] = [
    new ReadableStream<MediaFrame>({ start: (c) => void (source = c) }),
  ];
  while (branches.length < readers) branches.push(...branches.shift()!.tee());
  const drain = new Drain(readers);
  const reading = branches.map((b, i) => drain.read(i, b));
  let publishMs = 0;
  const start = performance.now();
  for (let sent = 0; sent < total; sent += BURST) {
    const t0 = performance.now();
    for (let i = 0; i < BURST; i++) source.enqueue(frames[i]);
    publishMs += performance.now() - t0;
    await drain.expect(sent + BURST);
  }
  const wallMs = performance.now() - start;
  source.close();
  await Promise.all(reading);
  return {
    publishNsPerFrame: (publishMs * 1e6) / total,
    deliveriesPerSecond: (total * readers) / (wallMs / 1000),
    frames: total,
  };
}

/** Heap plus the payloads' backing stores, after a collection when `--expose-gc` allows. */
function memoryMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const { heapUsed, external } = Deno.memoryUsage();
  return (heapUsed + external) / 2 ** 20;
}

async function stalledMemory(kind: "ring" | "tee", total: number): Promise<number> {
  const before = memoryMb();
  const make = () => ({ ...frames[0], data: new Uint8Array(1024) }); // fresh payload per frame
  if (kind === "ring") {
    const handle = new StreamHandle({ app: "bench", stream: "stall", capacity: CAPACITY });
    const stalled = handle.subscribe();
    const drain = new Drain(1);
    const reading = drain.read(0, handle.subscribe());
    for (let sent = 0; sent < total; sent += BURST) {
      for (let i = 0; i < BURST; i++) handle.publish(make());
      await drain.expect(sent + BURST);
    }
    const grown = memoryMb() - before;
    handle.close();
    await Promise.all([reading, stalled.cancel()]);
    return grown;
  }
  let source!: ReadableStreamDefaultController<MediaFrame>;
  const [stalled, live] = new ReadableStream<MediaFrame>({ start: (c) => void (source = c) })
    .tee();
  const drain = new Drain(1);
  const reading = drain.read(0, live);
  for (let sent = 0; sent < total; sent += BURST) {
    for (let i = 0; i < BURST; i++) source.enqueue(make());
    await drain.expect(sent + BURST);
  }
  const grown = memoryMb() - before;
  source.close();
  await Promise.all([reading, stalled.cancel()]);
  return grown;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
console.log(
  `fan-out: ${fmt(FRAMES)} frames, ring capacity ${CAPACITY}, bursts of ${BURST}, ` +
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
);
console.log(
  "readers | ring ns/publish | ring deliveries/s | tee frames | tee ns/enqueue | tee deliveries/s | ring/tee",
);
let baseline: number | undefined;
for (const n of READERS) {
  const ring = await runRing(n, FRAMES);
  const teeFrames = Math.max(BURST, Math.min(FRAMES, Math.floor(TEE_BUDGET / n / BURST) * BURST));
  const tee = await runTee(n, teeFrames);
  baseline ??= ring.publishNsPerFrame;
  console.log(
    [
      fmt(n).padStart(7),
      ring.publishNsPerFrame.toFixed(1).padStart(15),
      fmt(ring.deliveriesPerSecond).padStart(17),
      fmt(tee.frames).padStart(10),
      tee.publishNsPerFrame.toFixed(1).padStart(14),
      fmt(tee.deliveriesPerSecond).padStart(16),
      (ring.deliveriesPerSecond / tee.deliveriesPerSecond).toFixed(2).padStart(8) + "x",
    ].join(" | "),
  );
}
console.log(
  `publish cost at N=${fmt(READERS.at(-1)!)} vs N=${fmt(READERS[0])}: see the ns/publish column ` +
    `(target: within 2x; first row ${baseline!.toFixed(1)} ns)`,
);
const ringMb = await stalledMemory("ring", FRAMES);
const teeMb = await stalledMemory("tee", FRAMES);
console.log(
  `one stalled reader, ${fmt(FRAMES)} frames of 1 KiB: memory grew ${ringMb.toFixed(1)} MiB ` +
    `with the ring (bounded by ${CAPACITY} slots), ${teeMb.toFixed(1)} MiB with tee()`,
);
