/**
 * Fan-out benchmark: the shared ring against a `ReadableStream.tee()` chain, same workload,
 * same run.
 *
 * ```sh
 * deno run -A --v8-flags=--expose-gc bench/fanout.ts [--frames 100000] [--tee-budget 20000000]
 *   [--readers 1,100,1000,10000] [--repeat 3] [--capacity 1024]
 * ```
 *
 * For each N it publishes `--frames` frames in bursts of half a ring and lets every reader
 * drain between bursts. It prints deliveries per second (frames × readers / wall time) and
 * the publisher's cost: ns per frame inside `publish` or `enqueue` for every frame of a
 * burst but its first, and, apart, the median first publish of a burst. The first one runs
 * on caches the readers just filled with their own work, so it costs more the more readers
 * ran; it is a cost per burst, not per frame (a larger `--capacity`, hence burst, spreads it
 * thinner). The tee() side runs `min(frames, tee-budget / N)` frames so N = 10,000 finishes.
 *
 * A third source, the floor, bounds what any stream read one promise per frame can deliver:
 * frames stored in an array, every read an already-resolved promise, nothing else (no GOP
 * cache, QoS, observer, lag handling or stream machinery).
 *
 * Each figure is the best of `--repeat` runs where a run delivers at most 10^8 frames. Last,
 * memory with one stalled reader: the ring stays bounded where tee() buffers everything.
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
    repeat: { type: "string", default: "3" },
    capacity: { type: "string", default: "1024" },
  },
});
const FRAMES = Number(values.frames);
const TEE_BUDGET = Number(values["tee-budget"]);
const READERS = values.readers.split(",").map(Number);
const REPEAT = Number(values.repeat);
const CAPACITY = Number(values.capacity);
const BURST = CAPACITY >> 1;

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
  /** Publish cost per frame over every frame of a burst but its first. */
  publishNsPerFrame: number;
  /** The median first publish of a burst. */
  firstPublishNs: number;
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

  async read(index: number, stream: Readable): Promise<void> {
    const reader = stream.getReader();
    for (;;) {
      const { done } = await reader.read();
      if (done) return;
      if (++this.#counts[index] === this.#target && --this.#remaining === 0) this.#done();
    }
  }
}

/** What a reader needs of its stream; a `ReadableStream` is one. */
interface Readable {
  getReader(): { read(): Promise<ReadableStreamReadResult<MediaFrame>> };
  cancel(): Promise<void>;
}

/** Where frames go in: the ring, a tee() tree or the floor, with one stream per reader. */
interface Source {
  streams: Readable[];
  publish(frame: MediaFrame): void;
  close(): void;
}

/** A {@linkcode StreamHandle} with `readers` subscriptions. */
function ringSource(readers: number): Source {
  const handle = new StreamHandle({ app: "bench", stream: "ring", capacity: CAPACITY });
  return {
    streams: Array.from({ length: readers }, () => handle.subscribe()),
    publish: (frame) => void handle.publish(frame),
    close: () => handle.close(),
  };
}

/** A balanced tee() tree with `readers` leaves: depth log2(N), the cheapest way tee() reaches N. */
function teeSource(readers: number): Source {
  let source!: ReadableStreamDefaultController<MediaFrame>;
  const streams = [new ReadableStream<MediaFrame>({ start: (c) => void (source = c) })];
  while (streams.length < readers) streams.push(...streams.shift()!.tee());
  return { streams, publish: (frame) => source.enqueue(frame), close: () => source.close() };
}

/**
 * The floor: an array of frames and readers whose every read of a stored frame is an
 * already-resolved promise, which is the least a stream read one promise per frame can
 * cost. Readers that run out wait on one shared promise, woken once per burst like the
 * ring's. Nothing else: no GOP cache, QoS, observer, lag handling or stream machinery.
 */
function floorSource(readers: number): Source {
  const slots: MediaFrame[] = new Array(CAPACITY);
  let head = 0;
  let closed = false;
  let arrival: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  const stream = (): Readable => {
    let seq = 0;
    const reader = {
      read(): Promise<ReadableStreamReadResult<MediaFrame>> {
        if (seq < head) return Promise.resolve({ value: slots[seq++ % CAPACITY], done: false });
        if (closed) return Promise.resolve({ value: undefined, done: true });
        arrival ??= new Promise<void>((resolve) => (wake = resolve));
        return arrival.then(() => reader.read());
      },
    };
    return { getReader: () => reader, cancel: () => Promise.resolve() };
  };
  const changed = () => {
    const resolve = wake;
    if (resolve === undefined) return;
    wake = undefined;
    queueMicrotask(() => {
      arrival = undefined;
      resolve();
    });
  };
  return {
    streams: Array.from({ length: readers }, stream),
    publish: (frame) => {
      slots[head++ % CAPACITY] = frame;
      changed();
    },
    close: () => {
      closed = true;
      changed();
    },
  };
}

/**
 * Publishes `total` frames from `next` into `src` in bursts, waiting after each burst until
 * the first `drained` streams have read it (the others are left to stall). Calls `atEnd`
 * before closing, then waits for every reader.
 */
async function pump(
  src: Source,
  total: number,
  next: (i: number) => MediaFrame,
  { drained = src.streams.length, atEnd = () => {} } = {},
): Promise<{ publishMs: number; firstMs: number[]; wallMs: number }> {
  const drain = new Drain(drained);
  const reading = src.streams.slice(0, drained).map((s, i) => drain.read(i, s));
  let publishMs = 0;
  const firstMs: number[] = [];
  const start = performance.now();
  for (let sent = 0; sent < total; sent += BURST) {
    const t0 = performance.now();
    src.publish(next(0));
    const t1 = performance.now();
    for (let i = 1; i < BURST; i++) src.publish(next(i));
    publishMs += performance.now() - t1;
    firstMs.push(t1 - t0);
    await drain.expect(sent + BURST);
  }
  const wallMs = performance.now() - start;
  atEnd();
  src.close();
  await Promise.all([...reading, ...src.streams.slice(drained).map((s) => s.cancel())]);
  return { publishMs, firstMs, wallMs };
}

/**
 * The best of `--repeat` runs (ring and tee() alike) while a run delivers at most 10^8
 * frames, so the 10,000-reader row stays a single run.
 */
async function best(source: (readers: number) => Source, readers: number, total: number) {
  const repeat = readers * total <= 1e8 ? REPEAT : 1;
  let fastest: Result | undefined;
  for (let i = 0; i < repeat; i++) {
    const result = await run(source(readers), total);
    if (!fastest || result.deliveriesPerSecond > fastest.deliveriesPerSecond) fastest = result;
  }
  return fastest!;
}

async function run(src: Source, total: number): Promise<Result> {
  const { publishMs, firstMs, wallMs } = await pump(src, total, (i) => frames[i]);
  firstMs.sort((a, b) => a - b);
  return {
    publishNsPerFrame: (publishMs * 1e6) / (total - firstMs.length),
    firstPublishNs: firstMs[firstMs.length >> 1] * 1e6,
    deliveriesPerSecond: (total * src.streams.length) / (wallMs / 1000),
    frames: total,
  };
}

/** Heap plus the payloads' backing stores, after a collection when `--expose-gc` allows. */
function memoryMb(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.(); // twice: the first pass leaves some dead buffers to the second
  gc?.();
  const { heapUsed, external } = Deno.memoryUsage();
  return (heapUsed + external) / 2 ** 20;
}

async function stalledMemory(kind: "ring" | "tee", total: number): Promise<number> {
  const before = memoryMb();
  let grown = 0;
  const src = kind === "ring" ? ringSource(2) : teeSource(2);
  // fresh payload per frame; stream 1 is never read
  await pump(src, total, () => ({ ...frames[0], data: new Uint8Array(1024) }), {
    drained: 1,
    atEnd: () => grown = memoryMb() - before,
  });
  return grown;
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const us = (ns: number) => (ns / 1000).toFixed(2);
console.log(
  `fan-out: ${fmt(FRAMES)} frames, ring capacity ${CAPACITY}, bursts of ${BURST}, ` +
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`,
);
console.log(
  "readers | ring ns/publish | ring 1st µs | ring deliveries/s | tee frames | tee ns/enqueue | " +
    "tee 1st µs | tee deliveries/s | floor deliveries/s | ring/tee | floor/tee",
);
// Warm every path up (one reader for the whole frame count, then ten) so the first row
// measures optimized code rather than the JIT's tiers.
for (const [readers, total] of [[1, FRAMES], [10, 20 * BURST]]) {
  for (const source of [ringSource, teeSource, floorSource]) await run(source(readers), total);
}
/** Publish cost per frame with each burst's first publish counted in. */
const allFrames = (r: Result) =>
  (r.publishNsPerFrame * (r.frames - r.frames / BURST) + r.firstPublishNs * (r.frames / BURST)) /
  r.frames;
const rows: Result[] = [];
for (const n of READERS) {
  const ring = await best(ringSource, n, FRAMES);
  const teeFrames = Math.max(BURST, Math.min(FRAMES, Math.floor(TEE_BUDGET / n / BURST) * BURST));
  const tee = await best(teeSource, n, teeFrames);
  const floor = await best(floorSource, n, FRAMES);
  rows.push(ring);
  console.log(
    [
      fmt(n).padStart(7),
      ring.publishNsPerFrame.toFixed(1).padStart(15),
      us(ring.firstPublishNs).padStart(11),
      fmt(ring.deliveriesPerSecond).padStart(17),
      fmt(tee.frames).padStart(10),
      tee.publishNsPerFrame.toFixed(1).padStart(14),
      us(tee.firstPublishNs).padStart(10),
      fmt(tee.deliveriesPerSecond).padStart(16),
      fmt(floor.deliveriesPerSecond).padStart(18),
      (ring.deliveriesPerSecond / tee.deliveriesPerSecond).toFixed(2).padStart(7) + "x",
      (floor.deliveriesPerSecond / tee.deliveriesPerSecond).toFixed(2).padStart(8) + "x",
    ].join(" | "),
  );
}
const [first, last] = [rows[0], rows.at(-1)!];
console.log(
  `publish cost at N=${fmt(READERS.at(-1)!)} vs N=${fmt(READERS[0])}: ` +
    `${(last.publishNsPerFrame / first.publishNsPerFrame).toFixed(2)}x per frame ` +
    `(target: within 2x); ${(allFrames(last) / allFrames(first)).toFixed(2)}x with each ` +
    `burst's first publish counted in (${allFrames(first).toFixed(1)} and ` +
    `${allFrames(last).toFixed(1)} ns per frame)`,
);
const ringMb = await stalledMemory("ring", FRAMES);
const teeMb = await stalledMemory("tee", FRAMES);
console.log(
  `one stalled reader, ${fmt(FRAMES)} frames of 1 KiB: memory grew ${ringMb.toFixed(1)} MiB ` +
    `with the ring (bounded by ${CAPACITY} slots), ${teeMb.toFixed(1)} MiB with tee()`,
);
