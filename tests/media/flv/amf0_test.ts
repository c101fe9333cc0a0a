import assert from "node:assert/strict";
import {
  AMF0_MAX_DEPTH,
  Amf0Reader,
  type Amf0Value,
  decodeAmf0,
  encodeAmf0,
} from "../../../media/flv/amf0.ts";
import { fuzzParser } from "../../_util/fuzz.ts";

const str = (s: string) => [...new TextEncoder().encode(s)];
const u16 = (n: number) => [n >> 8, n & 0xff];

/** Golden bytes from the AMF0 specification's type encodings. */
const golden: [string, Amf0Value, number[]][] = [
  ["number 1.5", 1.5, [0x00, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]],
  ["boolean true", true, [0x01, 0x01]],
  ["boolean false", false, [0x01, 0x00]],
  ["string", "live", [0x02, ...u16(4), ...str("live")]],
  ["utf-8 string", "é", [0x02, 0, 2, 0xc3, 0xa9]],
  ["null", null, [0x05]],
  ["undefined", undefined, [0x06]],
  ["object", { app: "live", n: 0 }, [
    0x03,
    ...u16(3),
    ...str("app"),
    0x02,
    ...u16(4),
    ...str("live"),
    ...u16(1),
    ...str("n"),
    0x00,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0x09,
  ]],
  ["ECMA array", new Map([["w", true]]), [
    0x08,
    0,
    0,
    0,
    1,
    ...u16(1),
    ...str("w"),
    0x01,
    1,
    0,
    0,
    0x09,
  ]],
  ["strict array", [null, "a"], [0x0a, 0, 0, 0, 2, 0x05, 0x02, 0, 1, ...str("a")]],
  ["date", new Date(1000), [0x0b, 0x40, 0x8f, 0x40, 0, 0, 0, 0, 0, 0, 0]],
];

Deno.test("AMF0 golden bytes both ways", () => {
  for (const [name, value, bytes] of golden) {
    assert.deepEqual(encodeAmf0(value), new Uint8Array(bytes), name);
    assert.deepEqual(decodeAmf0(new Uint8Array(bytes)), [value], name);
  }
});

Deno.test("AMF0 round trips nested values, long strings and command sequences", () => {
  const long = "x".repeat(70000);
  const values: Amf0Value[] = [
    "connect",
    1,
    {
      app: "live",
      tcUrl: "rtmp://127.0.0.1/live",
      fpad: false,
      capabilities: 239,
      nested: { list: [1, "two", { three: 3 }, new Map<string, Amf0Value>([["k", null]])] },
    },
    new Map<string, Amf0Value>([["duration", 0], ["width", 320], ["encoder", "Lavf"]]),
    -0.25,
    Number.MAX_SAFE_INTEGER,
    long,
    undefined,
  ];
  const bytes = encodeAmf0(...values);
  assert.deepEqual(decodeAmf0(bytes), values);
  assert.deepEqual(encodeAmf0(long).subarray(0, 5), new Uint8Array([0x0c, 0, 1, 0x11, 0x70]));
  assert.equal(encodeAmf0("x".repeat(65535))[0], 0x02);
  const r = new Amf0Reader(bytes);
  assert.equal(r.read(), "connect");
  assert.equal(r.offset, 10);
});

Deno.test("AMF0 decodes references, typed objects and unsupported; ignores ECMA counts", () => {
  // strict array [obj, ref 1] where obj = {a: 1}; table: 0 = array, 1 = obj
  const bytes = new Uint8Array([
    0x0a,
    0,
    0,
    0,
    2,
    0x03,
    ...u16(1),
    ...str("a"),
    0x01,
    1,
    0,
    0,
    0x09,
    0x07,
    0,
    1,
  ]);
  const [arr] = decodeAmf0(bytes) as [Amf0Value[]];
  assert.deepEqual(arr[0], { a: true });
  assert.equal(arr[1], arr[0]);
  const typed = new Uint8Array([
    0x10,
    ...u16(3),
    ...str("Foo"),
    ...u16(1),
    ...str("b"),
    0x05,
    0,
    0,
    0x09,
  ]);
  assert.deepEqual(decodeAmf0(typed), [{ b: null }]);
  assert.deepEqual(decodeAmf0(new Uint8Array([0x0d])), [undefined]);
  // ECMA array whose count (7) disagrees with its entries (1)
  assert.deepEqual(
    decodeAmf0(new Uint8Array([0x08, 0, 0, 0, 7, ...u16(1), ...str("x"), 0x05, 0, 0, 0x09])),
    [new Map([["x", null]])],
  );
});

Deno.test("AMF0 errors are clear RangeErrors", () => {
  assert.throws(() => decodeAmf0(new Uint8Array([0x00, 1, 2])), /truncated at byte 1/);
  assert.throws(() => decodeAmf0(new Uint8Array([0x07, 0, 0])), /reference 0/);
  assert.throws(() => decodeAmf0(new Uint8Array([0x11, 0x06])), /AMF3/);
  assert.throws(() => decodeAmf0(new Uint8Array([0x42])), /unknown type marker 0x42/);
  assert.throws(() => decodeAmf0(new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff])), /overruns/);
  const deep = new Uint8Array(2 + 5 * (AMF0_MAX_DEPTH + 2)).fill(0);
  for (let i = 0; i <= AMF0_MAX_DEPTH + 1; i++) deep.set([0x0a, 0, 0, 0, 1], i * 5);
  assert.throws(() => decodeAmf0(deep), /nesting deeper/);
  const cycle: Amf0Value[] = [];
  cycle.push(cycle);
  assert.throws(() => encodeAmf0(cycle), /nesting deeper/);
  assert.throws(() => encodeAmf0((() => 1) as unknown as Amf0Value), /cannot encode a function/);
});

Deno.test("fuzz: AMF0 decoder returns or throws RangeError", () => {
  const sample = encodeAmf0(
    "onMetaData",
    new Map<string, Amf0Value>([["width", 320], ["list", [1, { a: "b" }]], ["when", new Date(0)]]),
  );
  fuzzParser("decodeAmf0", decodeAmf0, sample, { randomCount: 5000 });
});
