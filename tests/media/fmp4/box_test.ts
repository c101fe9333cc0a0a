import assert from "node:assert/strict";
import { BoxWriter } from "../../../media/fmp4/mod.ts";

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("BoxWriter writes nested boxes with patched sizes (golden bytes)", () => {
  const w = new BoxWriter(new Uint8Array(64), 2);
  const outer = w.begin("moof");
  const inner = w.beginFull("mfhd", 1, 0x020304);
  w.u32(7);
  w.end(inner);
  w.u8(0xaa);
  w.u16(0xbbcc);
  w.i16(-2);
  w.u24(0x010203);
  w.i32(-1);
  w.u64(2 ** 40 + 5);
  w.zeros(2);
  w.write(new Uint8Array([9, 8]));
  w.end(outer);
  const expected = [
    "0000", // untouched prefix
    "00000030 6d6f6f66", // moof, 48 bytes
    "00000010 6d666864 01020304 00000007", // mfhd, version 1, flags 0x020304
    "aa bbcc fffe 010203 ffffffff 0000010000000005 0000 0908",
  ].join("");
  assert.equal(toHex(w.bytes.subarray(0, w.pos)), expected.replaceAll(" ", ""));
});

Deno.test("BoxWriter rejects bad input and writes past the end", () => {
  const w = new BoxWriter(new Uint8Array(6));
  assert.throws(() => w.fourcc("abc"), RangeError);
  assert.throws(() => w.u64(-1), RangeError);
  assert.throws(() => w.u64(2 ** 53), RangeError);
  w.u32(1);
  assert.throws(() => w.u32(1), RangeError);
  assert.throws(() => w.write(new Uint8Array(3)), RangeError);
  assert.throws(() => w.zeros(3), RangeError);
});
