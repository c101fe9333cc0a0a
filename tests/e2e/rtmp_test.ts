/**
 * RTMP end to end with real ffmpeg: publish H.264 + AAC (with B-frames) into
 * serveRtmp, play it back over RTMP, record what players got and check it with ffprobe.
 */

import assert from "node:assert/strict";
import { Registry, type StreamHandle } from "../../mod.ts";
import { serveRtmp } from "../../ingest/rtmp/mod.ts";
import {
  decodeCheck,
  probePackets,
  type ProbeStream,
  Procs,
  sine,
  tempPath,
  testsrc,
  to90k,
  x264,
} from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** ffmpeg args publishing `seconds` of testsrc2 + sine as H.264 (2 B-frames, GOP 50) + AAC. */
function publishArgs(url: string, seconds: number, size = "320x240"): string[] {
  return [
    ...["-v", "error", "-re"],
    ...testsrc({ size, rate: 25, duration: seconds }),
    ...sine({ duration: seconds }),
    ...x264({ gop: 50 }),
    ...["-c:a", "aac", "-f", "flv", "-flvflags", "no_duration_filesize", url],
  ];
}

/** ffmpeg args recording an RTMP stream to an FLV file as received (no re-encoding, no rebasing). */
function recordArgs(url: string, file: string): string[] {
  return ["-v", "warning", "-i", url, "-c", "copy", "-copyts", "-f", "flv", "-y", file];
}

/** Resolves once the registry has `stream` and it published a frame at or after `seconds`. */
async function reached(registry: Registry, stream: string, seconds: number): Promise<StreamHandle> {
  let handle: StreamHandle | undefined;
  for (let i = 0; i < 300 && !handle; i++) {
    handle = registry.get("live", stream);
    if (!handle) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(handle, `stream live/${stream} was never published`);
  for await (const frame of handle.subscribe()) {
    if (frame.dts >= seconds * 90000) return handle;
  }
  throw new Error(`live/${stream} ended before ${seconds} s`);
}

function stream(streams: ProbeStream[], type: string): ProbeStream {
  const s = streams.find((s) => s.codecType === type);
  assert.ok(s, `no ${type} stream`);
  return s;
}

/** Decode times in order, without gaps longer than `maxGap` ticks (90 kHz). */
function assertInOrder(s: ProbeStream, maxGap: number, what: string): void {
  const dts = s.packets.map((p) => to90k(p.dts!, s.timeBase));
  for (let i = 1; i < dts.length; i++) {
    assert.ok(dts[i] > dts[i - 1], `${what}: dts ${dts[i]} after ${dts[i - 1]} (packet ${i})`);
    assert.ok(dts[i] - dts[i - 1] <= maxGap, `${what}: gap of ${dts[i] - dts[i - 1]} at ${i}`);
  }
}

test.ffmpeg("rtmp e2e: ffmpeg publishes, early and late players get ordered frames, a second publisher is refused", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, logger: log });
  const url = `rtmp://127.0.0.1:${server.addr.port}/live/x`;
  const procs = new Procs();
  try {
    const early = await tempPath("rtmp-early.flv");
    const late = await tempPath("rtmp-late.flv");
    const publisher = procs.run("ffmpeg", publishArgs(url, 6), 30_000);
    await reached(registry, "x", 0);
    const earlyPlayer = procs.run("ffmpeg", recordArgs(url, early), 30_000);
    const nullArgs = ["-v", "warning", "-i", url, "-c", "copy", "-f", "null", "-"];
    const nullPlayer = procs.run("ffmpeg", nullArgs, 30_000);
    await reached(registry, "x", 2.5);
    const latePlayer = procs.run("ffmpeg", recordArgs(url, late), 30_000);
    const second = await procs.run("ffmpeg", publishArgs(url, 2), 20_000);
    assert.equal(second.timedOut, false);
    assert.notEqual(second.code, 0, "the second publisher on a live key must be refused");
    await log.waitFor(/publish live\/x refused: .*already has a publisher/);

    const pub = await publisher;
    assert.deepEqual([pub.code, pub.stderr, pub.timedOut], [0, "", false]);
    // The publisher left: every player ends by itself, cleanly.
    for (
      const [name, player] of [["early", earlyPlayer], ["null", nullPlayer], [
        "late",
        latePlayer,
      ]] as const
    ) {
      const out = await player;
      assert.deepEqual([out.code, out.stderr, out.timedOut], [0, "", false], `${name} player`);
    }

    const earlyStreams = await probePackets(early);
    const video = stream(earlyStreams, "video");
    const audio = stream(earlyStreams, "audio");
    assert.equal(video.codecName, "h264");
    assert.equal(audio.codecName, "aac");
    assert.ok(video.packets.some((p) => p.pts! > p.dts!), "B-frames: some pts after dts");
    assert.ok(video.packets[0].keyframe, "first video packet of the early player is a keyframe");
    assertInOrder(video, 3600, "early video");
    assertInOrder(audio, 1920 * 2, "early audio");
    // the early player joined right away: it got (nearly) the whole 6 s
    assert.ok(
      video.packets.length >= 140,
      `early player got ${video.packets.length} video packets`,
    );

    const lateStreams = await probePackets(late);
    const lateVideo = stream(lateStreams, "video");
    assert.ok(lateVideo.packets[0].keyframe, "first video packet of the late player is a keyframe");
    assertInOrder(lateVideo, 3600, "late video");
    assertInOrder(stream(lateStreams, "audio"), 1920 * 2, "late audio");
    // it joined after 2.5 s and started from the cached GOP (keyframe at 2 s), not from 0
    const lateStart = lateVideo.packets[0].dts! * lateVideo.timeBase[0] / lateVideo.timeBase[1];
    assert.ok(lateStart >= 1.9, `late player started at ${lateStart} s`);

    for (const file of [early, late]) {
      const check = await decodeCheck(file);
      assert.deepEqual([check.code, check.stderr], [0, ""], file);
    }
    assert.ok(!log.lines.some((l) => l.startsWith("error")), log.lines.join("\n"));
  } finally {
    procs.killAll();
    await server.close();
  }
});

test.ffmpeg("rtmp e2e: two streams at once stay independent; a publisher leaving ends only its players", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, logger: log });
  const base = `rtmp://127.0.0.1:${server.addr.port}/live`;
  const procs = new Procs();
  try {
    const bigFile = await tempPath("rtmp-big.flv");
    const smallFile = await tempPath("rtmp-small.flv");
    // Long enough that both players connect before `small` ends, even on a loaded machine.
    const big = procs.run("ffmpeg", publishArgs(`${base}/big`, 9, "320x240"), 40_000);
    const small = procs.run("ffmpeg", publishArgs(`${base}/small`, 5, "160x120"), 40_000);
    await Promise.all([reached(registry, "big", 0), reached(registry, "small", 0)]);
    const bigPlayer = procs.run("ffmpeg", recordArgs(`${base}/big`, bigFile), 40_000);
    const smallPlayer = procs.run("ffmpeg", recordArgs(`${base}/small`, smallFile), 40_000);

    const smallOut = await smallPlayer;
    assert.deepEqual([smallOut.code, smallOut.stderr, smallOut.timedOut], [0, "", false]);
    assert.ok(registry.get("live", "big"), "the other stream is still live when this one ends");
    assert.equal((await small).code, 0);
    assert.equal((await big).code, 0);
    const bigOut = await bigPlayer;
    assert.deepEqual([bigOut.code, bigOut.stderr, bigOut.timedOut], [0, "", false]);

    const bigVideo = stream(await probePackets(bigFile), "video");
    const smallVideo = stream(await probePackets(smallFile), "video");
    assert.deepEqual([bigVideo.info.width, bigVideo.info.height], [320, 240]);
    assert.deepEqual([smallVideo.info.width, smallVideo.info.height], [160, 120]);
    const span = (s: ProbeStream) =>
      (s.packets.at(-1)!.dts! - s.packets[0].dts!) * s.timeBase[0] / s.timeBase[1];
    assert.ok(span(bigVideo) > 6, `big stream played for ${span(bigVideo)} s`);
    assert.ok(span(smallVideo) < 5.5, `small stream played for ${span(smallVideo)} s`);
    assertInOrder(bigVideo, 3600, "big video");
    assertInOrder(smallVideo, 3600, "small video");
  } finally {
    procs.killAll();
    await server.close();
  }
});
