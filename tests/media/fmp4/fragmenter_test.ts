import assert from "node:assert/strict";
import { Fmp4Fragmenter, type Fmp4Track, trackFromConfig } from "../../../media/fmp4/mod.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { decodeCheck, probePackets, tempPath } from "../../_util/ffmpeg.ts";
import { h264AacMp4, h265OpusMp4 } from "./_fixtures.ts";
import { mp4Frames } from "./_frames.ts";
import { fragmentByGop } from "./_fragment.ts";
import { parseMp4 } from "./_mp4box.ts";
import { concat } from "../ts/_helpers.ts";
import { audio, audioConfig, video, videoConfig } from "../hls/_synthetic.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265Opus: ["ffmpeg", "ffprobe", "ffmpeg:libx265", "ffmpeg:libopus"],
});

/**
 * Fragments an ffmpeg-made MP4 and checks that ffprobe and mp4box.js read back
 * every packet of the source: same times (moved by the offset), sizes, flags
 * and bytes, and that ffmpeg decodes the result without a warning.
 */
async function roundTrip(source: string, name: string): Promise<void> {
  const offset = 9000; // the source has negative decode times (B-frames, audio priming)
  const { configs, frames } = await mp4Frames(source);
  const parts = fragmentByGop(configs, frames, offset);
  const gops = frames.filter((f) => f.kind === "video" && (f.flags & FrameFlags.KEYFRAME));
  assert.equal(parts.length, 1 + gops.length);

  const out = await tempPath(name);
  await Deno.writeFile(out, concat(parts));
  const decoded = await decodeCheck(out);
  assert.equal(decoded.stderr, "");
  assert.equal(decoded.code, 0);

  const want = await probePackets(source);
  const got = await probePackets(out);
  assert.equal(got.length, want.length);
  for (const [i, w] of want.entries()) {
    const g = got[i];
    const shift = Math.round(offset * w.timeBase[1] / w.timeBase[0] / 90000);
    assert.deepEqual(g.timeBase, w.timeBase, `${w.codecName} timescale`);
    const key = (
      p: (typeof g.packets)[0],
      s: number,
    ) => [p.pts! + s, p.dts! + s, p.size, p.keyframe];
    if (w.codecType === "audio") {
      assert.deepEqual(g.packets.map((p) => key(p, 0)), w.packets.map((p) => key(p, shift)));
      continue;
    }
    // Video decode times start at the first presentation time (negative composition
    // offsets follow; ffmpeg shifts its pts to keep pts >= dts): compare the timelines.
    assert.equal(g.packets[0].dts, w.packets[0].pts! + shift, "first decode time = first pts");
    const timeline = (packets: typeof g.packets) =>
      packets.map((p) => [p.pts! - packets[0].pts!, p.dts! - packets[0].dts!, p.size, p.keyframe]);
    assert.deepEqual(timeline(g.packets), timeline(w.packets));
  }

  const mp4 = parseMp4(concat(parts));
  for (const config of configs) {
    const samples = mp4.samples.get(config.track + 1)!;
    const input = frames.filter((f) => f.track === config.track);
    const source = want.find((w) => w.codecType === config.kind)!;
    assert.equal(samples.length, input.length);
    // durations: video from the next dts, audio from sample counts, as in the source (whose
    // last sample is trimmed to the end of the file: ours repeats the previous duration)
    const durations = samples.map((s) => s.duration);
    assert.deepEqual(durations.slice(0, -1), source.packets.slice(0, -1).map((p) => p.duration));
    assert.equal(durations.at(-1), durations.at(-2));
    for (const [k, s] of samples.entries()) {
      assert.deepEqual(s.data, input[k].data);
      assert.equal(
        s.is_sync,
        config.kind === "audio" || (input[k].flags & FrameFlags.KEYFRAME) !== 0,
      );
    }
  }
}

test.ffmpeg("fragmenter: H.264 (B-frames) + AAC round trip through ffprobe, mp4box.js and ffmpeg", async () => {
  await roundTrip(await h264AacMp4(), "fragmenter-h264-aac.mp4");
});

test.x265Opus({
  name: "fragmenter: H.265 (B-frames) + Opus round trip through ffprobe, mp4box.js and ffmpeg",
  fn: async () => {
    await roundTrip(await h265OpusMp4(), "fragmenter-h265-opus.mp4");
  },
});

// AAC LC, 44.1 kHz, stereo: 1024 samples per frame, not a whole number of 90 kHz ticks.
const AAC_44K: MediaFrame = {
  track: 1,
  kind: "audio",
  codec: "aac",
  pts: 0,
  dts: 0,
  flags: FrameFlags.CONFIG,
  data: new Uint8Array([0x12, 0x10]),
};

/** An AAC frame of index `n` with an FLV-style timestamp (whole milliseconds) from `start` ms. */
function aacFrame(n: number, start = 1000): MediaFrame {
  const ms = start + Math.round(n * 1024 * 1000 / 44100);
  return { ...AAC_44K, pts: ms * 90, dts: ms * 90, flags: 0, data: new Uint8Array([n, n, n]) };
}

/** [decode time, duration] of every audio sample, from each fragment's tfdt and trun. */
function audioSamples(parts: Uint8Array[]): number[][] {
  const out = [];
  for (const { trafs } of readFragments(concat(parts))) {
    let time = trafs[0].baseTime;
    for (const [duration] of trafs[0].samples) {
      out.push([time, duration]);
      time += duration;
    }
  }
  return out;
}

Deno.test("fragmenter: audio durations come from sample counts, not rounded timestamps", () => {
  const f = new Fmp4Fragmenter([trackFromConfig(AAC_44K)]);
  const parts = [f.initSegment()];
  for (let n = 0; n < 10; n++) f.push(aacFrame(n));
  parts.push(f.flush()!);
  for (let n = 10; n < 20; n++) f.push(aacFrame(n));
  parts.push(f.flush()!);
  const base = 44100; // 1 s
  assert.deepEqual(
    audioSamples(parts),
    Array.from({ length: 20 }, (_, n) => [base + n * 1024, 1024]),
  );
});

Deno.test("fragmenter: lost audio frames lengthen the sample before them; a jump moves tfdt", () => {
  const f = new Fmp4Fragmenter([trackFromConfig(AAC_44K)]);
  const parts = [f.initSegment()];
  for (const n of [0, 1, 2, 4, 5]) f.push(aacFrame(n)); // frame 3 lost
  parts.push(f.flush()!);
  for (const n of [0, 1]) f.push(aacFrame(n, 20_000)); // the source clock jumped to 20 s
  parts.push(f.flush()!);
  f.push(aacFrame(2, 20_000 + 1)); // 1 ms late: within half a frame, stays continuous
  parts.push(f.flush()!);
  f.resetTiming();
  f.push(aacFrame(3, 20_000 + 1)); // after a reset: anchored on its own timestamp
  parts.push(f.flush()!);
  const late = Math.round((20_001 + Math.round(3 * 1024 * 1000 / 44100)) * 44.1);
  const jumped = 50244 + Math.round((882000 - 50244) / 1024) * 1024; // whole frames after 5+1
  assert.deepEqual(audioSamples(parts), [
    [44100, 1024],
    [44100 + 1024, 1024],
    [44100 + 2048, 2048],
    [44100 + 4096, 1024],
    [44100 + 5120, 1024],
    [jumped, 1024],
    [jumped + 1024, 1024],
    [jumped + 2048, 1024],
    [late, 1024],
  ]);
});

Deno.test("fragmenter: video durations use the next dts, across fragments", () => {
  const track: Fmp4Track = {
    track: 0,
    kind: "video",
    codec: "h264",
    config: new Uint8Array(0),
    codecString: "avc1.42c01e",
    timescale: 90000,
    width: 16,
    height: 16,
    sampleRate: 0,
    channels: 0,
    samplesPerFrame: 0,
  };
  const frame = (dts: number, key = false, offset = 3000): MediaFrame => ({
    track: 0,
    kind: "video",
    codec: "h264",
    pts: dts + offset,
    dts,
    flags: key ? FrameFlags.KEYFRAME : 0,
    data: new Uint8Array([dts & 0xff]),
  });
  const f = new Fmp4Fragmenter([track], { sequenceNumber: 7 });
  f.push(frame(0, true));
  f.push(frame(3000));
  f.push(frame(4500, false, 0)); // presented before its decode time plus the stream's delay
  const first = f.flush(9000)!;
  f.push(frame(9000, true));
  f.push(frame(12000));
  const second = f.flush()!; // no next dts: the last sample repeats the previous duration
  const sync = 0x02000000;
  const nonSync = 0x01010000;
  assert.deepEqual(readFragments(concat([first, second])), [
    {
      sequence: 7,
      trafs: [{
        id: 1,
        baseTime: 3000, // dts + the first frame's composition offset: its presentation time
        samples: [[3000, 1, sync, 0], [1500, 1, nonSync, 0], [4500, 1, nonSync, -3000]],
      }],
    },
    {
      sequence: 8,
      trafs: [{
        id: 1,
        baseTime: 12000,
        samples: [[3000, 1, sync, 0], [3000, 1, nonSync, 0]],
      }],
    },
  ]);
});

Deno.test("fragmenter: flushChunks gives the fragment flush writes, samples as the frames' own views", () => {
  const configs = [videoConfig(), audioConfig()];
  const frames = [video(0, true), audio(0), video(3600, false), audio(1920), audio(3840)];
  const [copied, chunked] = [0, 1].map(() =>
    new Fmp4Fragmenter(configs.map(trackFromConfig), { sequenceNumber: 3 })
  );
  for (const f of frames) {
    copied.push(f);
    chunked.push(f);
  }
  const chunks = chunked.flushChunks(7200)!;
  assert.deepEqual(concat(chunks), copied.flush(7200));
  const samples = [0, 2, 1, 3, 4].map((i) => frames[i].data); // video track first, then audio
  assert.equal(chunks.length, 1 + samples.length);
  samples.forEach((data, i) => assert.ok(chunks[1 + i] === data, `sample ${i} is not copied`));
  assert.equal(chunked.flushChunks(), undefined, "the queue is empty");
});

/** One `traf` read back: track_ID, tfdt and the trun entries [duration, size, flags, cto]. */
interface Traf {
  id: number;
  baseTime: number;
  samples: number[][];
}

/** Walks the top-level boxes of fMP4 bytes and reads every `moof` (mfhd, tfhd, tfdt, trun). */
function readFragments(bytes: Uint8Array): { sequence: number; trafs: Traf[] }[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = (at: number) => String.fromCharCode(...bytes.subarray(at + 4, at + 8));
  const children = (start: number, end: number) => {
    const boxes = new Map<string, number[]>();
    for (let at = start; at < end; at += view.getUint32(at)) {
      boxes.set(type(at), [...boxes.get(type(at)) ?? [], at]);
    }
    return boxes;
  };
  const out = [];
  for (const moof of children(0, bytes.length).get("moof") ?? []) {
    const inner = children(moof + 8, moof + view.getUint32(moof));
    const trafs = (inner.get("traf") ?? []).map((traf) => {
      const boxes = children(traf + 8, traf + view.getUint32(traf));
      const [tfhd] = boxes.get("tfhd")!;
      const [tfdt] = boxes.get("tfdt")!;
      const [trun] = boxes.get("trun")!;
      const flags = view.getUint32(trun + 8) & 0xffffff;
      const perSample = flags & 0x800 ? 16 : 12;
      const count = view.getUint32(trun + 12);
      const dataOffset = view.getInt32(trun + 16);
      assert.equal(type(moof + dataOffset - 8), "mdat");
      const samples = [];
      for (let i = 0; i < count; i++) {
        const p = trun + 20 + i * perSample;
        const sample = [view.getUint32(p), view.getUint32(p + 4), view.getUint32(p + 8)];
        if (perSample === 16) sample.push(view.getInt32(p + 12));
        samples.push(sample);
      }
      assert.equal(view.getUint8(tfdt + 8), 1, "tfdt version 1");
      assert.equal(view.getUint32(tfhd + 8) & 0xffffff, 0x020000, "default-base-is-moof");
      return {
        id: view.getUint32(tfhd + 12),
        baseTime: Number(view.getBigUint64(tfdt + 12)),
        samples,
      };
    });
    out.push({ sequence: view.getUint32(inner.get("mfhd")![0] + 12), trafs });
  }
  return out;
}

Deno.test("fragmenter: bad input gives clear errors", () => {
  const f = new Fmp4Fragmenter([trackFromConfig(AAC_44K)]);
  assert.equal(f.flush(), undefined);
  assert.throws(() => f.push({ ...aacFrame(0), track: 5 }), {
    name: "TypeError",
    message: /unknown track 5/,
  });
  assert.throws(() => f.push(AAC_44K), { name: "TypeError", message: /CONFIG/ });
  assert.throws(() => f.push({ ...aacFrame(0), dts: -1 }), /negative decode time/);
  assert.throws(() => new Fmp4Fragmenter([]), RangeError);
  assert.throws(
    () => new Fmp4Fragmenter([trackFromConfig(AAC_44K), trackFromConfig(AAC_44K)]),
    /duplicate/,
  );
  const opus = new Fmp4Fragmenter([
    trackFromConfig({ ...AAC_44K, codec: "opus", data: opusHead() }),
  ]);
  assert.throws(
    () => opus.push({ ...aacFrame(0), codec: "opus", data: new Uint8Array(0) }),
    /empty Opus/,
  );
  assert.equal(opus.pending, 0);
});

function opusHead(): Uint8Array {
  return new Uint8Array([
    ..."OpusHead".split("").map((c) => c.charCodeAt(0)),
    ...[1, 2, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0],
  ]);
}
