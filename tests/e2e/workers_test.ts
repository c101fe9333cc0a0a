/**
 * `serve()` on two workers (`workers: 2`): RTMP and HTTP listen on every worker with
 * `reusePort`, a stream published over RTMP into whichever worker the kernel picked plays
 * from both over RTMP and HTTP-FLV, starting on a keyframe (ffmpeg `-xerror`), and the HTTP
 * requests worker 1 forwards (the streams API, HLS) are answered by worker 0. The log says
 * which worker ran each play (`worker 1:` lines come from worker 1).
 */

import assert from "node:assert/strict";
import { decodeCheck, probePackets, Procs, publishLive, tempPath } from "../_util/ffmpeg.ts";
import { startServer, waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";

const { ffmpegTest } = await testsWith({ ffmpegTest: ["ffmpeg", "ffprobe"] });
const procs = new Procs();

/** Which worker logged the play of `peer` as `line` (worker 0 has no prefix). */
function workerOf(line: string): number {
  const match = /^info worker (\d+): /.exec(line);
  return match ? Number(match[1]) : 0;
}

ffmpegTest(
  "workers: an RTMP publish plays from both workers over RTMP and HTTP-FLV, starting on a keyframe",
  async () => {
    const { server, ports, log, stop } = await startServer(["rtmp", "http"], { workers: 2 });
    const rtmp = `rtmp://127.0.0.1:${ports.rtmp}/live/w`;
    const http = `http://127.0.0.1:${ports.http}`;
    try {
      assert.ok(log.lines.some((line) => /2 workers/.test(line)), log.lines.join("\n"));
      const publisher = publishLive(procs, rtmp, 20);
      await log.waitFor(/rtmp .*: publish live\/w/, 20_000);
      await waitFor("the stream in worker 0", () => server.registry.get("live", "w"));
      await new Promise((resolve) => setTimeout(resolve, 1500)); // join mid-GOP
      /** Record 2 s of a player's stream, then check it: decodes clean, starts on a keyframe. */
      const play = async (url: string, name: string) => {
        const out = await tempPath(`workers_${name}.flv`);
        const run = await procs.run(
          "ffmpeg",
          ["-v", "warning", "-xerror", "-i", url, "-t", "2", "-c", "copy", "-y", out],
          30_000,
        );
        assert.equal(run.code, 0, `${url}: ${run.stderr}`);
        const video = (await probePackets(out)).find((stream) => stream.codecType === "video");
        assert.ok(video && video.packets.length > 0, `${url}: no video`);
        assert.ok(video.packets[0].keyframe, `${url}: the first video packet is a keyframe`);
        const decoded = await decodeCheck(out);
        assert.equal(decoded.code, 0, decoded.stderr);
        assert.equal(decoded.stderr, "", `${url}: decodes without a warning`);
      };
      // The kernel spreads connections by their addresses: play until each protocol has been
      // played from both workers (a round of 2 + 2 players; 6 rounds miss one only 1 in 1,000+).
      const seen = { rtmp: new Set<number>(), flv: new Set<number>() };
      for (let round = 0; round < 6 && (seen.rtmp.size < 2 || seen.flv.size < 2); round++) {
        const before = log.lines.length;
        await Promise.all([
          play(rtmp, `r${round}a`),
          play(rtmp, `r${round}b`),
          play(`${http}/live/w.flv`, `f${round}a`),
          play(`${http}/live/w.flv`, `f${round}b`),
        ]);
        for (const line of log.lines.slice(before)) {
          if (/ rtmp .*: play live\/w/.test(line)) seen.rtmp.add(workerOf(line));
          if (/ http-flv .*: play live\/w/.test(line)) seen.flv.add(workerOf(line));
        }
      }
      assert.deepEqual([...seen.rtmp].sort(), [0, 1], "RTMP played from both workers");
      assert.deepEqual([...seen.flv].sort(), [0, 1], "HTTP-FLV played from both workers");
      // Requests on fresh connections land on either worker; worker 0 answers them all.
      const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
      try {
        for (let i = 0; i < 6; i++) {
          const api = await fetch(`${http}/v1/streams/live/w`, { client });
          assert.equal(api.status, 200);
          const body = await api.json();
          assert.equal(body.ingestProtocol, "rtmp", "the origin's protocol, whichever worker");
          const playlist = await fetch(`${http}/live/w/index.m3u8`, { client });
          assert.equal(playlist.status, 200);
          assert.match(await playlist.text(), /#EXTM3U/);
        }
      } finally {
        client.close();
      }
      procs.killAll();
      await publisher;
      await waitFor("the end of live/w", () => server.registry.get("live", "w") ? undefined : true);
    } finally {
      procs.killAll();
      await stop();
    }
  },
);

ffmpegTest(
  "workers: with workers 1 nothing is spread or mirrored (the single-process server)",
  async () => {
    const { server, ports, log, stop } = await startServer(["rtmp"], { workers: 1 });
    try {
      const publisher = publishLive(procs, `rtmp://127.0.0.1:${ports.rtmp}/live/one`, 3);
      const handle = await waitFor("live/one", () => server.registry.get("live", "one"));
      assert.equal(handle.metadata().ingestProtocol, "rtmp");
      assert.equal((await publisher).code, 0);
      assert.ok(!log.lines.some((line) => /workers|worker \d+:/.test(line)), log.lines.join("\n"));
    } finally {
      procs.killAll();
      await stop();
    }
  },
);
