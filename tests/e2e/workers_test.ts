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
import { configFrame, videoFrame } from "../_util/frames.ts";

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
      // One publish, counted once, by the worker it came in on; no mirror is counted.
      const metrics = await waitFor("worker 1's counts", async () => {
        const text = await (await fetch(`${http}/metrics`)).text();
        return /^arcly_publishes_total\{protocol="rtmp"\} 1$/m.test(text) ? text : undefined;
      });
      assert.doesNotMatch(metrics, /protocol="worker"/);
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

Deno.test("workers: a reader on worker 1 of a stream that is not live starts it on worker 0 (on demand) and counts as its reader there while it reads", async () => {
  const { server, ports, log, stop } = await startServer(["http"], { workers: 2 });
  const http = `http://127.0.0.1:${ports.http}`;
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  const timers = new Set<ReturnType<typeof setInterval>>();
  const demanded: string[] = [];
  try {
    // A source that starts when a reader asks (what server/sources.ts does with a URL).
    server.registry.configure({
      demand: (app, stream) => {
        demanded.push(`${app}/${stream}`);
        const handle = server.registry.startPublish(app, stream, { protocol: "pull" });
        handle.publish(configFrame("video"));
        handle.publish(videoFrame(0, true));
        let pts = 0;
        const timer = setInterval(
          () => handle.publish(videoFrame(pts += 3000, pts % 30000 === 0)),
          50,
        );
        timers.add(timer);
        handle.signal.addEventListener("abort", () => clearInterval(timer));
        return true;
      },
    });
    // Fresh connections until one lands on worker 1 (each fetch is a new 4-tuple).
    let body: ReadableStreamDefaultReader<Uint8Array> | undefined;
    for (let i = 0; i < 40 && !body; i++) {
      const name = `od${i}`;
      const response = await fetch(`${http}/live/${name}.flv`, { client });
      assert.equal(response.status, 200, name);
      const played = new RegExp(`http-flv .*: play live/${name}$`);
      const line = await log.waitFor(played, 5000);
      const onWorker1 = line.startsWith("info worker 1: ");
      if (onWorker1) body = response.body!.getReader();
      else await response.body?.cancel();
    }
    assert.ok(body, "a player landed on worker 1");
    const first = await body.read();
    assert.ok(first.value && first.value[0] === 0x46, "the FLV header came through worker 1"); // "F"
    const key = demanded.at(-1)!;
    const source = server.registry.lookup(key)!;
    // The player on worker 1 is the one reader here (the mirror to worker 1 reads in the
    // background; HLS's wait for an audio config of this video-only stream is a reader for
    // up to 3 s: audioConfigOf in media/transcode/views.ts).
    await waitFor("one reader on worker 0", () => source.readerCount === 1 || undefined, 10_000);
    // The API counts every worker's: the HLS packager here and the player on worker 1.
    await waitFor("2 subscribers in the API", async () => {
      const summary = await (await fetch(`${http}/v1/streams/${key}`, { client })).json();
      return summary.subscribers === 2 || undefined;
    });
    await body.cancel();
    // Worker 1's next report says its player left: no reader here either.
    await waitFor("no reader on worker 0", () => source.readerCount === 0 || undefined, 10_000);
  } finally {
    for (const timer of timers) clearInterval(timer);
    client.close();
    await stop();
  }
});
