import assert from "node:assert/strict";
import {
  AAC_SAMPLE_RATES,
  aacCodecString,
  ADTS_HEADER_SIZE,
  buildAudioSpecificConfig,
  parseAdtsHeader,
  parseAudioSpecificConfig,
  writeAdtsHeader,
} from "../../../media/codec/aac.ts";
import { makeFixture, probePackets, sine } from "../../_util/ffmpeg.ts";
import { fuzzParser } from "../../_util/fuzz.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** AudioSpecificConfig golden bytes built by hand from ISO/IEC 14496-3 1.6.2.1. */
const ascTable: {
  name: string;
  bytes: number[];
  objectType: number;
  sampleRate: number;
  index: number;
  channels: number;
  samples: number;
}[] = [
  // 00010 0100 0010 0 0 0
  {
    name: "LC 44.1k stereo",
    bytes: [0x12, 0x10],
    objectType: 2,
    sampleRate: 44100,
    index: 4,
    channels: 2,
    samples: 1024,
  },
  // 00010 0011 0010 0 0 0
  {
    name: "LC 48k stereo",
    bytes: [0x11, 0x90],
    objectType: 2,
    sampleRate: 48000,
    index: 3,
    channels: 2,
    samples: 1024,
  },
  // 00010 1011 0001 1 0 0
  {
    name: "LC 8k mono 960",
    bytes: [0x15, 0x8c],
    objectType: 2,
    sampleRate: 8000,
    index: 11,
    channels: 1,
    samples: 960,
  },
  // 00010 1111 <24-bit 50000> 0001 000
  {
    name: "LC explicit 50 kHz",
    bytes: [0x17, 0x80, 0x61, 0xa8, 0x08],
    objectType: 2,
    sampleRate: 50000,
    index: 15,
    channels: 1,
    samples: 1024,
  },
  // 11111 000010 (AOT 34) 0011 0010 000
  {
    name: "escaped object type",
    bytes: [0xf8, 0x46, 0x40],
    objectType: 34,
    sampleRate: 48000,
    index: 3,
    channels: 2,
    samples: 1024,
  },
];

Deno.test("AudioSpecificConfig: golden bytes both ways", () => {
  for (const c of ascTable) {
    const cfg = parseAudioSpecificConfig(new Uint8Array(c.bytes));
    assert.deepEqual(cfg, {
      objectType: c.objectType,
      samplingFrequencyIndex: c.index,
      sampleRate: c.sampleRate,
      channelConfiguration: c.channels,
      samplesPerFrame: c.samples,
    }, c.name);
    assert.deepEqual(buildAudioSpecificConfig(cfg), new Uint8Array(c.bytes), c.name);
  }
  assert.equal(aacCodecString({ objectType: 2 }), "mp4a.40.2");
});

Deno.test("AudioSpecificConfig: explicit HE-AAC and errors", () => {
  // AOT 5 (SBR), 24 kHz core (index 6), stereo, extension 48 kHz (3), then AOT 2
  // 00101 0110 0010 0011 00010 0 0 0 → 0x2b 0x11 0x88 0x00
  const he = parseAudioSpecificConfig(new Uint8Array([0x2b, 0x11, 0x88, 0x00]));
  assert.deepEqual([he.objectType, he.sampleRate, he.channelConfiguration], [5, 24000, 2]);
  assert.equal(aacCodecString(he), "mp4a.40.5");
  assert.throws(() => parseAudioSpecificConfig(new Uint8Array([0x12])), /too short/);
  assert.throws(() => parseAudioSpecificConfig(new Uint8Array([0x16, 0x90])), /reserved/);
  assert.throws(() => parseAudioSpecificConfig(new Uint8Array([0x00, 0x10])), /object type 0/);
  assert.throws(
    () => buildAudioSpecificConfig({ objectType: 2, sampleRate: 0, channelConfiguration: 2 }),
    RangeError,
  );
  assert.throws(
    () => buildAudioSpecificConfig({ objectType: 0, sampleRate: 48000, channelConfiguration: 2 }),
    RangeError,
  );
});

Deno.test("ADTS header: golden bytes, round trip, CRC and errors", () => {
  const out = new Uint8Array(9).fill(0xee);
  writeAdtsHeader(out, 1, { objectType: 2, samplingFrequencyIndex: 4, channelConfiguration: 2 }, 9);
  assert.deepEqual(out, new Uint8Array([0xee, 0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0xee]));
  const h = parseAdtsHeader(out, 1);
  assert.deepEqual(h, {
    config: {
      objectType: 2,
      samplingFrequencyIndex: 4,
      sampleRate: 44100,
      channelConfiguration: 2,
      samplesPerFrame: 1024,
    },
    frameLength: 16,
    headerLength: ADTS_HEADER_SIZE,
  });
  for (const sfi of [0, 3, 4, 11, 12]) {
    for (const ch of [1, 2, 6, 7]) {
      for (const len of [0, 1, 300, 8184]) {
        const b = new Uint8Array(7);
        writeAdtsHeader(b, 0, {
          objectType: 2,
          samplingFrequencyIndex: sfi,
          channelConfiguration: ch,
        }, len);
        const p = parseAdtsHeader(b, 0);
        assert.deepEqual(
          [
            p.config.samplingFrequencyIndex,
            p.config.sampleRate,
            p.config.channelConfiguration,
            p.frameLength,
          ],
          [sfi, AAC_SAMPLE_RATES[sfi], ch, len + 7],
        );
      }
    }
  }
  const crc = new Uint8Array([0xff, 0xf0, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0, 0]);
  assert.equal(parseAdtsHeader(crc, 0).headerLength, 9);
  assert.throws(() => parseAdtsHeader(crc.subarray(0, 8), 0), /truncated/);
  assert.throws(
    () => parseAdtsHeader(new Uint8Array([0xff, 0xe1, 0x50, 0x80, 2, 0x1f, 0xfc]), 0),
    /sync/,
  );
  assert.throws(
    () => parseAdtsHeader(new Uint8Array([0xff, 0xf1, 0x50, 0x80, 0, 0x1f, 0xfc]), 0),
    /shorter/,
  );
  assert.throws(
    () => parseAdtsHeader(new Uint8Array([0xff, 0xf3, 0x50, 0x80, 2, 0x1f, 0xfc]), 0),
    /layer/,
  );
  const big = new Uint8Array(7);
  const lc = { objectType: 2, samplingFrequencyIndex: 4, channelConfiguration: 2 };
  assert.throws(() => writeAdtsHeader(big, 0, lc, 8185), /exceeds 8191/);
  assert.throws(() => writeAdtsHeader(big, 1, lc, 1), /does not fit/);
  assert.throws(() => writeAdtsHeader(big, 0, { ...lc, objectType: 5 }, 1), /cannot be carried/);
});

for (const rate of [44100, 48000]) {
  for (const channels of [1, 2]) {
    test.ffmpeg(`ADTS from ffmpeg aac ${rate} Hz ${channels} ch: every frame parses, count matches ffprobe`, async () => {
      const path = await makeFixture(`aac-${rate}-${channels}.aac`, [
        ...sine({ sampleRate: rate, duration: 1 }),
        ...["-ac", String(channels), "-c:a", "aac", "-b:a", "64k", "-f", "adts"],
      ]);
      const data = await Deno.readFile(path);
      const [probe] = await probePackets(path);
      let pos = 0;
      const sizes: number[] = [];
      while (pos < data.length) {
        const h = parseAdtsHeader(data, pos);
        assert.deepEqual(
          [h.config.objectType, h.config.sampleRate, h.config.channelConfiguration],
          [2, rate, channels],
        );
        sizes.push(h.frameLength); // ffprobe counts ADTS packets with their header
        pos += h.frameLength;
      }
      assert.equal(pos, data.length);
      assert.deepEqual(sizes, probe.packets.map((p) => p.size));
      assert.equal(probe.info.sample_rate, String(rate));
    });
  }
}

Deno.test("fuzz: ASC and ADTS parsers return or throw RangeError", () => {
  for (const c of ascTable) {
    fuzzParser(`ASC ${c.name}`, parseAudioSpecificConfig, new Uint8Array(c.bytes));
  }
  const adts = new Uint8Array([0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0xff, 0xf0]);
  fuzzParser("parseAdtsHeader", (d) => parseAdtsHeader(d, 0), adts, { keepPrefix: 1 });
  fuzzParser("parseAdtsHeader@2", (d) => parseAdtsHeader(d, 2), adts);
});
