import assert from "node:assert/strict";
import {
  LatmDepacketizer,
  type LatmParams,
  latmParams,
  readStreamMuxConfig,
  RtpPacket,
} from "../../../media/rtp/mod.ts";
import { parseAudioSpecificConfig } from "../../../media/codec/aac.ts";
import { BitWriter } from "../../../media/codec/bits.ts";
import { flipBit, fuzzParser, prng, randomBytes } from "../../_util/fuzz.ts";
import { hex, rtp, unhex } from "./_util.ts";

/** GStreamer 1.22 rtpmp4apay's SDP for 44.1 kHz mono AAC LC (avenc_aac). */
const GST_FMTP = { cpresent: "0", config: "40002410adca00" };

/** The first three RTP packets rtpmp4apay sent for that stream, whole. */
const GST_PACKETS = [
  "80e0040c519d6b9a2d53e10fff2fde02004c61766335392e33372e31303000024cab5d28f05d5ab7b73ed2e5d5cbdae2b514a2f71f511020255e391915c950904654f24f8a4643890e391982ced92ac75e4f3bada2f024cd92b1f0b95ebdad3eb99b8146ceb00928c45692437116032132cd35d44bb43fdecea3c083748ec60dd24b3837483fa59d4190877686de1f60f33716ee2dc3a3b74e6aefde6adfbc6da477f716f0ed9bbab62ebed7b98b44e2d9e716d873ac8ec589ccbaaf4aeabc5713c7b7ddaba4f56df795703bf6d3bb6d3bb673b16c39d6638acc71585b35770d3b6e9da291a2aec950c950c950c93cd148d49ac1317a796502ca059256546551954655195269496a4b526549948ca665232a4a5252b1a52654995470519526549952528528524604604604608528450a50a50c08c08c08c10a50a5c0",
  "80e0040d519d6f992d53e10fff1801469adad24de2cc54e2cc54e2ea72d7d5f9d3738be3577ffa75f77e20d5eb5fff4fcfdfe2ec6b57c7ffd3f3fbf52d35ad5f0323d4c47189a30f06063c46640f20ef16a97c79a5303d11335a417389244a5941dad560871a6d4d532d2488973a6b4cffc6d0d76efca424181aee412120c0c0ceee121270181819ddc242424181819ddc2424e030303033bbb8484849c06060653bbb8484ccf5edf4bad5151d9ff0abbcfd20c94a295491b9a56b3b2aa68b53635551a2d2294d2892aaa8b4c830368606feb2120c0c0c0c12124af39b9541212120d79c1a550484848312bc0c6e509090906bd9b834aa70909092a0c4b37069657090909c9cf2b0df6b9f6f13578795df29d1334d34d34d31c9a6099a63934d31c9a69b80",
  "80e0040e519d73992d53e10fff0a014e9bb6cb44e6d43443ad434e5c7efc5a5eb577c7ffd2fbfd5d935ad5ebffe97c7e2ecbbd6af8101e6c6e75cb9b97f06d29a1fc98cb1e18618ac7861862a98e00c0cee12120c0cee12120c0cee12120c0c0ceee1212120c0c0ceee1212120c0c0ceee1212120c0c0ccbbbb848484b40c0c0d9bbbb848484af90f7934cb83c8dba62e834cab4219dda1dadb5949860b59d29185535a491bd7be4c0c12139b830304dd3f9ff3d61fcff9ff3f86b0fe7fcff9fc3587f3fe7fcff96b987f3fe7fcfcff0d607f3fe7e76b98bf8525c3bf3252e76a2e756ec6946268b518965ad1213a981824e030304cc0c0c1332c1818904cd30303030484cc0c0c0c12726706060624127267060606cf8",
];

function params(fmtp: Record<string, string>): LatmParams {
  const p = latmParams(fmtp);
  if (typeof p === "string") throw new Error(p);
  return p;
}

function collect(p: LatmParams, clockRate = 44100) {
  const units: [number, Uint8Array][] = [];
  const d = new LatmDepacketizer(p, clockRate, (ts, au) => units.push([ts, au]));
  return { units, d };
}

/** StreamMuxConfig bits for one AAC LC stream: version 0, `subFrames` per element. */
function writeStreamMuxConfig(w: BitWriter, subFrames = 1, otherDataBits = 0): void {
  w.writeBits(0, 1); // audioMuxVersion
  w.writeBits(1, 1); // allStreamsSameTimeFraming
  w.writeBits(subFrames - 1, 6);
  w.writeBits(0, 4); // numProgram
  w.writeBits(0, 3); // numLayer
  w.writeBits(0x1190, 16); // AudioSpecificConfig: AAC LC, 48 kHz, stereo
  w.writeBits(0, 3); // frameLengthType
  w.writeBits(0xff, 8); // latmBufferFullness
  if (otherDataBits > 0) {
    w.writeBits(1, 1);
    w.writeBits(0, 1); // otherDataLenEsc
    w.writeBits(otherDataBits, 8);
  } else {
    w.writeBits(0, 1);
  }
  w.writeBits(0, 1); // crcCheckPresent
}

function writeUnit(w: BitWriter, au: Uint8Array): void {
  let n = au.length;
  while (n >= 255) {
    w.writeBits(255, 8);
    n -= 255;
  }
  w.writeBits(n, 8);
  for (const b of au) w.writeBits(b, 8);
}

Deno.test("rtp latm: GStreamer's StreamMuxConfig gives its AudioSpecificConfig", () => {
  // Its AudioSpecificConfig carries ffmpeg's SBR signalling (sync word 0x2b7, no SBR), and
  // the fields after it are cut off: read as zero, as ffmpeg does.
  const { config } = readStreamMuxConfig(unhex(GST_FMTP.config), 0, { truncatedTail: true });
  assert.equal(hex(config.audioSpecificConfig), "120856e500");
  assert.throws(() => readStreamMuxConfig(unhex(GST_FMTP.config), 0), RangeError);
  assert.deepEqual(parseAudioSpecificConfig(config.audioSpecificConfig), {
    objectType: 2,
    samplingFrequencyIndex: 4,
    sampleRate: 44100,
    channelConfiguration: 1,
    samplesPerFrame: 1024,
  });
  assert.equal(config.subFrames, 1);
  assert.equal(config.otherDataBits, 0);
  assert.equal(config.crcPresent, false);
});

Deno.test("rtp latm: golden rtpmp4apay packets become access units one frame apart", () => {
  const { units, d } = collect(params(GST_FMTP));
  for (const p of GST_PACKETS) d.push(new RtpPacket().parse(unhex(p)));
  assert.equal(d.dropped, 0);
  assert.equal(hex(d.config!), "120856e500");
  const payloads = GST_PACKETS.map((p) => unhex(p).subarray(12));
  assert.deepEqual(units.map(([, au]) => au.length), payloads.map((p) => p.length - 2));
  // each access unit is the payload after its length bytes (255 + n)
  units.forEach(([, au], i) => assert.equal(hex(au), hex(payloads[i].subarray(2))));
  // GStreamer stamps its 1024-sample frames 1023 ticks apart (its own rounding): kept as sent
  const stamps = GST_PACKETS.map((p) => new RtpPacket().parse(unhex(p)).timestamp);
  assert.deepEqual(units.map(([ts]) => ts), stamps);
});

Deno.test("rtp latm: in-band configs (cpresent=1), unaligned units, units before a config", () => {
  const au1 = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const au2 = unhex("a1b2c3");
  const { units, d } = collect(params({}), 48000);
  assert.equal(d.config, undefined);
  // useSameStreamMux=1 before any config: dropped, nothing emitted
  const early = new BitWriter();
  early.writeBits(1, 1);
  writeUnit(early, au2);
  d.push(rtp(1, 0, true, early.bytes()));
  assert.equal(d.dropped, 1);
  // a config in band, then a unit starting one bit past a byte boundary
  const first = new BitWriter();
  first.writeBits(0, 1);
  writeStreamMuxConfig(first);
  writeUnit(first, au1);
  d.push(rtp(2, 1024, true, first.bytes()));
  const same = new BitWriter();
  same.writeBits(1, 1);
  writeUnit(same, au2);
  d.push(rtp(3, 2048, true, same.bytes()));
  assert.equal(d.dropped, 1);
  assert.equal(hex(d.config!), "1190");
  assert.deepEqual(units.map(([ts, au]) => [ts, hex(au)]), [[1024, hex(au1)], [2048, hex(au2)]]);
});

Deno.test("rtp latm: several subframes and other data per element", () => {
  const w = new BitWriter();
  w.writeBits(0, 1);
  writeStreamMuxConfig(w, 2, 16);
  writeUnit(w, unhex("0102"));
  writeUnit(w, unhex("030405"));
  w.writeBits(0xffff, 16); // other data, skipped
  const { units, d } = collect(params({}), 48000);
  d.push(rtp(7, 90000, true, w.bytes()));
  assert.equal(d.dropped, 0);
  assert.deepEqual(units.map(([ts, au]) => [ts, hex(au)]), [[90000, "0102"], [91024, "030405"]]);
});

Deno.test("rtp latm: an element over two packets, and one whose first packet was lost", () => {
  const payload = unhex(GST_PACKETS[0]).subarray(12);
  const { units, d } = collect(params(GST_FMTP));
  d.push(rtp(10, 5000, false, payload.subarray(0, 100)));
  d.push(rtp(11, 5000, true, payload.subarray(100)));
  assert.equal(units.length, 1);
  assert.equal(hex(units[0][1]), hex(payload.subarray(2)));
  d.push(rtp(12, 6024, false, payload.subarray(0, 100)));
  d.push(rtp(14, 6024, true, payload.subarray(100))); // 13 lost: the element is incomplete
  assert.equal(units.length, 1);
  assert.equal(d.lost, 1);
  assert.equal(d.dropped, 2); // the incomplete start, and the tail that is no element
  d.push(rtp(15, 7048, true, payload)); // the next element is whole again
  assert.equal(units.length, 2);
  assert.deepEqual(units[1], [7048, payload.subarray(2)]);
});

Deno.test("rtp latm: fmtp that cannot be carried gives a reason", () => {
  assert.equal(typeof latmParams({ cpresent: "0" }), "string");
  assert.equal(typeof latmParams({ cpresent: "2" }), "string");
  assert.equal(typeof latmParams({ config: "4000241" }), "string");
  assert.equal(typeof latmParams({ config: "zz" }), "string");
  // numProgram 1
  assert.match(String(latmParams({ config: "40102410adca00" })), /programs/);
  assert.equal(params({}).configInBand, true);
  assert.equal(params(GST_FMTP).configInBand, false);
});

Deno.test("rtp latm: fuzz, hostile payloads are dropped and never throw", () => {
  const rand = prng(6416);
  const golden = unhex(GST_PACKETS[1]).subarray(12);
  for (const inBand of [false, true]) {
    const { units, d } = collect(inBand ? params({}) : params(GST_FMTP));
    for (let i = 0; i < 3000; i++) {
      const payload = i % 2 ? flipBit(golden, Math.floor(rand() * golden.length * 8)) : randomBytes(
        rand,
        Math.floor(rand() * 400),
      );
      d.push(rtp(i, i * 1024, rand() < 0.8, payload));
    }
    for (const [, au] of units) assert.ok(au.length <= 65536);
    assert.ok(d.dropped > 0);
  }
});

Deno.test("rtp latm: fuzz, StreamMuxConfig and fmtp readers return or throw RangeError", () => {
  const seed = unhex("40002410adca00");
  fuzzParser("readStreamMuxConfig", (d) => readStreamMuxConfig(d, 0), seed);
  fuzzParser(
    "readStreamMuxConfig tail",
    (d) => readStreamMuxConfig(d, 0, { truncatedTail: true }),
    seed,
  );
  fuzzParser("latmParams", (d) => latmParams({ config: hex(d) }), seed);
});
