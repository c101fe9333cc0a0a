import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { FlvReader } from "../../../media/flv/mod.ts";
import { TsMuxer, TsPid } from "../../../media/ts/mod.ts";
import { splitLengthPrefixed } from "../../../media/codec/nal.ts";
import { parseOpusHead } from "../../../media/codec/opus.ts";
import { decodeCheck, probePackets, type ProbeStream, run, tempPath } from "../../_util/ffmpeg.ts";
import { concat } from "../../_util/bytes.ts";
import { readAll } from "../../_util/frames.ts";
import {
  demux,
  fixtures,
  frameTimings,
  maxTimingError,
  muxChunks,
  type PacketInfo,
  packets,
  probeTimings,
} from "./_helpers.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({
  tsreport: ["ffmpeg", "ffprobe", "tsreport"],
  ffmpeg: ["ffmpeg", "ffprobe"],
});

const WRAP = 2 ** 33;

async function flvFrames(path: string): Promise<MediaFrame[]> {
  const file = await Deno.open(path);
  return readAll(file.readable.pipeThrough(new FlvReader()), 10_000);
}

/** Muxes through the TsMuxer stream; returns the chunks. */
function muxStream(frames: MediaFrame[], muxer = new TsMuxer()): Promise<Uint8Array[]> {
  return readAll(ReadableStream.from(frames).pipeThrough(muxer), 10_000);
}

async function writeTemp(name: string, bytes: Uint8Array): Promise<string> {
  const path = await tempPath(name);
  await Deno.writeFile(path, bytes);
  return path;
}

function byType(streams: ProbeStream[]): Map<string, ProbeStream> {
  return new Map(streams.map((s) => [s.codecType, s]));
}

/** ffprobe of `a` and `b` agree on streams, packet count, pts, dts and keyframe flags. */
async function assertSameProbe(a: string, b: string, tolerance = 0): Promise<void> {
  const pa = byType(await probePackets(a));
  const pb = byType(await probePackets(b));
  assert.deepEqual([...pb.keys()].sort(), [...pa.keys()].sort(), "stream types");
  for (const [type, sa] of pa) {
    const sb = pb.get(type)!;
    assert.equal(sb.codecName, sa.codecName);
    assert.equal(sb.packets.length, sa.packets.length, `${type} packet count`);
    const err = maxTimingError(probeTimings(sb), probeTimings(sa), true);
    assert.ok(err <= tolerance, `${type}: timestamps differ by up to ${err} ticks`);
  }
}

async function assertDecodesCleanly(path: string): Promise<void> {
  const res = await decodeCheck(path);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stderr, "");
}

/** tstools' `tsreport -b` finds no PCR gap over 100 ms and no DTS/PTS behind the PCR. */
async function assertTsreportClean(path: string): Promise<void> {
  const res = await run("tsreport", ["-b", path]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  const out = res.stdout + res.stderr;
  assert.match(out, /Bad \(>\.1s\) gaps: 0,/);
  assert.doesNotMatch(out, /^(###|!!!)/m);
}

for (
  const [name, fixture] of [
    ["H.264 (B-frames) + AAC 44.1 kHz", fixtures.flvH264Aac44],
    ["H.264 + AAC 48 kHz", fixtures.flvH264Aac48],
    ["AAC only", fixtures.flvAac48],
    ["H.264 only", fixtures.flvH264],
  ] as const
) {
  test.tsreport(`FLV → FlvReader → TsMuxer (${name}): ffmpeg decodes it, ffprobe agrees`, async () => {
    const flv = await fixture();
    const chunks = await muxStream(await flvFrames(flv));
    assert.ok(chunks.every((c) => c.length % 188 === 0), "chunks are whole packets");
    const ts = await writeTemp(`mux-${name.replace(/\W+/g, "-")}.ts`, concat(chunks));
    await assertDecodesCleanly(ts);
    await assertSameProbe(flv, ts);
    await assertTsreportClean(ts);
  });
}

for (
  const [name, fixture] of [
    ["H.265 + AAC 48 kHz", fixtures.h265Aac48],
    ["Opus", fixtures.opus],
  ] as const
) {
  test.ffmpeg(`TS → TsDecoder → TsMuxer (${name}): ffmpeg decodes it, ffprobe agrees`, async () => {
    const input = await fixture();
    const { frames } = demux(await Deno.readFile(input));
    const ts = await writeTemp(`remux-${name.replace(/\W+/g, "-")}.ts`, concat(muxChunks(frames)));
    await assertDecodesCleanly(ts);
    await assertSameProbe(input, ts);
  });
}

/** The PES packets' first TS packets of `pid`, with the index of the packet before them. */
function unitStarts(list: PacketInfo[], pid: number): PacketInfo[] {
  return list.filter((p) => p.pid === pid && p.unitStart);
}

test.ffmpeg("muxer output structure: tables, continuity, PCR, RAI, AUD and parameter sets", async () => {
  const frames = await flvFrames(await fixtures.flvH264Aac44());
  const bytes = concat(muxChunks(frames));
  const list = packets(bytes);
  assert.equal(list[0].pid, TsPid.PAT);
  assert.equal(list[1].pid, TsPid.PMT);

  // Continuity counters: +1 per payload packet, unchanged on adaptation-only packets.
  const last = new Map<number, number>();
  for (const p of list) {
    const prev = last.get(p.pid);
    if (prev !== undefined) assert.equal(p.cc, p.hasPayload ? (prev + 1) & 15 : prev);
    last.set(p.pid, p.cc);
  }

  // Every video keyframe: PAT + PMT right before it, random_access_indicator on it.
  const keys = frames.filter((f) => f.kind === "video" && f.flags & FrameFlags.KEYFRAME).length;
  const videoStarts = unitStarts(list, TsPid.VIDEO);
  const randomAccess = videoStarts.filter((p) => p.randomAccess);
  assert.equal(randomAccess.length, keys);
  for (const p of randomAccess) {
    assert.deepEqual([list[p.index - 2].pid, list[p.index - 1].pid], [TsPid.PAT, TsPid.PMT]);
  }

  // PCR on the video PID only, increasing, never more than 100 ms apart.
  const pcrs = list.filter((p) => p.pcr !== undefined);
  assert.ok(pcrs.every((p) => p.pid === TsPid.VIDEO));
  for (let i = 1; i < pcrs.length; i++) {
    const gap = (pcrs[i].pcr! - pcrs[i - 1].pcr! + WRAP) % WRAP;
    assert.ok(gap > 0 && gap <= 9000, `PCR gap ${gap} at packet ${pcrs[i].index}`);
  }

  // Each video PES starts with an AUD; each keyframe carries SPS and PPS in-band.
  for (const p of videoStarts) {
    const pkt = bytes.subarray(p.index * 188, p.index * 188 + 188);
    const es = pkt.subarray(p.payloadOffset + 9 + pkt[p.payloadOffset + 8]);
    assert.deepEqual([...es.subarray(0, 6)], [0, 0, 0, 1, 0x09, 0xf0]);
  }
  const back = demux(bytes).frames;
  for (const f of back.filter((f) => f.kind === "video" && f.flags & FrameFlags.KEYFRAME)) {
    const types = splitLengthPrefixed(f.data).map((n) => n[0] & 0x1f);
    assert.ok(types.includes(7) && types.includes(8), "keyframe without SPS/PPS");
  }
  const flvConfig = frames.find((f) => f.kind === "video" && f.flags & FrameFlags.CONFIG)!;
  const tsConfig = back.find((f) => f.kind === "video" && f.flags & FrameFlags.CONFIG)!;
  assert.deepEqual(tsConfig.data, flvConfig.data, "in-band parameter sets equal the CONFIG");
});

test.ffmpeg("PAT and PMT are byte-identical to ffmpeg's for H.264 + AAC", async () => {
  const theirs = await Deno.readFile(await fixtures.h264Aac44());
  const ours = concat(muxChunks(demux(theirs).frames));
  const find = (bytes: Uint8Array, pid: number) => {
    const p = packets(bytes).find((p) => p.pid === pid)!;
    const pkt = bytes.slice(p.index * 188, p.index * 188 + 188);
    pkt[3] &= 0xf0; // continuity counter aside
    return pkt;
  };
  assert.deepEqual(find(ours, TsPid.PAT), find(theirs, TsPid.PAT));
  assert.deepEqual(find(ours, TsPid.PMT), find(theirs, TsPid.PMT));
});

test.ffmpeg("audio-only: PCR on the audio PID, tables repeated at least every 500 ms", async () => {
  const frames = await flvFrames(await fixtures.flvAac48());
  const list = packets(concat(muxChunks(frames)));
  const pcrs = list.filter((p) => p.pcr !== undefined);
  assert.ok(pcrs.length > 0 && pcrs.every((p) => p.pid === TsPid.AUDIO));
  const pats = list.filter((p) => p.pid === TsPid.PAT).map((p) => p.index);
  const audio = unitStarts(list, TsPid.AUDIO);
  // 48 kHz AAC: 1920 ticks a frame, so at most 24 frames between tables.
  for (let i = 1; i < pats.length; i++) {
    const between = audio.filter((p) => p.index > pats[i - 1] && p.index < pats[i]).length;
    assert.ok(between <= 24, `${between} audio frames between tables`);
  }
  assert.ok(pats.length >= 3);
});

test.ffmpeg("declared tracks: other kinds are dropped and counted", async () => {
  const frames = await flvFrames(await fixtures.flvH264Aac48());
  const muxer = new TsMuxer({ video: "h264", audio: null });
  const bytes = concat(await muxStream(frames, muxer));
  const back = demux(bytes).frames;
  assert.ok(back.length > 0 && back.every((f) => f.kind === "video"));
  assert.equal(muxer.stats.dropped, frames.filter((f) => f.kind === "audio").length);
  assert.equal(
    muxer.stats.frames,
    frames.filter((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG)).length,
  );
});

test.ffmpeg("a track that starts late is added with a new PMT version", async () => {
  const frames = await flvFrames(await fixtures.flvH264Aac48());
  // Audio (with its CONFIG) only from 1 s on; the probe gives up after 100 ms.
  const config = frames.find((f) => f.kind === "audio" && f.flags & FrameFlags.CONFIG)!;
  const input: MediaFrame[] = [];
  for (const f of frames) {
    if (f.kind === "video") input.push(f);
    else if (!(f.flags & FrameFlags.CONFIG) && f.dts >= 90000) {
      if (!input.includes(config)) input.push(config);
      input.push(f);
    }
  }
  const bytes = concat(muxChunks(input, { probeDuration: 9000 }));
  const back = demux(bytes).frames;
  assert.deepEqual(
    frameTimings(back, 1),
    frameTimings(input.filter((f) => f.kind === "audio"), 1),
  );
  const versions = new Set(
    packets(bytes).filter((p) => p.pid === TsPid.PMT).map((p) => {
      const off = p.index * 188 + p.payloadOffset + 1;
      return (bytes[off + 5] >> 1) & 31;
    }),
  );
  assert.deepEqual([...versions], [0, 1]);
});

test.ffmpeg("timestamps wrap to 33 bits on egress and unwrap back exactly", async () => {
  const frames = await flvFrames(await fixtures.flvH264Aac44());
  const shift = WRAP - 90000; // crosses 2^33 one second in
  const shifted = frames.map((f) => ({ ...f, pts: f.pts + shift, dts: f.dts + shift }));
  const bytes = concat(muxChunks(shifted));
  const ts = await writeTemp("mux-wrap.ts", bytes);
  await assertDecodesCleanly(ts);
  const back = demux(bytes).frames;
  for (const track of [0, 1]) {
    assert.equal(maxTimingError(frameTimings(back, track), frameTimings(shifted, track), true), 0);
  }
});

test.ffmpeg("minChunkSize joins adjacent frames without changing the bytes", async () => {
  const frames = await flvFrames(await fixtures.flvH264Aac44());
  const perFrame = await muxStream(frames);
  const joined = await muxStream(frames, new TsMuxer({ minChunkSize: 64 * 1024 }));
  assert.deepEqual(concat(joined), concat(perFrame));
  assert.ok(joined.length < perFrame.length / 10, `${joined.length} chunks`);
  assert.ok(joined.slice(0, -1).every((c) => c.length >= 64 * 1024 && c.length % 188 === 0));
});

test.ffmpeg("Opus pre-skip travels as the start trim of the first packet", async () => {
  const { frames } = demux(await Deno.readFile(await fixtures.opus()));
  const head = frames.find((f) => f.flags & FrameFlags.CONFIG)!;
  assert.equal(parseOpusHead(head.data).preSkip, 312);
  const back = demux(concat(muxChunks(frames))).frames;
  assert.deepEqual(back.find((f) => f.flags & FrameFlags.CONFIG)!.data, head.data);
  assert.deepEqual(frameTimings(back, 1), frameTimings(frames, 1));
});
