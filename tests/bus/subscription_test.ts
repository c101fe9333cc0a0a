import assert from "node:assert/strict";
import { type MediaFrame, StreamHandle } from "../../mod.ts";
import { readAll, videoFrame } from "../_util/frames.ts";

function handle(capacity = 64) {
  return new StreamHandle({ app: "live", stream: "s", capacity });
}

const pts = (result: ReadableStreamReadResult<MediaFrame>) =>
  result.done ? "done" : result.value.pts;

Deno.test("getReader: a standard reader that keeps order between ready and waited-for frames", async () => {
  const h = handle();
  const sub = h.subscribe();
  const reader = sub.getReader();
  assert.ok(reader instanceof ReadableStreamDefaultReader);
  assert.equal(sub.locked, true);
  assert.throws(() => sub.getReader(), TypeError, "a second reader is refused while locked");
  for (let i = 0; i < 3; i++) h.publish(videoFrame(i, i === 0));
  assert.deepEqual([pts(await reader.read()), pts(await reader.read())], [0, 1]);
  // Reads issued without awaiting, with frames published in between: none overtakes another.
  const reads = [reader.read(), reader.read(), reader.read()];
  h.publish(videoFrame(3));
  reads.push(reader.read());
  h.publish(videoFrame(4));
  reads.push(reader.read());
  h.publish(videoFrame(5));
  h.publish(videoFrame(6));
  assert.deepEqual((await Promise.all(reads)).map(pts), [2, 3, 4, 5, 6]);
});

Deno.test("getReader: reads queue in order while waiting for the publisher", async () => {
  const h = handle();
  const reader = h.subscribe().getReader();
  const waiting = [reader.read(), reader.read()];
  await new Promise((resolve) => setTimeout(resolve, 5));
  h.publish(videoFrame(0, true));
  const third = reader.read();
  h.publish(videoFrame(1));
  h.publish(videoFrame(2));
  h.close();
  assert.deepEqual((await Promise.all([...waiting, third])).map(pts), [0, 1, 2]);
  assert.equal((await reader.read()).done, true);
});

/**
 * With a pull still waiting and nobody reading, publish a frame (the pull takes it into the
 * stream's queue), then another; a new reader must get both, in order.
 */
async function assertNextReaderGetsEverything(h: StreamHandle, sub: ReadableStream<MediaFrame>) {
  h.publish(videoFrame(0, true));
  await new Promise((resolve) => setTimeout(resolve, 0));
  h.publish(videoFrame(1));
  h.close();
  assert.deepEqual((await readAll(sub)).map((f) => f.pts), [0, 1]);
}

Deno.test("a frame pulled for a reader that let go is the next reader's first", async () => {
  const h = handle();
  const sub = h.subscribe();
  const first = sub.getReader();
  const abandoned = first.read();
  first.releaseLock();
  await assert.rejects(abandoned, TypeError);
  await assertNextReaderGetsEverything(h, sub);
});

Deno.test("a frame pulled for an aborted pipe is the next reader's first", async () => {
  const h = handle();
  const sub = h.subscribe();
  const abort = new AbortController();
  const piped = sub.pipeTo(new WritableStream(), { signal: abort.signal, preventCancel: true });
  await new Promise((resolve) => setTimeout(resolve, 0));
  abort.abort();
  await assert.rejects(piped);
  await assertNextReaderGetsEverything(h, sub);
});

Deno.test("cancelling through the reader frees the cursor; a BYOB reader is refused", async () => {
  const h = handle();
  const sub = h.subscribe();
  assert.throws(() => sub.getReader({ mode: "byob" }), TypeError);
  const reader = sub.getReader();
  h.publish(videoFrame(0, true));
  await reader.cancel("done here");
  assert.equal(h.subscriberCount, 0);
  assert.equal((await reader.read()).done, true, "a cancelled stream reads as ended");
  reader.releaseLock();
  await assert.rejects(reader.read(), TypeError, "a released reader cannot read");
});

Deno.test("for await reads to the end and releases the lock; break cancels", async () => {
  const h = handle();
  const whole = h.subscribe();
  const broken = h.subscribe();
  const kept = h.subscribe();
  for (let i = 0; i < 3; i++) h.publish(videoFrame(i, i === 0));
  h.close();
  const seen: number[] = [];
  for await (const frame of whole) seen.push(frame.pts);
  assert.deepEqual(seen, [0, 1, 2]);
  assert.equal(whole.locked, false, "the iterator released its reader at the end");
  for await (const _ of broken) break;
  assert.equal(broken.locked, false);
  assert.equal((await broken.getReader().read()).done, true, "break cancelled the stream");
  for await (const _ of kept.values({ preventCancel: true })) break;
  assert.deepEqual((await readAll(kept)).map((f) => f.pts), [1, 2], "preventCancel kept its place");
  assert.equal(h.subscriberCount, 0);
});

Deno.test("the iterator ends every outstanding next() at the end of the stream", async () => {
  const h = handle();
  const iterator = h.subscribe()[Symbol.asyncIterator]();
  const nexts = [iterator.next(), iterator.next(), iterator.next()];
  h.publish(videoFrame(0, true));
  h.close();
  const results = await Promise.all(nexts);
  assert.deepEqual(results.map((r) => r.done ? "done" : r.value.pts), [0, "done", "done"]);
  assert.deepEqual(await iterator.next(), { done: true, value: undefined });
  assert.deepEqual(await iterator.return!("x"), { done: true, value: "x" });
});
