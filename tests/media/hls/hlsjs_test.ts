/**
 * hls.js in headless Chromium plays what the packager writes: a live Low-Latency HLS
 * stream written in real time, through a tiny server that answers blocking playlist
 * reloads (`_HLS_msn`, `_HLS_part`) and preload-hint requests with `waitForPart`; and
 * VOD with a discontinuity and new codec configs (a new `EXT-X-MAP` in fMP4), which
 * ffmpeg's HLS reader cannot follow.
 */

import assert from "node:assert/strict";
import { HlsPackager, MemoryStorage } from "../../../media/hls/mod.ts";
import { CLOCK_RATE } from "../../../mod.ts";
import { type HlsJsReport, PLAYBACK_EVENT, watchWithHlsJs } from "../../_util/hlsjs.ts";
import { mp4Frames } from "../fmp4/_frames.ts";
import { h264Aac, packageFrames, twoEncodings } from "./_hls.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ chromium: ["chromium", "ffmpeg", "ffprobe"] });

/** Serves `storage` at `/hls/` to hls.js in Chromium and returns what the page saw. */
function play(
  storage: MemoryStorage,
  options: {
    /** Whether the page plays the video (else hls.js only buffers). */
    playback: boolean;
    /** Writes the stream; `watching` resolves at the player's first request. */
    run?: (watching: Promise<void>) => Promise<void>;
    /** May hold a request back. */
    wait?: (name: string, url: URL) => Promise<void>;
  },
): Promise<HlsJsReport> {
  const { playback, run = () => Promise.resolve(), wait = () => Promise.resolve() } = options;
  const watching = Promise.withResolvers<void>();
  const route = async (_request: Request, url: URL) => {
    if (!url.pathname.startsWith("/hls/")) return undefined;
    watching.resolve();
    const name = url.pathname.slice("/hls/".length);
    await wait(name, url);
    const data = storage.read(name);
    if (!data) return new Response("not found", { status: 404 });
    const type = name.endsWith(".m3u8")
      ? "application/vnd.apple.mpegurl"
      : name.endsWith(".ts")
      ? "video/mp2t"
      : "video/mp4";
    return new Response(data as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": type, "cache-control": "no-cache" },
    });
  };
  return watchWithHlsJs("/hls/index.m3u8", { playback, route, run: () => run(watching.promise) });
}

test.chromium({
  name: "hls.js: live Low-Latency HLS with blocking reloads and preload hints",
  fn: async () => {
    const { configs, frames } = await mp4Frames(await h264Aac(), 6000);
    const storage = new MemoryStorage();
    const packager = new HlsPackager({
      storage,
      segmentType: "fmp4",
      targetDuration: 1,
      partDuration: 0.25,
      windowSize: 8,
    });
    let blocking = 0;
    const wait = async (name: string, url: URL) => {
      await packager.waitForSegment(0); // the playlists exist once the first segment does
      const timeout = AbortSignal.timeout(3000);
      const msn = url.searchParams.get("_HLS_msn");
      if (name === "stream.m3u8" && msn !== null) {
        blocking++;
        const part = Number(url.searchParams.get("_HLS_part") ?? Infinity);
        await packager.waitForPart(Number(msn), part, timeout).catch(() => {});
      }
      const hinted = /^seg(\d+)\.(\d+)\.m4s$/.exec(name);
      if (hinted && !storage.read(name)) {
        await packager.waitForPart(Number(hinted[1]), Number(hinted[2]), timeout).catch(() => {});
      }
    };
    const run = async (watching: Promise<void>) => {
      // Publish in real time, from when the player asks for the stream.
      const writer = packager.getWriter();
      for (const c of configs) await writer.write(c);
      await watching;
      const t0 = performance.now();
      for (const f of frames) {
        const due = t0 + ((f.dts - frames[0].dts) / CLOCK_RATE) * 1000 - performance.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
        await writer.write(f);
      }
      await writer.close();
    };
    const report = await play(storage, { playback: false, run, wait });
    assert.deepEqual(report.errors.filter((e) => !PLAYBACK_EVENT.test(e)), []);
    assert.ok(report.parts > 4, `hls.js buffered ${report.parts} parts`);
    assert.ok(blocking > 4, `${blocking} blocking playlist reloads`);
    assert.equal(report.ranges.length, 1);
    const [[start, end]] = report.ranges;
    assert.ok(start < 1 && end > 5.5, `buffered ${start} to ${end} s`);
  },
});

for (const segmentType of ["ts", "fmp4"] as const) {
  test.chromium({
    name: `hls.js: a ${segmentType} VOD with a discontinuity and new codec configs`,
    fn: async () => {
      const { a, b } = await twoEncodings();
      const storage = new MemoryStorage();
      const packager = await packageFrames([...a, ...b], {
        storage,
        segmentType,
        playlistType: "vod",
      });
      // played: hls.js steps over the sliver between the encodings only when playing
      const report = await play(storage, { playback: true });
      // Where audio and video of the two encodings do not end and start together a sliver
      // is left (fMP4 is not remuxed), which playback steps over: non-fatal buffer events.
      assert.deepEqual(report.errors.filter((e) => !PLAYBACK_EVENT.test(e)), []);
      assert.ok(report.fragments >= packager.stats.segments - 1);
      // 6 s then 4 s, one after the other on the player's timeline
      const ranges = report.ranges;
      for (let i = 1; i < ranges.length; i++) {
        assert.ok(ranges[i][0] - ranges[i - 1][1] < 0.05, `a hole: ${JSON.stringify(ranges)}`);
      }
      const end = ranges.at(-1)![1];
      assert.ok(
        ranges[0][0] < 0.1 && end > 9.9 && end < 10.2,
        `buffered ${JSON.stringify(ranges)}`,
      );
    },
  });
}
