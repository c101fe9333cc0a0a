import assert from "node:assert/strict";
import { TimestampUnwrapper } from "../../../media/codec/mod.ts";

Deno.test("TimestampUnwrapper: the first value is taken as is, a 32-bit wrap continues the count", () => {
  const u = new TimestampUnwrapper();
  assert.equal(u.unwrap(0xffff_fff0), 0xffff_fff0);
  assert.equal(u.unwrap(0x10), 2 ** 32 + 0x10);
  assert.equal(u.unwrap(0x8), 2 ** 32 + 0x8, "a small step back stays a step back");
  assert.equal(u.unwrap(0xffff_fff8), 0xffff_fff8, "and so does a step back over the wrap");
});

Deno.test("TimestampUnwrapper: several wraps in a row keep counting, values are read as unsigned", () => {
  const u = new TimestampUnwrapper();
  let expected = 0;
  assert.equal(u.unwrap(0), 0);
  for (let i = 0; i < 12; i++) {
    expected += 2 ** 30;
    assert.equal(u.unwrap(expected % 2 ** 32), expected);
  }
  assert.equal(u.unwrap(-1 | 0), 3 * 2 ** 32 - 1, "a negative int32 is its unsigned value");
});
