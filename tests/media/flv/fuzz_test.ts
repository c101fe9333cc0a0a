import assert from "node:assert/strict";
import type { MediaFrame } from "../../../bus/frame.ts";
import type { FlvDecoderOptions } from "../../../media/flv/mod.ts";
import { makeFixture, sine, testsrc, x264 } from "../../_util/ffmpeg.ts";
import { flipBit, prng, randomBytes } from "../../_util/fuzz.ts";
import { chunks, readFlv } from "./_flv.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

const small = () =>
  makeFixture("small.flv", [
    ...testsrc({ size: "160x120", duration: 0.4 }),
    ...sine({ duration: 0.4 }),
    ...x264({ gop: 5 }),
    ...["-c:a", "aac"],
    ...["-f", "flv"],
  ]);

/** Reads `bytes`; the stream must end with sane frames or error with a RangeError, never hang. */
async function survives(
  bytes: Uint8Array | Uint8Array[],
  what: string,
  options?: FlvDecoderOptions,
): Promise<MediaFrame[] | RangeError> {
  try {
    const frames = await readFlv(bytes, options);
    for (const f of frames) {
      assert.ok(Number.isInteger(f.pts) && Number.isInteger(f.dts), `${what}: integer timestamps`);
      assert.ok(f.data instanceof Uint8Array, `${what}: payload`);
    }
    return frames;
  } catch (e) {
    if (!(e instanceof RangeError)) {
      assert.fail(`${what}: expected RangeError, got ${e instanceof Error ? e.stack : String(e)}`);
    }
    assert.ok(e.message.length > 0);
    return e;
  }
}

test.ffmpeg("fuzz: FlvReader on truncated files errors with a clear message", async () => {
  const bytes = await Deno.readFile(await small());
  const rand = prng(11);
  const lengths = new Set<number>();
  for (let n = 0; n < Math.min(bytes.length, 1500); n++) lengths.add(n);
  for (let i = 0; i < 300; i++) lengths.add(Math.floor(rand() * bytes.length));
  let errors = 0;
  for (const n of lengths) {
    const result = await survives(chunks(bytes.subarray(0, n), 4000, n), `truncated to ${n}`);
    if (result instanceof RangeError) {
      errors++;
      if (n > 13) assert.match(result.message, /truncated/, `truncated to ${n}`);
    }
  }
  assert.ok(errors > lengths.size / 2, "truncation is reported");
});

test.ffmpeg("fuzz: FlvReader on files with flipped bits", async () => {
  const bytes = await Deno.readFile(await small());
  const rand = prng(12);
  for (let i = 0; i < 1500; i++) {
    const bit = Math.floor(rand() * bytes.length * 8);
    await survives(chunks(flipBit(bytes, bit), 3000, i), `bit ${bit} flipped`);
  }
});

Deno.test("fuzz: FlvReader on random bytes, with and without a valid header", async () => {
  const rand = prng(13);
  const header = new Uint8Array([0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);
  for (let i = 0; i < 1000; i++) {
    const body = randomBytes(rand, Math.floor(rand() * 600));
    const data = i % 2 ? new Uint8Array([...header, ...body]) : body;
    await survives(chunks(data, 64, i), `random #${i}`, { maxTagSize: 1 << 16 });
  }
  assert.match(
    String(await survives(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), "junk")),
    /not an FLV/,
  );
});

Deno.test("FlvReader rejects absurd tag sizes without buffering them", async () => {
  const header = [0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0];
  const huge = new Uint8Array([...header, 9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0x17, 1]);
  assert.match(
    String(await survives(huge, "huge tag", { maxTagSize: 1 << 20 })),
    /16777215 bytes, over the 1048576 byte limit/,
  );
  // within the default limit the tag is awaited, and the stream ends as truncated
  assert.match(String(await survives(huge, "huge tag, default limit")), /truncated in the body/);
  const badHeader = new Uint8Array([0x46, 0x4c, 0x56, 1, 5, 0xff, 0xff, 0xff, 0xff]);
  assert.match(String(await survives(badHeader, "header size")), /header size/);
});
