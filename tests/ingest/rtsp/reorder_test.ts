/** RtpReorderer: UDP's RTP packets back in sequence order, with bounded waiting and memory. */

import assert from "node:assert/strict";
import { RtpReorderer } from "../../../ingest/rtsp/_reorder.ts";

/** A 12-byte RTP header with `sequence` (and the sequence again in the payload byte). */
function packet(sequence: number): Uint8Array {
  const bytes = new Uint8Array(13);
  bytes[0] = 0x80;
  bytes[2] = sequence >> 8;
  bytes[3] = sequence & 0xff;
  bytes[12] = sequence & 0xff;
  return bytes;
}

const sequenceOf = (p: Uint8Array) => (p[2] << 8) | p[3];

/** A reorderer on a clock the test moves, collecting the sequence numbers it hands on. */
function collect(options: { size?: number; maxWaitMs?: number } = {}) {
  const out: number[] = [];
  const time = { now: 0 };
  const reorderer = new RtpReorderer((p) => out.push(sequenceOf(p)), {
    ...options,
    clock: () => time.now,
  });
  return {
    out,
    time,
    reorderer,
    push: (...s: number[]) => s.forEach((n) => reorderer.push(packet(n))),
  };
}

Deno.test("reorder: in-order packets pass at once; swapped ones come out in order", () => {
  const { out, reorderer, push } = collect();
  push(10, 11, 13, 12, 14, 17, 16, 15);
  assert.deepEqual(out, [10, 11, 12, 13, 14, 15, 16, 17]);
  assert.equal(reorderer.held, 0);
  assert.equal(reorderer.dropped, 0);
});

Deno.test("reorder: duplicates and late packets are dropped", () => {
  const { out, reorderer, push } = collect();
  push(1, 3, 3, 2, 2, 1, 4);
  assert.deepEqual(out, [1, 2, 3, 4]);
  assert.equal(reorderer.dropped, 3);
});

Deno.test("reorder: sequence numbers wrap at 2^16", () => {
  const { out, push } = collect();
  push(65534, 0, 65535, 1);
  assert.deepEqual(out, [65534, 65535, 0, 1]);
});

Deno.test("reorder: a missing packet is given up after maxWaitMs", () => {
  const { out, time, reorderer, push } = collect({ maxWaitMs: 100 });
  push(1, 3, 4); // 2 is lost
  assert.deepEqual(out, [1]);
  assert.equal(reorderer.held, 2);
  time.now = 50;
  push(5);
  assert.deepEqual(out, [1], "still waiting for 2");
  time.now = 101;
  push(6);
  assert.deepEqual(out, [1, 3, 4, 5, 6]);
  push(2); // too late now
  assert.equal(reorderer.dropped, 1);
});

Deno.test("reorder: a packet a window ahead ends the wait at once", () => {
  const { out, reorderer, push } = collect({ size: 8 });
  push(1, 3, 5);
  push(12); // 8 or more past 2, the awaited one
  assert.deepEqual(out, [1, 3, 5, 12]);
  assert.equal(reorderer.held, 0);
  push(13, 11); // 11 is now behind
  assert.deepEqual(out, [1, 3, 5, 12, 13]);
  assert.equal(reorderer.dropped, 1);
});

Deno.test("reorder: datagrams too short for RTP go on for the parser to refuse", () => {
  const out: Uint8Array[] = [];
  const reorderer = new RtpReorderer((p) => out.push(p));
  reorderer.push(new Uint8Array(3));
  assert.equal(out.length, 1);
  assert.throws(() => new RtpReorderer(() => {}, { size: 48 }), RangeError);
});

Deno.test("reorder: fuzz, shuffled within the window: every packet once, in order", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 50; round++) {
    const { out, reorderer, push } = collect({ size: 16, maxWaitMs: Infinity });
    const start = Math.floor(random() * 65536);
    const sent = Array.from({ length: 300 }, (_, i) => (start + i) & 0xffff);
    // shuffle each block of 8: no packet moves 8 places or more, well within the window
    for (let block = 0; block < sent.length; block += 8) {
      for (let i = Math.min(block + 8, sent.length) - 1; i > block; i--) {
        const j = block + Math.floor(random() * (i - block + 1));
        [sent[i], sent[j]] = [sent[j], sent[i]];
      }
    }
    push(start, ...sent.filter((s) => s !== start));
    push((start + 300) & 0xffff, (start + 316) & 0xffff); // the end: flush what is held
    assert.deepEqual(
      out.slice(0, 300),
      Array.from({ length: 300 }, (_, i) => (start + i) & 0xffff),
    );
    assert.equal(reorderer.dropped, 0);
  }
});

Deno.test("reorder: fuzz, hostile sequence numbers: bounded memory, nothing handed on twice", () => {
  let seed = 11;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const { out, time, reorderer, push } = collect({ size: 64 });
  for (let i = 0; i < 20_000; i++) {
    time.now += random() * 5;
    push(Math.floor(random() * 65536));
    assert.ok(reorderer.held < 64);
  }
  assert.equal(out.length + reorderer.dropped + reorderer.held, 20_000);
});
