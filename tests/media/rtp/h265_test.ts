import assert from "node:assert/strict";
import {
  H265Depacketizer,
  H265Packetizer,
  hevcConfigFromFmtp,
  hevcFmtp,
} from "../../../media/rtp/mod.ts";
import { splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { parseHevcConfig } from "../../../media/codec/h265.ts";
import { makeFixture, testsrc } from "../../_util/ffmpeg.ts";
import { splitAnnexB } from "../../../media/codec/nal.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { au, Collect, hex, rtp, unhex } from "./_util.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"] });

function depacketize(payloads: { marker: boolean; payload: Uint8Array }[], donl = false) {
  const units: string[] = [];
  const d = new H265Depacketizer((_ts, data) => units.push(hex(data)), { donl });
  payloads.forEach((p, i) => d.push(rtp(500 + i, 9000, p.marker, p.payload)));
  return { units, d };
}

// Golden payloads from the structures of RFC 7798 4.4.1 (single NAL unit), 4.4.2 (AP:
// PayloadHdr type 48 with the lowest LayerId and TID, then 16-bit sizes) and 4.4.3 (FU:
// PayloadHdr type 49, FU header S|E|FuType, then the NAL unit body without its header).
const goldens: { name: string; au: Uint8Array; max: number; packets: [boolean, string][] }[] = [
  {
    name: "single NAL unit (IDR_W_RADL)",
    au: au(unhex("2601 af 01 02")),
    max: 1200,
    packets: [[true, "2601af0102"]],
  },
  {
    name: "AP of VPS, SPS and PPS (layer 0, TID 1), then a single slice",
    au: au(
      unhex("4001 0c 01"),
      unhex("4201 01 02 03"),
      unhex("4401 c1"),
      unhex("2601 af 01 02 03 04"),
    ),
    max: 24,
    packets: [
      [false, "6001 0004 40010c01 0005 4201010203 0003 4401c1"],
      [true, "2601af01020304"],
    ],
  },
  {
    name: "FU start, middle, end",
    au: au(Uint8Array.from({ length: 34 }, (_, i) => (i === 0 ? 0x26 : i === 1 ? 0x01 : i - 2))),
    max: 16,
    packets: [
      [false, "6201 93 000102030405060708090a0b0c"],
      [false, "6201 13 0d0e0f10111213141516171819"],
      [true, "6201 53 1a1b1c1d1e1f"],
    ],
  },
];

for (const g of goldens) {
  Deno.test(`rtp h265: ${g.name}: packetize to golden bytes and back`, () => {
    const sink = new Collect();
    new H265Packetizer(g.max).packetize(g.au, sink);
    assert.deepEqual(
      sink.packets.map((p) => [p.marker, hex(p.payload)]),
      g.packets.map(([m, h]) => [m, h.replace(/\s+/g, "")]),
    );
    const { units, d } = depacketize(
      g.packets.map(([marker, h]) => ({ marker, payload: unhex(h) })),
    );
    assert.equal(d.dropped, 0);
    assert.deepEqual(units, [hex(g.au)]);
  });
}

Deno.test("rtp h265: DONL fields (sprop-max-don-diff > 0) are skipped in all packet types", () => {
  const { units, d } = depacketize([
    { marker: false, payload: unhex("2601 0007 af01") }, // single NAL unit with DONL
    { marker: false, payload: unhex("6001 0008 0003 4401c1 01 0003 4e0101") }, // AP: DONL, DOND
    { marker: false, payload: unhex("6201 93 0009 0001") }, // FU start with DONL
    { marker: true, payload: unhex("6201 53 0203") }, // FU end: no DONL
  ], true);
  assert.equal(d.dropped, 0);
  assert.deepEqual(units, [
    hex(au(unhex("2601af01"), unhex("4401c1"), unhex("4e0101"), unhex("2601 0001 0203"))),
  ]);
});

Deno.test("rtp h265: random access units survive packetize → depacketize", () => {
  const rand = prng(7798);
  for (let round = 0; round < 200; round++) {
    const nals: Uint8Array[] = [];
    for (let i = 0, n = 1 + Math.floor(rand() * 5); i < n; i++) {
      const nal = randomBytes(rand, 3 + Math.floor(rand() ** 3 * 6000));
      nal[0] = (Math.floor(rand() * 41) << 1) | (nal[0] & 1); // F = 0, types 0..40
      nal[1] = (nal[1] & 0xf8) | (1 + Math.floor(rand() * 7)); // TID + 1 in 1..7
      nals.push(nal);
    }
    const max = 20 + Math.floor(rand() * 1400);
    const sink = new Collect();
    new H265Packetizer(max).packetize(au(...nals), sink);
    assert.ok(sink.packets.every((p) => p.payload.length <= max));
    const { units, d } = depacketize(sink.packets);
    assert.equal(d.dropped, 0, `round ${round}`);
    assert.deepEqual(
      splitLengthPrefixed(unhex(units[0])).map(hex),
      nals.map(hex),
      `round ${round}`,
    );
  }
});

Deno.test("rtp h265: bad packets are dropped and counted", () => {
  const { units, d } = depacketize([
    { marker: true, payload: unhex("6201 13 aabb") }, // FU middle without a start
    { marker: true, payload: unhex("6001 0009 4001") }, // AP size overruns
    { marker: true, payload: unhex("6001 00") }, // AP size field truncated
    { marker: true, payload: unhex("6001 0001 40") }, // AP NAL unit shorter than its header
    { marker: true, payload: unhex("6401 00") }, // PACI
    { marker: true, payload: unhex("26") }, // shorter than a payload header
    { marker: true, payload: unhex("6201 93") }, // FU without data
  ]);
  assert.deepEqual(units, []);
  assert.equal(d.dropped, 7);
});

Deno.test("rtp h265: bounded fuzz of the depacketizer never throws", () => {
  const rand = prng(49);
  let emitted = 0;
  for (const donl of [false, true]) {
    const d = new H265Depacketizer((_ts, data) => {
      splitLengthPrefixed(data);
      emitted++;
    }, { donl });
    for (let i = 0; i < 10000; i++) {
      const payload = randomBytes(rand, Math.floor(rand() * 64));
      if (payload.length > 0 && rand() < 0.6) payload[0] = [48, 49, 50][i % 3] << 1;
      d.push(rtp(i & 0xffff, Math.floor(i / 4), rand() < 0.3, payload));
    }
    assert.ok(d.dropped > 0);
  }
  assert.ok(emitted > 0);
});

test.x265("rtp h265: fmtp sprop-vps/sps/pps from libx265 round trip", async () => {
  const file = await makeFixture("rtsp-x265.hevc", [
    ...testsrc({ duration: 0.2 }),
    "-c:v",
    "libx265",
    "-x265-params",
    "log-level=error",
    "-f",
    "hevc",
  ]);
  const nals = splitAnnexB(await Deno.readFile(file));
  const pick = (type: number) => nals.find((n) => ((n[0] >> 1) & 0x3f) === type)!;
  const b64 = (n: Uint8Array) => btoa(String.fromCharCode(...n));
  const fmtp = {
    "sprop-vps": b64(pick(32)),
    "sprop-sps": b64(pick(33)),
    "sprop-pps": b64(pick(34)),
  };
  const record = hevcConfigFromFmtp(fmtp)!;
  const config = parseHevcConfig(record);
  assert.deepEqual([config.vps, config.sps, config.pps].map((l) => hex(l[0])), [
    hex(pick(32)),
    hex(pick(33)),
    hex(pick(34)),
  ]);
  assert.equal(
    hevcFmtp(record),
    `sprop-vps=${fmtp["sprop-vps"]}; sprop-sps=${fmtp["sprop-sps"]}; sprop-pps=${
      fmtp["sprop-pps"]
    }`,
  );
  assert.equal(hevcConfigFromFmtp({ "sprop-vps": fmtp["sprop-vps"] }), undefined);
  assert.equal(hevcConfigFromFmtp({ ...fmtp, "sprop-sps": "QgE=" }), undefined); // truncated SPS
});
