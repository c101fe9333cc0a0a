import assert from "node:assert/strict";
import { pipeMemory, PipeReader, PipeWriter } from "../../../media/transcode/_pipe.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { concat } from "../../_util/bytes.ts";

Deno.test("transcode pipe: bytes come out in order across the wrap; what does not fit is refused", () => {
  const memory = pipeMemory(64);
  const writer = new PipeWriter(memory);
  const reader = new PipeReader(memory);
  const rand = prng(7);
  const sent: Uint8Array[] = [];
  const got: Uint8Array[] = [];
  for (let round = 0; round < 200; round++) {
    const chunk = randomBytes(rand, 1 + Math.floor(rand() * 40));
    const fits = chunk.length <= 64 - writer.buffered;
    assert.equal(writer.write(chunk), fits);
    if (fits) sent.push(chunk);
    const into = new Uint8Array(1 + Math.floor(rand() * 50));
    if (writer.buffered > 0) got.push(into.slice(0, reader.read(into)));
  }
  writer.close();
  assert.equal(writer.write(new Uint8Array(1)), false, "nothing is taken after close");
  for (let into = new Uint8Array(64), n; (n = reader.read(into)) > 0;) got.push(into.slice(0, n));
  assert.deepEqual(concat(got), concat(sent));
});

Deno.test("transcode pipe: a closed, drained pipe reads as the end", () => {
  const memory = pipeMemory(16);
  const writer = new PipeWriter(memory);
  const reader = new PipeReader(memory);
  writer.write(new Uint8Array([1, 2, 3]));
  writer.close();
  const into = new Int8Array(8); // ffmpeg's heap is an Int8Array
  assert.equal(reader.read(into), 3);
  assert.deepEqual([...into.subarray(0, 3)], [1, 2, 3]);
  assert.equal(reader.read(into), 0);
  assert.throws(() => pipeMemory(100), RangeError);
});
