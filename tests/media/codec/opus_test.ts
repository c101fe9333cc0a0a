import assert from "node:assert/strict";
import { buildOpusHead, opusPacketSamples, parseOpusHead } from "../../../media/codec/opus.ts";
import { fuzzParser } from "../../_util/fuzz.ts";

/** RFC 7845 5.1: "OpusHead", version 1, 2 ch, pre-skip 312, 48000 Hz, gain 0, family 0. */
const STEREO = new Uint8Array([
  ...[0x4f, 0x70, 0x75, 0x73, 0x48, 0x65, 0x61, 0x64],
  1,
  2,
  ...[0x38, 0x01],
  ...[0x80, 0xbb, 0x00, 0x00],
  ...[0x00, 0x00],
  0,
]);

Deno.test("OpusHead: golden bytes both ways", () => {
  const head = parseOpusHead(STEREO);
  assert.deepEqual(head, {
    version: 1,
    channels: 2,
    preSkip: 312,
    inputSampleRate: 48000,
    outputGain: 0,
    mappingFamily: 0,
  });
  assert.deepEqual(buildOpusHead(head), STEREO);
});

Deno.test("OpusHead: family 1 mapping table and negative gain round trip", () => {
  const head = {
    channels: 6,
    preSkip: 3840,
    inputSampleRate: 44100,
    outputGain: -256,
    mappingFamily: 1,
    streamCount: 4,
    coupledCount: 2,
    channelMapping: new Uint8Array([0, 4, 1, 2, 3, 5]),
  };
  const bytes = buildOpusHead(head);
  assert.equal(bytes.length, 27);
  assert.deepEqual(bytes.subarray(16, 21), new Uint8Array([0x00, 0xff, 1, 4, 2]));
  assert.deepEqual(parseOpusHead(bytes), { version: 1, ...head });
  assert.throws(() => parseOpusHead(bytes.subarray(0, 26)), /truncated/);
  assert.throws(() => buildOpusHead({ channels: 3, preSkip: 0, inputSampleRate: 0 }), /1 or 2/);
  assert.throws(() => buildOpusHead({ ...head, channelMapping: new Uint8Array(2) }), /mapping/);
  const bad = STEREO.slice();
  bad[0] = 0x6f;
  assert.throws(() => parseOpusHead(bad), /magic/);
  bad.set(STEREO);
  bad[8] = 0x10;
  assert.throws(() => parseOpusHead(bad), /version/);
});

Deno.test("opusPacketSamples follows the TOC byte (RFC 6716 3.1)", () => {
  const table: [number[], number][] = [
    [[0 << 3], 480], // SILK NB 10 ms
    [[3 << 3], 2880], // SILK NB 60 ms
    [[(3 << 3) | 1], 5760], // two 60 ms frames
    [[13 << 3], 960], // Hybrid SWB 20 ms
    [[16 << 3], 120], // CELT NB 2.5 ms
    [[(31 << 3) | 2], 1920], // CELT FB 20 ms, 2 frames (code 2)
    [[(31 << 3) | 3, 0x03], 2880], // code 3, 3 frames of 20 ms
    [[(16 << 3) | 3, 0x30], 5760], // 48 frames of 2.5 ms
  ];
  for (const [bytes, samples] of table) {
    assert.equal(opusPacketSamples(new Uint8Array(bytes)), samples, bytes.join(","));
  }
  assert.throws(() => opusPacketSamples(new Uint8Array(0)), /empty/);
  assert.throws(() => opusPacketSamples(new Uint8Array([(31 << 3) | 3])), /frame count/);
  assert.throws(() => opusPacketSamples(new Uint8Array([(31 << 3) | 3, 0])), /0 frames/);
  assert.throws(() => opusPacketSamples(new Uint8Array([(3 << 3) | 3, 3])), /120 ms/);
});

Deno.test("fuzz: OpusHead and TOC parsers return or throw RangeError", () => {
  fuzzParser("parseOpusHead", parseOpusHead, STEREO, { keepPrefix: 8 });
  const six = buildOpusHead({
    channels: 6,
    preSkip: 0,
    inputSampleRate: 0,
    mappingFamily: 1,
    streamCount: 4,
    coupledCount: 2,
    channelMapping: new Uint8Array([0, 4, 1, 2, 3, 5]),
  });
  fuzzParser("parseOpusHead/family1", parseOpusHead, six, { keepPrefix: 8 });
  fuzzParser("opusPacketSamples", opusPacketSamples, new Uint8Array([0xfb, 0x03]));
});
