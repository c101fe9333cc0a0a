/**
 * `cli.ts serve --hls-segment-type fmp4 --hls-part-duration 0.5` end to end: ffmpeg publishes
 * over RTMP; the server holds blocking playlist reloads until the part they name is listed;
 * hls.js in Chromium plays the stream in Low-Latency mode, part by part; ffmpeg plays the
 * same playlist (it reads whole segments) without a warning.
 */

import assert from "node:assert/strict";
import { decodeCheck, Procs, publishLive, tempPath } from "../_util/ffmpeg.ts";
import { PLAYBACK_EVENT, watchWithHlsJs } from "../_util/hlsjs.ts";
import { startServe, waitFor } from "../_util/serve.ts";
import { parsePlaylist } from "../media/hls/_hls.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ chromium: ["chromium", "ffmpeg", "ffprobe"] });

test.chromium({
  name: "ll-hls e2e: RTMP in; blocking reloads, hls.js playing parts, and ffmpeg playing it",
  fn: async () => {
    const server = await startServe(["rtmp", "http"], [
      "--hls-segment-type",
      "fmp4",
      "--hls-part-duration",
      "0.5",
    ]);
    const procs = new Procs();
    const http = `http://127.0.0.1:${server.ports.http}/live/ll`;
    try {
      const publisher = publishLive(procs, `rtmp://127.0.0.1:${server.ports.rtmp}/live/ll`, 14);
      // Join as a viewer does, mid-stream. (At the very start, where this source's audio
      // begins 59 ms after its first keyframe, hls.js finds the first segment's buffered range
      // that much shorter than its EXTINF and loads it a second time, with a non-fatal
      // bufferAppendNoProgress.)
      const first = await waitFor("three segments", async () => {
        const response = await fetch(`${http}/stream.m3u8`);
        const text = await response.text();
        const playlist = response.ok ? parsePlaylist(text) : undefined;
        return playlist && playlist.segments.length >= 3 ? playlist : undefined;
      });
      assert.match(first.tags.get("EXT-X-SERVER-CONTROL") ?? "", /CAN-BLOCK-RELOAD=YES/);

      // A reload naming the part after the last listed one comes back listing it.
      const msn = Number(first.tags.get("EXT-X-MEDIA-SEQUENCE")) + first.segments.length;
      const part = first.pendingParts.length;
      const reload = await fetch(`${http}/stream.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`);
      assert.equal(reload.status, 200);
      const held = parsePlaylist(await reload.text());
      const heldMsn = Number(held.tags.get("EXT-X-MEDIA-SEQUENCE")) + held.segments.length;
      assert.ok(
        heldMsn > msn || held.pendingParts.length > part,
        `part ${part} of segment ${msn} is listed`,
      );

      const recording = await tempPath("llhls.mp4");
      const [report, player] = await Promise.all([
        watchWithHlsJs(`${http}/index.m3u8`, { seconds: 4 }),
        procs.run("ffmpeg", [
          ...["-v", "warning", "-i", `${http}/index.m3u8`, "-t", "4"],
          ...["-c", "copy", "-f", "mp4", "-y", recording],
        ], 60_000),
      ]);
      assert.deepEqual(report.errors.filter((e) => !PLAYBACK_EVENT.test(e)), []);
      assert.ok(report.blockingReloads, "hls.js saw a playlist it may block on");
      // parts, not only whole segments (how many in 4 s depends on the machine)
      assert.ok(report.parts >= 2, `hls.js buffered ${report.parts} parts`);
      assert.equal(report.ranges.length, 1, `one buffered range: ${JSON.stringify(report.ranges)}`);
      assert.equal(player.code, 0, player.stderr);
      assert.equal(player.stderr, "", "no warnings from ffmpeg");
      const check = await decodeCheck(recording);
      assert.equal(check.code, 0, check.stderr);
      assert.equal(check.stderr, "");

      const published = await publisher;
      assert.equal(published.code, 0, published.stderr);
    } finally {
      procs.killAll();
      const code = await server.stop();
      assert.equal(code, 0, `serve exits 0 on SIGTERM:\n${server.log.join("\n")}`);
    }
  },
});
