import assert from "node:assert/strict";
import {
  avcConfigFromFmtp,
  avcFmtp,
  H264Depacketizer,
  H264Packetizer,
} from "../../../media/rtp/mod.ts";
import { splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { parseAvcConfig } from "../../../media/codec/h264.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { au, Collect, hex, rtp, unhex } from "./_util.ts";

const SPS = unhex("6742c01eda0507e4");
const PPS = unhex("68ce3c80");

function depacketize(payloads: { marker: boolean; payload: Uint8Array }[], ts = 3000) {
  const units: { ts: number; data: Uint8Array }[] = [];
  const d = new H264Depacketizer((timestamp, data) => units.push({ ts: timestamp, data }));
  payloads.forEach((p, i) => d.push(rtp(100 + i, ts, p.marker, p.payload)));
  return { units, d };
}

// Golden payloads built from the structures of RFC 6184 5.6 (single NAL unit),
// 5.7.1 (STAP-A: F|NRI|24, then 16-bit size and NAL unit per unit) and 5.8 (FU-A:
// indicator F|NRI|28, FU header S|E|R|type, then the NAL unit body without its header).
const goldens: { name: string; au: Uint8Array; max: number; packets: [boolean, string][] }[] = [
  {
    name: "single NAL unit",
    au: au(unhex("65 88 84 00")),
    max: 1200,
    packets: [[true, "65888400"]],
  },
  {
    name: "STAP-A of SPS and PPS, then a single IDR",
    au: au(SPS, PPS, unhex("65 88 84 00 33")),
    max: 19,
    packets: [[false, "78 0008 6742c01eda0507e4 0004 68ce3c80"], [true, "6588840033"]],
  },
  {
    name: "FU-A start, middle, end (NRI 3, IDR)",
    au: au(unhex("65 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13")),
    max: 16,
    packets: [
      [false, "7c 85 0102030405060708090a0b0c0d0e"],
      [true, "7c 45 0f10111213"],
    ],
  },
  {
    name: "FU-A of a non-reference slice keeps NRI 0",
    au: au(Uint8Array.from({ length: 40 }, (_, i) => (i === 0 ? 0x01 : i))),
    max: 16,
    packets: [
      [false, "1c 81 0102030405060708090a0b0c0d0e"],
      [false, "1c 01 0f101112131415161718191a1b1c"],
      [true, "1c 41 1d1e1f2021222324252627"],
    ],
  },
];

for (const g of goldens) {
  Deno.test(`rtp h264: ${g.name}: packetize to golden bytes and back`, () => {
    const sink = new Collect();
    new H264Packetizer(g.max).packetize(g.au, sink);
    assert.deepEqual(
      sink.packets.map((p) => [p.marker, hex(p.payload)]),
      g.packets.map(([m, h]) => [m, h.replace(/\s+/g, "")]),
    );
    for (const p of sink.packets) assert.ok(p.payload.length <= g.max);
    const { units, d } = depacketize(
      g.packets.map(([marker, h]) => ({ marker, payload: unhex(h) })),
    );
    assert.equal(d.dropped, 0);
    assert.deepEqual(units.map((u) => hex(u.data)), [hex(g.au)]);
    assert.equal(units[0].ts, 3000);
  });
}

Deno.test("rtp h264: parameter sets are prefixed to an access unit", () => {
  const sink = new Collect();
  new H264Packetizer(1200).packetize(au(unhex("65 88 84")), sink, [SPS, PPS]);
  assert.equal(sink.packets.length, 1);
  assert.equal(
    hex(sink.packets[0].payload),
    "78" + "0008" + hex(SPS) + "0004" + hex(PPS) + "0003658884",
  );
});

Deno.test("rtp h264: random access units survive packetize → depacketize", () => {
  const rand = prng(6184);
  for (let round = 0; round < 200; round++) {
    const nals: Uint8Array[] = [];
    const count = 1 + Math.floor(rand() * 5);
    for (let i = 0; i < count; i++) {
      const nal = randomBytes(rand, 2 + Math.floor(rand() ** 3 * 6000));
      nal[0] = (nal[0] & 0x60) | (1 + Math.floor(rand() * 23)); // F = 0, types 1..23
      nals.push(nal);
    }
    const max = 20 + Math.floor(rand() * 1400);
    const sink = new Collect();
    new H264Packetizer(max).packetize(au(...nals), sink);
    assert.ok(
      sink.packets.every((p, i) =>
        p.payload.length <= max && p.marker === (i === sink.packets.length - 1)
      ),
    );
    const { units, d } = depacketize(sink.packets);
    assert.equal(d.dropped, 0, `round ${round}`);
    assert.equal(units.length, 1);
    assert.deepEqual(splitLengthPrefixed(units[0].data).map(hex), nals.map(hex), `round ${round}`);
  }
});

Deno.test("rtp h264: access units end at the marker bit or at a new timestamp", () => {
  const units: [number, string][] = [];
  const d = new H264Depacketizer((ts, data) => units.push([ts, hex(data)]));
  d.push(rtp(1, 100, false, unhex("0601")));
  d.push(rtp(2, 100, false, unhex("4101")));
  d.push(rtp(3, 200, false, unhex("4102"))); // no marker on the previous AU
  d.push(rtp(4, 200, true, unhex("4103")));
  assert.deepEqual(units, [
    [100, "000000020601" + "000000024101"],
    [200, "000000024102" + "000000024103"],
  ]);
});

Deno.test("rtp h264: bad packets are dropped and counted, good ones still flow", () => {
  const units: string[] = [];
  const d = new H264Depacketizer((_ts, data) => units.push(hex(data)));
  let seq = 0;
  const push = (marker: boolean, payload: string, ts = 0) =>
    d.push(rtp(seq++, ts, marker, unhex(payload)));
  push(true, "7c 05 aabb"); // FU-A middle without a start
  push(true, "7c 45 aabb"); // FU-A end without a start
  push(true, "78 0008 6742c01e"); // STAP-A whose size overruns
  push(true, "78 00"); // STAP-A with a truncated size field
  push(true, "78 0000"); // STAP-A with a zero size
  push(true, "79 0001 65"); // STAP-B (interleaved mode only)
  push(true, "7d 85 01"); // FU-B
  push(true, "60"); // reserved type 0
  push(true, ""); // empty payload
  push(true, "7c 85"); // FU-A without data
  assert.equal(d.dropped, 10);
  assert.deepEqual(units, []);
  // a start whose end never comes: the marker ends the AU and the fragment is dropped
  push(false, "65 01", 10);
  push(true, "7c 85 0102", 10);
  assert.equal(d.dropped, 11);
  assert.deepEqual(units, ["000000026501"]);
  // a sequence gap inside a fragmented NAL unit drops it
  push(false, "7c 85 0102", 20);
  seq++;
  push(true, "7c 45 0304", 20);
  assert.equal(d.lost, 1);
  assert.equal(d.dropped, 13);
  // and then a clean one
  push(false, "7c 85 0102", 30);
  push(true, "7c 45 0304", 30);
  assert.deepEqual(units.at(-1), "00000005" + "6501020304");
});

Deno.test("rtp h264: late and duplicate packets are dropped", () => {
  const units: string[] = [];
  const d = new H264Depacketizer((_ts, data) => units.push(hex(data)));
  d.push(rtp(10, 0, true, unhex("6501")));
  d.push(rtp(10, 0, true, unhex("6502")));
  d.push(rtp(9, 0, true, unhex("6503")));
  d.push(rtp(11, 0, true, unhex("6504")));
  assert.deepEqual(units, ["000000026501", "000000026504"]);
  assert.equal(d.dropped, 2);
});

Deno.test("rtp h264: oversized access units are dropped whole", () => {
  const units: number[] = [];
  const d = new H264Depacketizer((_ts, data) => units.push(data.length), {
    maxAccessUnitBytes: 100,
  });
  for (let i = 0; i < 5; i++) d.push(rtp(i, 0, i === 4, new Uint8Array(30).fill(0x41)));
  d.push(rtp(5, 1, true, unhex("4101")));
  assert.deepEqual(units, [6]);
  assert.equal(d.dropped, 1);
});

Deno.test("rtp h264: bounded fuzz of the depacketizer never throws", () => {
  const rand = prng(26);
  let emitted = 0;
  const d = new H264Depacketizer((_ts, data) => {
    splitLengthPrefixed(data); // well-formed
    emitted++;
  });
  for (let i = 0; i < 20000; i++) {
    const payload = randomBytes(rand, Math.floor(rand() * 64));
    if (payload.length > 0 && rand() < 0.5) payload[0] = (payload[0] & 0xe0) | [24, 28][i % 2];
    d.push(rtp(i & 0xffff, Math.floor(i / 4), rand() < 0.3, payload));
  }
  assert.ok(emitted > 0 && d.dropped > 0);
});

Deno.test("rtp h264: fmtp sprop-parameter-sets and profile-level-id round trip", () => {
  const record = avcConfigFromFmtp({ "sprop-parameter-sets": "Z0LAHtoFB+Q=,aM48gA==" })!;
  const config = parseAvcConfig(record);
  assert.deepEqual([hex(config.sps[0]), hex(config.pps[0])], [hex(SPS), hex(PPS)]);
  assert.equal(
    avcFmtp(record),
    "packetization-mode=1; profile-level-id=42C01E; sprop-parameter-sets=Z0LAHtoFB+Q=,aM48gA==",
  );
  assert.equal(avcConfigFromFmtp({}), undefined);
  assert.equal(avcConfigFromFmtp({ "sprop-parameter-sets": "!!,@@" }), undefined);
  assert.equal(avcConfigFromFmtp({ "sprop-parameter-sets": "Z0LAHtoFB+Q=" }), undefined); // no PPS
});
