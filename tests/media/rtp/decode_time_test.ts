import assert from "node:assert/strict";
import {
  H264PictureState,
  H265PictureState,
  type PictureState,
} from "../../../media/rtp/picture_order.ts";
import { DtsRecovery } from "../../../media/rtp/decode_time.ts";
import { splitAnnexB } from "../../../media/codec/nal.ts";
import { makeFixture, probePackets, sine, testsrc, to90k } from "../../_util/ffmpeg.ts";
import { prng } from "../../_util/fuzz.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"],
});

const F = 3600; // one frame at 25 fps

Deno.test("dts: a signalled reorder depth gives a decoder's decode times", () => {
  // decode order I0 P3 B1 B2 P6 B4 B5, two reordered frames signalled
  const pts = [0, 3, 1, 2, 6, 4, 5].map((n) => n * F);
  const d = new DtsRecovery();
  d.configure(2, 25);
  const dts = pts.map((p, i) => d.next(p, undefined, i === 0));
  assert.deepEqual(dts, [-2, -1, 0, 1, 2, 3, 4].map((n) => n * F));
});

Deno.test("dts: an unsignalled depth is learned from POCs; times stay ordered", () => {
  const d = new DtsRecovery();
  d.configure(undefined, undefined);
  const order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 12, 10, 11];
  const dts = order.map((n) => d.next(n * F, 2 * n, n === 0));
  assert.equal(d.reorder, 1);
  for (let i = 1; i < dts.length; i++) assert.ok(dts[i] > dts[i - 1], `dts ${dts}`);
  // learned at the first B picture, late for the frames already out; from the next
  // anchor picture on, no decode time passes its presentation time
  for (let i = 4; i < dts.length; i++) assert.ok(dts[i] <= order[i] * F, `${i}: ${dts[i]}`);
});

Deno.test("dts: a restart (time jumping far back) starts over", () => {
  const d = new DtsRecovery();
  d.configure(0, 25);
  assert.equal(d.next(1_000_000, 0, true), 1_000_000);
  assert.equal(d.next(0, 0, true), 0);
  assert.equal(d.next(F, 2, false), F);
});

Deno.test("dts: random reorderings keep decode times increasing and not after presentation", () => {
  const rand = prng(14496);
  for (let round = 0; round < 100; round++) {
    const depth = Math.floor(rand() * 4);
    // a mini-GOP structure: anchor first, then the frames before it in any order
    const order: number[] = [0];
    let next = 1;
    while (order.length < 60) {
      const span = 1 + Math.floor(rand() * (depth + 1));
      const anchor = next + span - 1;
      order.push(anchor);
      const inner = Array.from({ length: span - 1 }, (_, k) => next + k);
      inner.sort(() => rand() - 0.5);
      order.push(...inner);
      next = anchor + 1;
    }
    const d = new DtsRecovery();
    d.configure(depth, 25);
    const dts = order.map((n, i) => d.next(n * F, 2 * n, i === 0));
    for (let i = 0; i < order.length; i++) {
      assert.ok(i === 0 || dts[i] > dts[i - 1], `round ${round} ${order} → ${dts}`);
      assert.ok(dts[i] <= order[i] * F, `round ${round} frame ${i}`);
    }
  }
});

interface Stream {
  aus: Uint8Array[][];
  pts: number[];
  dts: number[];
}

/** Encode, then read the access units (split at AUDs) and ffprobe's times in decode order. */
async function encoded(codec: "h264" | "h265", name: string, x: string[]): Promise<Stream> {
  const mp4 = await makeFixture(`${name}.mp4`, [
    ...testsrc({ duration: 3 }),
    ...sine({ duration: 3 }),
    ...x,
    "-c:a",
    "aac",
    "-shortest",
  ]);
  const raw = await makeFixture(`${name}.${codec}`, [
    "-i",
    mp4,
    "-map",
    "0:v",
    "-c",
    "copy",
    "-bsf:v",
    codec === "h264"
      ? "h264_mp4toannexb,h264_metadata=aud=insert"
      : "hevc_mp4toannexb,hevc_metadata=aud=insert",
    "-f",
    codec === "h264" ? "h264" : "hevc",
  ]);
  const [video] = (await probePackets(mp4)).filter((s) => s.codecType === "video");
  const aus: Uint8Array[][] = [];
  const aud = codec === "h264"
    ? (n: Uint8Array) => (n[0] & 0x1f) === 9
    : (n: Uint8Array) => ((n[0] >> 1) & 0x3f) === 35;
  for (const nal of splitAnnexB(await Deno.readFile(raw))) {
    if (aud(nal)) aus.push([]);
    else aus.at(-1)!.push(nal);
  }
  assert.equal(aus.length, video.packets.length);
  return {
    aus,
    pts: video.packets.map((p) => to90k(p.pts!, video.timeBase)),
    dts: video.packets.map((p) => to90k(p.dts!, video.timeBase)),
  };
}

function checkStream(state: PictureState, s: Stream, what: string): void {
  const pocs: number[] = [];
  const keys: boolean[] = [];
  for (const nals of s.aus) {
    let poc: number | undefined;
    let key = false;
    for (const nal of nals) {
      if (state.isParameterSet(nal)) state.addParameterSet(nal);
      else {
        key ||= state.isKeyframe(nal);
        poc ??= state.poc(nal);
      }
    }
    assert.notEqual(poc, undefined, `${what}: no POC for AU ${pocs.length}`);
    pocs.push(poc!);
    keys.push(key);
  }
  // within each coded video sequence, POC order is presentation order
  let start = 0;
  for (let i = 1; i <= pocs.length; i++) {
    if (i < pocs.length && !keys[i]) continue;
    for (let a = start; a < i; a++) {
      for (let b = start; b < i; b++) {
        assert.equal(pocs[a] < pocs[b], s.pts[a] < s.pts[b], `${what}: AUs ${a}, ${b}`);
      }
    }
    start = i;
  }
  assert.ok(s.pts.some((p, i) => i > 0 && p < s.pts[i - 1]), `${what} has no B-frames`);
  const recovery = new DtsRecovery();
  recovery.configure(state.reorderHint, state.sps?.frameRate);
  const dts = s.pts.map((p, i) => recovery.next(p, pocs[i], keys[i]));
  for (let i = 0; i < dts.length; i++) {
    assert.ok(dts[i] <= s.pts[i], `${what}: dts after pts at ${i}`);
    if (i > 0) assert.ok(dts[i] > dts[i - 1], `${what}: dts not increasing at ${i}`);
  }
  // the same decode times as the encoder's, up to a constant
  assert.deepEqual(dts.map((d, i) => d - s.dts[i] - (dts[0] - s.dts[0])), dts.map(() => 0), what);
}

test.ffmpeg("poc: libx264 with B-pyramid: POC order is presentation order, DTS recovered", async () => {
  const s = await encoded("h264", "rtsp-poc-x264", [
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-bf",
    "3",
    "-b_strategy",
    "0",
    "-x264-params",
    "b-pyramid=normal",
    "-g",
    "30",
  ]);
  const state = new H264PictureState();
  checkStream(state, s, "x264");
  assert.equal(state.reorderHint, 2);
});

test.x265("poc: libx265 with B-pyramid and open GOPs: POC order, DTS recovered", async () => {
  const s = await encoded("h265", "rtsp-poc-x265", [
    "-c:v",
    "libx265",
    "-x265-params",
    "log-level=error:bframes=4:b-pyramid=1:keyint=30",
  ]);
  const state = new H265PictureState();
  checkStream(state, s, "x265");
  assert.ok(state.reorderHint! >= 1);
});

Deno.test("poc: slices without parameter sets have no POC; garbage does not throw", () => {
  const rand = prng(82);
  for (const state of [new H264PictureState(), new H265PictureState()]) {
    assert.equal(state.poc(Uint8Array.of(0x65, 0x88, 0x84)), undefined);
    assert.equal(state.poc(Uint8Array.of(0x26, 0x01, 0xaf)), undefined);
    for (let i = 0; i < 3000; i++) {
      const nal = Uint8Array.from(
        { length: 1 + Math.floor(rand() * 40) },
        () => Math.floor(rand() * 256),
      );
      if (state.isParameterSet(nal)) state.addParameterSet(nal);
      else state.poc(nal);
      state.record();
    }
  }
});
