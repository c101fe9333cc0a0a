import assert from "node:assert/strict";
import {
  annexBToLengthPrefixed,
  hasNalUnit,
  lengthPrefixedFromNalUnits,
  splitAnnexB,
  splitLengthPrefixed,
  toFourByteLengths,
  writeAnnexB,
} from "../../../media/codec/nal.ts";
import { fuzzParser, prng, randomBytes } from "../../_util/fuzz.ts";

const sps = new Uint8Array([0x67, 0x42, 0xc0, 0x1e]);
const pps = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
const idr = new Uint8Array([0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01]);

Deno.test("length-prefixed: split and join are inverse", () => {
  const au = lengthPrefixedFromNalUnits([sps, pps, idr]);
  assert.deepEqual(
    au,
    new Uint8Array([
      ...[0, 0, 0, 4, ...sps],
      ...[0, 0, 0, 4, ...pps],
      ...[0, 0, 0, 7, ...idr],
    ]),
  );
  assert.deepEqual(splitLengthPrefixed(au), [sps, pps, idr]);
  assert.deepEqual(splitLengthPrefixed(new Uint8Array(0)), []);
  assert.throws(() => splitLengthPrefixed(au.subarray(0, au.length - 1)), /overruns/);
  assert.throws(() => splitLengthPrefixed(new Uint8Array([0, 0, 0])), /truncated/);
});

Deno.test("Annex-B: 3- and 4-byte start codes, leading bytes and trailing zeros", () => {
  const data = new Uint8Array([
    0xaa, // garbage before the first start code
    ...[0, 0, 0, 1, ...sps],
    ...[0, 0, 1, ...pps, 0, 0], // trailing_zero_8bits
    ...[0, 0, 0, 1, ...idr],
  ]);
  assert.deepEqual(splitAnnexB(data), [sps, pps, idr]);
  assert.deepEqual(splitAnnexB(new Uint8Array([0, 0, 1])), []);
  assert.deepEqual(splitAnnexB(new Uint8Array([1, 2, 3])), []);
  assert.deepEqual(annexBToLengthPrefixed(data), lengthPrefixedFromNalUnits([sps, pps, idr]));
});

Deno.test("writeAnnexB replaces lengths by start codes without touching the input", () => {
  const au = lengthPrefixedFromNalUnits([sps, idr]);
  const copy = au.slice();
  const out = new Uint8Array(au.length + 3).fill(0xee);
  assert.equal(writeAnnexB(au, out, 2), au.length);
  assert.deepEqual(au, copy);
  assert.deepEqual(out, new Uint8Array([0xee, 0xee, 0, 0, 0, 1, ...sps, 0, 0, 0, 1, ...idr, 0xee]));
  assert.deepEqual(splitAnnexB(out.subarray(2, 2 + au.length)), [sps, idr]);
  assert.throws(() => writeAnnexB(au, out, 4), RangeError);
  assert.throws(() => writeAnnexB(au.subarray(0, 6), new Uint8Array(6), 0), /overruns/);
});

Deno.test("toFourByteLengths converts 1-, 2- and 3-byte lengths", () => {
  const four = lengthPrefixedFromNalUnits([sps, idr]);
  assert.equal(toFourByteLengths(four, 4), four);
  assert.throws(() => toFourByteLengths(four.subarray(0, 14), 4), /overruns/);
  assert.deepEqual(toFourByteLengths(new Uint8Array([4, ...sps, 7, ...idr]), 1), four);
  assert.deepEqual(toFourByteLengths(new Uint8Array([0, 4, ...sps, 0, 7, ...idr]), 2), four);
  assert.deepEqual(toFourByteLengths(new Uint8Array([0, 0, 4, ...sps, 0, 0, 7, ...idr]), 3), four);
  assert.throws(() => toFourByteLengths(new Uint8Array([0, 9, 1]), 2), /overruns/);
  assert.throws(() => toFourByteLengths(new Uint8Array([0]), 2), /truncated/);
  assert.throws(() => toFourByteLengths(four, 5), /length size/);
});

Deno.test("hasNalUnit finds a header and tolerates damage", () => {
  const au = lengthPrefixedFromNalUnits([sps, idr]);
  assert.equal(hasNalUnit(au, (b) => (b & 0x1f) === 5), true);
  assert.equal(hasNalUnit(au, (b) => (b & 0x1f) === 8), false);
  assert.equal(hasNalUnit(new Uint8Array([0, 0, 0, 9, 0x65]), () => true), false);
});

Deno.test("fuzz: NAL framing functions return or throw RangeError", () => {
  const au = lengthPrefixedFromNalUnits([sps, pps, idr]);
  fuzzParser("splitLengthPrefixed", splitLengthPrefixed, au);
  fuzzParser("toFourByteLengths/2", (d) => toFourByteLengths(d, 2), new Uint8Array([0, 4, ...sps]));
  fuzzParser("toFourByteLengths/4", (d) => toFourByteLengths(d, 4), au);
  fuzzParser("writeAnnexB", (d) => writeAnnexB(d, new Uint8Array(d.length), 0), au);
  const rand = prng(7);
  for (let i = 0; i < 500; i++) {
    const data = randomBytes(rand, (rand() * 200) | 0);
    // every split piece is non-empty, inside data, and contains no start code
    for (const nal of splitAnnexB(data)) {
      assert.ok(nal.length > 0 && nal[nal.length - 1] !== 0);
      for (let j = 0; j + 2 < nal.length; j++) {
        assert.ok(!(nal[j] === 0 && nal[j + 1] === 0 && nal[j + 2] === 1));
      }
    }
  }
});
