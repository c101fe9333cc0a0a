import assert from "node:assert/strict";
import { type CodecId, FrameFlags, type MediaFrame } from "../../../mod.ts";
import { type TsDecoderOptions, TsDemuxer, TsEncoder, TsPid } from "../../../media/ts/mod.ts";
import { splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { crc32Mpeg2 } from "../../../media/ts/_crc32.ts";
import { concat } from "../../_util/bytes.ts";
import { readAll } from "../../_util/frames.ts";
import { flipBit, prng, randomBytes } from "../../_util/fuzz.ts";
import { demux, fixtures, packets } from "./_helpers.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** Decodes `bytes` and checks every frame is well-formed; returns the frames. */
function decodeChecked(bytes: Uint8Array, what: string, options?: TsDecoderOptions): MediaFrame[] {
  let frames: MediaFrame[];
  try {
    frames = demux(bytes, { options }).frames;
  } catch (e) {
    assert.ok(
      e instanceof Error && /not an MPEG-TS stream/.test(e.message),
      `${what}: unexpected ${e instanceof Error ? e.stack : e}`,
    );
    return [];
  }
  for (const f of frames) {
    assert.ok(Number.isSafeInteger(f.pts) && Number.isSafeInteger(f.dts), `${what}: bad timestamp`);
    assert.ok(f.data instanceof Uint8Array);
    assert.equal(f.track, f.kind === "video" ? 0 : 1);
    if (f.kind === "video" && !(f.flags & FrameFlags.CONFIG)) splitLengthPrefixed(f.data);
  }
  return frames;
}

/** A 188-byte packet with `payload` (stuffed with an adaptation field when short). */
function tsPacket(pid: number, unitStart: boolean, cc: number, payload: Uint8Array): Uint8Array {
  const pkt = new Uint8Array(188).fill(0xff);
  pkt[0] = 0x47;
  pkt[1] = (unitStart ? 0x40 : 0) | (pid >> 8);
  pkt[2] = pid & 0xff;
  const room = 184 - payload.length;
  if (room > 0) {
    pkt[3] = 0x30 | cc;
    pkt[4] = room - 1;
    if (room > 1) pkt[5] = 0;
  } else {
    pkt[3] = 0x10 | cc;
  }
  pkt.set(payload.subarray(0, 184), 4 + Math.max(room, 0));
  return pkt;
}

/** The PAT and PMT packets of an ffmpeg-made H.264 + AAC stream. */
async function tables(): Promise<Uint8Array> {
  const bytes = await Deno.readFile(await fixtures.h264Aac44());
  const list = packets(bytes);
  const pat = list.find((p) => p.pid === TsPid.PAT)!.index;
  const pmt = list.find((p) => p.pid === TsPid.PMT)!.index;
  return concat([
    bytes.subarray(pat * 188, pat * 188 + 188),
    bytes.subarray(pmt * 188, pmt * 188 + 188),
  ]);
}

test.ffmpeg("fuzz: every bit of a small stream flipped, every truncation", async () => {
  const small = await Deno.readFile(await fixtures.small());
  const clean = decodeChecked(small, "clean");
  assert.ok(clean.some((f) => f.kind === "video") && clean.some((f) => f.kind === "audio"));
  for (let bit = 0; bit < small.length * 8; bit++) decodeChecked(flipBit(small, bit), `bit ${bit}`);
  for (let len = 0; len < small.length; len++) decodeChecked(small.subarray(0, len), `len ${len}`);
});

test.ffmpeg("fuzz: random bytes and random packets after valid tables", async () => {
  const rand = prng(11);
  for (let i = 0; i < 200; i++) {
    const junk = randomBytes(rand, (rand() * 20000) | 0);
    decodeChecked(junk, `random #${i}`, { maxSyncSearch: 5000 });
  }
  const psi = await tables();
  const pids = [TsPid.PAT, TsPid.PMT, TsPid.VIDEO, TsPid.AUDIO, 0x1fff, 0x42];
  for (let i = 0; i < 300; i++) {
    const parts = [psi];
    for (let k = 0; k < 60; k++) {
      const body = randomBytes(rand, 184);
      if (rand() < 0.5) body.set([0, 0, 1, rand() < 0.5 ? 0xe0 : 0xc0], 0); // PES-looking
      const pkt = tsPacket(pids[(rand() * pids.length) | 0], rand() < 0.3, k & 15, body);
      if (rand() < 0.2) pkt[3] = (rand() * 256) | 0; // random control bits and counter
      parts.push(pkt);
    }
    decodeChecked(concat(parts), `packets #${i}`);
  }
});

test.ffmpeg("fuzz: PSI with valid CRCs but random content", async () => {
  const rand = prng(5);
  for (let i = 0; i < 500; i++) {
    const body = randomBytes(rand, 8 + ((rand() * 160) | 0));
    body[0] = rand() < 0.5 ? 0x00 : 0x02; // PAT or PMT table_id
    const sectionLength = rand() < 0.8 ? body.length + 4 - 3 : (rand() * 4096) | 0;
    body[1] = 0xb0 | ((sectionLength >> 8) & 0x0f);
    body[2] = sectionLength & 0xff;
    const crc = crc32Mpeg2(body, 0, body.length);
    const section = concat([body, new Uint8Array([crc >>> 24, crc >> 16, crc >> 8, crc])]);
    const payload = concat([new Uint8Array([rand() < 0.9 ? 0 : (rand() * 256) | 0]), section]);
    const pid = body[0] === 0 ? TsPid.PAT : TsPid.PMT;
    const stream = concat([
      await tables(),
      tsPacket(pid, true, 1, payload),
      tsPacket(TsPid.VIDEO, true, 0, new Uint8Array([0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0, 0, 0, 1, 9])),
    ]);
    decodeChecked(stream, `psi #${i}`);
  }
});

test.ffmpeg("fuzz: absurd PES sizes are bounded and reported", async () => {
  const psi = await tables();
  const pesHeader = (streamId: number, length: number) =>
    new Uint8Array([
      0,
      0,
      1,
      streamId,
      length >> 8,
      length & 0xff,
      0x80,
      0x80,
      5,
      0x21,
      0,
      1,
      0,
      1,
    ]);
  // A video PES without length that never ends, then a normal one.
  const parts = [psi, tsPacket(TsPid.VIDEO, true, 0, pesHeader(0xe0, 0))];
  for (let k = 1; k < 2000; k++) {
    parts.push(tsPacket(TsPid.VIDEO, false, k & 15, new Uint8Array(184)));
  }
  const idr = new Uint8Array([0, 0, 0, 1, 0x65, 0x88, 0x84]);
  parts.push(tsPacket(TsPid.VIDEO, true, 2000 & 15, concat([pesHeader(0xe0, 0), idr])));
  parts.push(tsPacket(TsPid.VIDEO, true, 2001 & 15, concat([pesHeader(0xe0, 0), idr])));
  // An audio PES claiming 65535 bytes, cut short by the next one.
  parts.push(tsPacket(TsPid.AUDIO, true, 0, pesHeader(0xc0, 0xffff)));
  parts.push(tsPacket(TsPid.AUDIO, true, 1, pesHeader(0xc0, 8)));
  const { frames, stats } = demux(concat(parts), { options: { maxPesSize: 64 * 1024 } });
  assert.equal(stats.droppedPes, 2, "oversized video PES and truncated audio PES");
  const video = frames.filter((f) => f.kind === "video");
  assert.equal(video.length, 2);
  assert.ok(video[0].flags & FrameFlags.DISCONTINUITY, "frame after the dropped PES is flagged");
  assert.ok(video[0].flags & FrameFlags.KEYFRAME);
  assert.ok(!(video[1].flags & FrameFlags.DISCONTINUITY));
});

test.ffmpeg("fuzz: the TsDemuxer stream ends or errors, never hangs", async () => {
  const rand = prng(21);
  const good = await Deno.readFile(await fixtures.h264Aac44());
  for (let i = 0; i < 30; i++) {
    const input = i % 2 ? randomBytes(rand, 50_000) : good.slice(0, (rand() * good.length) | 0);
    for (let k = 0; k < 20 && i % 2 === 0; k++) input[(rand() * input.length) | 0] ^= 0xff;
    const chunks: Uint8Array[] = [];
    for (let pos = 0; pos < input.length; pos += 4096) chunks.push(input.subarray(pos, pos + 4096));
    const stream = ReadableStream.from(chunks).pipeThrough(
      new TsDemuxer({ maxSyncSearch: 20_000 }),
    );
    try {
      await readAll(stream, 5000);
    } catch (e) {
      assert.ok(e instanceof Error && /not an MPEG-TS stream/.test(e.message), String(e));
    }
  }
});

test.ffmpeg("fuzz: the muxer drops bad frames and always writes valid packets", async () => {
  const rand = prng(33);
  const real = demux(await Deno.readFile(await fixtures.h264Aac44())).frames;
  const codecs: CodecId[] = ["h264", "h265", "aac", "opus", "av1", "mp3"];
  const stamps = [0, -90000, 2 ** 33 - 10, 2 ** 40, Number.NaN, 1.5];
  let written = 0;
  let dropped = 0;
  for (let i = 0; i < 100; i++) {
    const frames: MediaFrame[] = [];
    for (let k = 0; k < 80; k++) {
      const base = real[(rand() * real.length) | 0];
      const r = rand();
      const data = r < 0.5 ? base.data : r < 0.8 ? randomBytes(rand, (rand() * 3000) | 0) : flipBit(
        base.data,
        (rand() * base.data.length * 8) | 0,
      );
      const codec = rand() < 0.7 ? base.codec : codecs[(rand() * codecs.length) | 0];
      const t = rand() < 0.9 ? base.pts + k * 100 : stamps[(rand() * stamps.length) | 0];
      frames.push({
        track: rand() < 0.9 ? base.track : 7,
        kind: rand() < 0.9 ? base.kind : base.kind === "video" ? "audio" : "video",
        codec,
        pts: t,
        dts: rand() < 0.9 ? t : base.dts,
        flags: rand() < 0.9 ? base.flags : (rand() * 8) | 0,
        data,
      });
    }
    const enc = new TsEncoder();
    const out = frames.map((f) => enc.encode(f) ?? new Uint8Array(0));
    const bytes = concat([...out, enc.flush() ?? new Uint8Array(0)]);
    written += enc.stats.frames;
    dropped += enc.stats.dropped;
    packets(bytes); // whole packets with sync bytes
    const { stats } = demux(bytes);
    assert.equal(stats.continuityErrors, 0);
    assert.equal(stats.droppedPes, 0);
    assert.equal(stats.sectionErrors, 0);
  }
  assert.ok(written > 1000 && dropped > 100, `${written} frames written, ${dropped} dropped`);
});

/** An ADTS frame (AAC LC, 44.1 kHz, stereo) around `payload`. */
function adts(payload: Uint8Array): Uint8Array {
  const len = 7 + payload.length;
  const header = [
    0xff,
    0xf1,
    0x50,
    0x80 | (len >> 11),
    (len >> 3) & 0xff,
    ((len & 7) << 5) | 0x1f,
    0xfc,
  ];
  return new Uint8Array([...header, ...payload]);
}

/** An audio PES (stream id 0xC0) with `data`, with a PTS when `pts` is given. */
function audioPes(data: Uint8Array, pts?: number): Uint8Array {
  const stamp = pts === undefined ? [] : [
    0x21 | ((pts / 2 ** 29) & 0x0e),
    (pts >> 22) & 0xff,
    ((pts >> 14) & 0xfe) | 1,
    (pts >> 7) & 0xff,
    ((pts << 1) & 0xfe) | 1,
  ];
  const header = [0x80, stamp.length ? 0x80 : 0, stamp.length, ...stamp];
  const length = header.length + data.length;
  return new Uint8Array([0, 0, 1, 0xc0, length >> 8, length & 0xff, ...header, ...data]);
}

Deno.test("fuzz: AAC whose first PES has no PTS still gets its CONFIG before its first frame", async () => {
  const frame = adts(new Uint8Array([0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c]));
  const two = new Uint8Array([...frame, ...frame]);
  const bytes = concat([
    await tables(),
    tsPacket(0x101, true, 0, audioPes(two)), // no timestamp: its frames cannot be placed
    tsPacket(0x101, true, 1, audioPes(two, 90000)),
    tsPacket(0x101, true, 2, audioPes(two, 90000 + 2 * 2090)),
  ]);
  const audio = demux(bytes).frames.filter((f) => f.kind === "audio");
  assert.equal(audio.length, 5);
  assert.equal(audio[0].flags, FrameFlags.CONFIG);
  assert.deepEqual([...audio[0].data], [0x12, 0x10]); // LC, 44.1 kHz, stereo
  assert.equal(audio[1].dts, 90000);
});
