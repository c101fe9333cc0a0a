/** FlvDecoder, the synchronous core: it keeps no reference to a chunk once decode returns. */

import assert from "node:assert/strict";
import type { MediaFrame } from "../../../bus/frame.ts";
import { FlvDecoder } from "../../../media/flv/mod.ts";
import { makeFixture } from "../../_util/ffmpeg.ts";
import { chunks, flvFixtures, readFlv } from "./_flv.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

test.ffmpeg("FlvDecoder: chunks read into one reused buffer give FlvReader's frames", async () => {
  const path = await makeFixture("h264-aac-44k.flv", flvFixtures["h264-aac-44k.flv"]);
  const bytes = await Deno.readFile(path);
  const want = await readFlv(bytes);
  for (const [max, seed] of [[7, 2], [5000, 4], [65536, 5]]) {
    const decoder = new FlvDecoder();
    const reused = new Uint8Array(max);
    const got: MediaFrame[] = [];
    for (const part of chunks(bytes, max, seed)) {
      reused.set(part);
      // Frames are copied as they come: the next chunk overwrites the buffer.
      decoder.decode(
        reused.subarray(0, part.length),
        (f) => got.push({ ...f, data: f.data.slice() }),
      );
      reused.fill(0xee); // a decoder still holding the chunk would read this
    }
    decoder.flush();
    assert.deepEqual(got, want, `chunks up to ${max} bytes`);
  }
});

Deno.test("FlvDecoder: flush throws when the stream ends inside a tag", () => {
  const decoder = new FlvDecoder();
  const header = [0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9];
  decoder.decode(new Uint8Array([...header, 0, 0, 0, 0, 9, 0, 0, 5]), () => {});
  assert.throws(() => decoder.flush(), {
    name: "RangeError",
    message: /truncated in a tag header/,
  });
  assert.throws(() => new FlvDecoder().decode(new Uint8Array(9), () => {}), RangeError);
});
