/**
 * `cli.ts serve` end to end with real ffmpeg: RTMP publish; RTMP, HTTP-FLV and HLS play;
 * one publisher per key; the publisher leaving and coming back; two streams at once; the
 * API and metrics; a clean stop.
 */

import assert from "node:assert/strict";
import { probePackets, type ProbeStream, Procs, publishLive } from "../_util/ffmpeg.ts";
import { startServe, waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

const procs = new Procs();

function publish(url: string, seconds: number, size?: string) {
  return publishLive(procs, url, seconds, size);
}

function play(url: string, out: string, format: string) {
  return procs.run(
    "ffmpeg",
    ["-v", "warning", "-i", url, "-c", "copy", "-f", format, "-y", out],
    60_000,
  );
}

/** What every player's recording must look like: starts on a keyframe, DTS never goes back. */
async function checkRecording(path: string, width: number): Promise<ProbeStream[]> {
  const streams = await probePackets(path);
  const video = streams.find((s) => s.codecType === "video");
  const audio = streams.find((s) => s.codecType === "audio");
  assert.ok(video && audio, `${path} has video and audio`);
  assert.ok(video.packets.length > 10, `${path} has video packets`);
  assert.ok(video.packets[0].keyframe, `${path}: the first video packet is a keyframe`);
  for (const stream of [video, audio]) {
    for (let i = 1; i < stream.packets.length; i++) {
      assert.ok(stream.packets[i].dts! >= stream.packets[i - 1].dts!, `${path} DTS monotonic`);
    }
  }
  assert.equal(video.info.width, width, `${path} has the stream's own picture size`);
  return streams;
}

test.ffmpeg("serve: RTMP publish, then RTMP, HTTP-FLV and HLS play, republish, two streams", async () => {
  const server = await startServe(["rtmp", "http"]);
  const dir = await Deno.makeTempDir({ prefix: "arcly-serve-" });
  const rtmp = `rtmp://127.0.0.1:${server.ports.rtmp}/live`;
  const http = `http://127.0.0.1:${server.ports.http}`;
  try {
    const publisherA = publish(`${rtmp}/a`, 8);
    const publisherB = publish(`${rtmp}/b`, 5, "160x120");
    // Join late: once HLS has a segment, the stream is a couple of seconds in.
    await waitFor("the first HLS segment of live/a", async () => {
      const response = await fetch(`${http}/live/a/stream.m3u8`);
      const text = await response.text();
      return response.ok && /#EXTINF/.test(text) ? text : undefined;
    });
    await waitFor("live/b", async () => {
      const response = await fetch(`${http}/v1/streams/live/b`);
      await response.body?.cancel();
      return response.ok || undefined;
    });
    const players = [
      play(`${rtmp}/a`, `${dir}/rtmp.flv`, "flv"),
      play(`${http}/live/a.flv`, `${dir}/http.flv`, "flv"),
      play(`${http}/live/a/index.m3u8`, `${dir}/hls.ts`, "mpegts"),
      play(`${rtmp}/b`, `${dir}/b.flv`, "flv"),
    ];
    const intruder = await publish(`${rtmp}/a`, 2);
    assert.notEqual(intruder.code, 0, "a second publisher on live/a is refused");

    // The HLS packager, the RTMP player and the HTTP-FLV player read live/a.
    const a = await waitFor("three subscribers on live/a", async () => {
      const streams = await (await fetch(`${http}/v1/streams`)).json();
      const a = streams.find((s: { key: string }) => s.key === "live/a");
      return a?.subscribers >= 3 ? a : undefined;
    });
    assert.equal(a.ingestProtocol, "rtmp");
    assert.equal(a.width, 320);
    assert.equal(a.height, 240);
    assert.deepEqual(a.codecs.map((c: string) => c.slice(0, 4)), ["avc1", "mp4a"]);

    for (const publisher of [publisherA, publisherB]) {
      const result = await publisher;
      assert.equal(result.code, 0, result.stderr);
    }
    for (const player of players) {
      const result = await player;
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, "", "no warnings from the player");
    }
    await checkRecording(`${dir}/rtmp.flv`, 320);
    await checkRecording(`${dir}/http.flv`, 320);
    await checkRecording(`${dir}/hls.ts`, 320);
    await checkRecording(`${dir}/b.flv`, 160);

    const ended = await (await fetch(`${http}/live/a/stream.m3u8`)).text();
    assert.match(ended, /#EXT-X-ENDLIST/, "the playlist ends when the publisher leaves");

    const again = await publish(`${rtmp}/a`, 4);
    assert.equal(again.code, 0, `republishing works: ${again.stderr}`);
    const resumed = await waitFor("the republished playlist to end", async () => {
      const text = await (await fetch(`${http}/live/a/stream.m3u8`)).text();
      return /#EXT-X-DISCONTINUITY\n/.test(text) && /#EXT-X-ENDLIST/.test(text) ? text : undefined;
    });
    assert.match(resumed, /#EXT-X-DISCONTINUITY-SEQUENCE:\d+|#EXT-X-DISCONTINUITY\n/);

    const metrics = await (await fetch(`${http}/metrics`)).text();
    assert.match(metrics, /^arcly_publishes_total\{protocol="rtmp"\} 3$/m);
    assert.equal((await fetch(`${http}/live/nope/index.m3u8`)).status, 404);
  } finally {
    procs.killAll();
    const code = await server.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, `serve exits 0 on SIGTERM:\n${server.log.join("\n")}`);
  }
  const log = server.log.join("\n");
  assert.match(log, /publish live\/a via rtmp from 127\.0\.0\.1:\d+/);
  assert.match(log, /stopping on SIGTERM/);
});
