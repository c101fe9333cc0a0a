/** TsEncoder.release: slabs given back are written again, outputs still held never are. */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { TsEncoder, type TsEncoderOptions } from "../../../media/ts/mod.ts";
import { audio, audioConfig, videoConfig } from "../hls/_synthetic.ts";
import { firstDifference } from "../../_util/bytes.ts";

/** A 25 fps H.264 frame of about `size` bytes, its payload filled with its index. */
function bigVideo(i: number, size = 40_000): MediaFrame {
  const data = new Uint8Array(size).fill(i & 0xff);
  new DataView(data.buffer).setUint32(0, size - 4);
  data[4] = i % 25 === 0 ? 0x65 : 0x41;
  const dts = i * 3600;
  return {
    track: 0,
    kind: "video",
    codec: "h264",
    pts: dts,
    dts,
    flags: i % 25 ? 0 : FrameFlags.KEYFRAME,
    data,
  };
}

/** Configs, then 200 video frames (about 8 MB of output, several slabs) with audio between. */
function frames(): MediaFrame[] {
  const media = Array.from({ length: 200 }, (_, i) => [bigVideo(i), audio(i * 3600)]).flat();
  return [videoConfig(), audioConfig(), ...media];
}

Deno.test("encoder release: outputs given back at once make every frame reuse one slab", () => {
  const options: TsEncoderOptions = { video: "h264", audio: "aac" };
  const [reused, fresh] = [new TsEncoder(options), new TsEncoder(options)];
  const buffers = new Set<ArrayBufferLike>();
  for (const f of frames()) {
    const out = reused.encode(f);
    const want = fresh.encode(f);
    assert.equal(out === undefined, want === undefined);
    if (out === undefined) continue;
    assert.equal(firstDifference(out, want!), -1, "as from an encoder never given anything back");
    buffers.add(out.buffer);
    reused.release([out]);
  }
  assert.equal(buffers.size, 1);
});

for (const options of [{ video: "h264", audio: "aac" }, {}] as TsEncoderOptions[]) {
  const label = options.video ? "declared tracks" : "inferred tracks (outputs held while probing)";
  Deno.test(`encoder release (${label}): outputs still held are never written over`, () => {
    const enc = new TsEncoder(options);
    const held: { out: Uint8Array; copy: Uint8Array }[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const kept = [];
    let n = 0;
    for (const f of frames()) {
      const out = enc.encode(f);
      if (out === undefined) continue;
      buffers.add(out.buffer);
      const entry = { out, copy: out.slice() };
      // The first output is never given back; the others about 2 MB later (a stored segment).
      if (n++ === 0) kept.push(entry);
      else held.push(entry);
      while (held.reduce((size, h) => size + h.out.length, 0) > 2_000_000) {
        const { out, copy } = held.shift()!;
        assert.equal(firstDifference(out, copy), -1, "unchanged until given back");
        enc.release([out]);
      }
    }
    for (const { out, copy } of [...kept, ...held]) assert.equal(firstDifference(out, copy), -1);
    assert.ok(buffers.size >= 3 && buffers.size <= 6, `slabs reused: ${buffers.size} buffers`);
  });
}
