import assert from "node:assert/strict";
import { BitReader, BitWriter, escapeRbsp, unescapeRbsp } from "../../../media/codec/bits.ts";
import { fuzzParser } from "../../_util/fuzz.ts";

Deno.test("BitReader reads fixed-width fields across byte boundaries", () => {
  const r = new BitReader(new Uint8Array([0b1010_1100, 0b0101_0011, 0xff, 0, 0x12, 0x34]));
  assert.equal(r.readBit(), 1);
  assert.equal(r.readBits(3), 0b010);
  assert.equal(r.readBits(8), 0b1100_0101);
  assert.equal(r.readFlag(), false);
  assert.equal(r.bitsLeft, 48 - 13);
  r.skipBits(3);
  assert.equal(r.position, 16);
  assert.equal(r.readBits(32), 0xff001234);
  assert.equal(r.bitsLeft, 0);
  assert.throws(() => r.readBit(), RangeError);
  assert.throws(() => new BitReader(new Uint8Array(1)).readBits(9), RangeError);
  assert.throws(() => new BitReader(new Uint8Array(8)).readBits(33), RangeError);
});

Deno.test("exp-Golomb codes match the spec table (H.264 9.1)", () => {
  // codeNum: bit string
  const table: [number, string][] = [
    [0, "1"],
    [1, "010"],
    [2, "011"],
    [3, "00100"],
    [6, "00111"],
    [7, "0001000"],
    [254, "000000011111111"],
  ];
  for (const [value, bits] of table) {
    const padded = bits.padEnd(Math.ceil(bits.length / 8) * 8, "0");
    const bytes = new Uint8Array(padded.length / 8);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(padded.slice(i * 8, i * 8 + 8), 2);
    const r = new BitReader(bytes);
    assert.equal(r.readUE(), value, bits);
    assert.equal(r.position, bits.length);
    const w = new BitWriter();
    w.writeUE(value);
    assert.deepEqual(w.bytes(), bytes);
  }
  // se(v): codeNum k maps to (-1)^(k+1) * ceil(k/2)
  const w = new BitWriter();
  for (const v of [0, 1, -1, 2, -2, 100, -100]) w.writeSE(v);
  const r = new BitReader(w.bytes());
  for (const v of [0, 1, -1, 2, -2, 100, -100]) assert.equal(r.readSE(), v);
});

Deno.test("readUE rejects codes longer than 32 bits", () => {
  assert.throws(() => new BitReader(new Uint8Array(8)).readUE(), /longer than 32 bits/);
  assert.throws(() => new BitReader(new Uint8Array([0, 0])).readUE(), RangeError);
});

Deno.test("unescapeRbsp removes emulation prevention bytes only", () => {
  const plain = new Uint8Array([1, 2, 0, 0, 1]);
  assert.equal(unescapeRbsp(plain), plain);
  assert.deepEqual(
    unescapeRbsp(new Uint8Array([0x67, 0, 0, 3, 0, 0, 0, 3, 1, 0, 3])),
    new Uint8Array([0x67, 0, 0, 0, 0, 0, 1, 0, 3]),
  );
  assert.deepEqual(
    unescapeRbsp(new Uint8Array([0, 0, 3, 3, 0, 0, 3])),
    new Uint8Array([0, 0, 3, 0, 0]),
  );
});

Deno.test("escapeRbsp and unescapeRbsp are inverse", () => {
  const rbsp = new Uint8Array([0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0]);
  const escaped = escapeRbsp(rbsp);
  assert.deepEqual(
    escaped,
    new Uint8Array([0, 0, 3, 0, 0, 3, 1, 0, 0, 3, 2, 0, 0, 3, 3, 0, 0, 4, 0, 0]),
  );
  assert.deepEqual(unescapeRbsp(escaped), rbsp);
});

Deno.test("fuzz: BitReader exp-Golomb reads end in RangeError or values", () => {
  fuzzParser("BitReader", (data) => {
    const r = new BitReader(unescapeRbsp(data));
    for (let i = 0; i < 100; i++) r.readSE();
  }, new Uint8Array([0x40, 0x21, 0x00, 0x03, 0x88]));
});
