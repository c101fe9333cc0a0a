/**
 * The defect of issue 13 item 8 end to end: srt-live-transmit publishes, through a relay
 * losing 10% of the datagrams each way, MPEG-TS joined mid-GOP (its first video frames come
 * without SPS/PPS). Live HLS must not stop: it starts at the first keyframe with parameter
 * sets, goes on to the end of the publish, and ffmpeg plays the playlist over HTTP.
 */

import assert from "node:assert/strict";
import { Registry } from "../../mod.ts";
import { serveSrt } from "../../ingest/srt/mod.ts";
import { LiveHls, serveHttp } from "../../ingest/http/mod.ts";
import { makeFixture, Procs, sine, testsrc, x264 } from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";
import { LossyRelay } from "../ingest/srt/_util.ts";
import { joinedMidGop } from "../media/ts/_helpers.ts";
import { assertPlays, parsePlaylist } from "../media/hls/_hls.ts";

const test = await testsWith({ srt: ["ffmpeg", "srt-live-transmit"] });
const SECONDS = 4;

test.srt("srt + hls e2e: a lossy publish joined mid-GOP still gets live HLS to its end, which ffmpeg plays", async () => {
  const file = await makeFixture("srt-hls-joined.ts", [
    ...testsrc({ duration: SECONDS }),
    ...sine({ duration: SECONDS }),
    ...x264({ gop: 25 }),
    ..."-c:a aac -f mpegts".split(" "),
  ]);
  const ts = joinedMidGop(await Deno.readFile(file));
  const log = new LogLines();
  const registry: Registry = new Registry({ observer: { onPublish: (key) => hls.start(key) } });
  const hls = new LiveHls({ registry, logger: log, targetDuration: 1, windowSize: 10 });
  const srt = await serveSrt({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    latencyMs: 1000,
    logger: log,
  });
  const http = serveHttp({ routes: [hls.route], hostname: "127.0.0.1", port: 0 });
  const relay = await LossyRelay.open({ target: srt.addr.port, loss: 0.1, seed: 0x1e13 });
  const children = new Procs();
  try {
    const nulls = new Uint8Array(1316);
    for (let at = 0; at < nulls.length; at += 188) nulls.set([0x47, 0x1f, 0xff, 0x10], at);
    const run = await children.spawn("srt-live-transmit", [
      "-a",
      "no",
      "-t",
      String(SECONDS + 3),
      "file://con",
      `srt://127.0.0.1:${relay.port}?streamid=publish:live/joined&latency=1000`,
    ], {
      limitMs: 30_000,
      feed: async (stdin) => {
        const start = performance.now();
        for (let at = 0; at < ts.length; at += 1316) {
          await stdin.write(ts.subarray(at, Math.min(at + 1316, ts.length)));
          const wait = start + (at / ts.length) * SECONDS * 1000 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        // null packets after the clip let the receiver notice a loss among its last packets
        for (let i = 0; i < 50; i++) await stdin.write(nulls);
      },
    });
    assert.equal(run.timedOut, false, run.stderr);
    assert.ok(relay.counts.upDropped > 10, `the relay dropped ${relay.counts.upDropped}`);
    await waitFor("the publish to end", () => registry.get("live", "joined") ? undefined : true);
    const base = `http://127.0.0.1:${http.addr.port}/live/joined`;
    const playlist = await waitFor("the finished playlist", async () => {
      const response = await fetch(`${base}/stream.m3u8`);
      const body = await response.text();
      return response.ok && parsePlaylist(body).ended ? parsePlaylist(body) : undefined;
    });
    assert.deepEqual(log.lines.filter((l) => /packaging stopped|skipped/.test(l)), []);
    const total = playlist.segments.reduce((sum, s) => sum + s.duration, 0);
    assert.ok(total > SECONDS - 1.5, `${total} s of the ${SECONDS} s clip are listed`);
    await assertPlays(base);
  } finally {
    children.killAll();
    await relay.close();
    await srt.close();
    await http.close();
    await hls.close();
  }
});
