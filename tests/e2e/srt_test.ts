/**
 * SRT end to end with libsrt on the other side: ffmpeg and srt-live-transmit publish and
 * read through serveSrt, a UDP relay loses 10% of the packets each way, and SRT meets
 * RTMP through the registry. Real clients decide: ffmpeg decodes what readers recorded.
 */

import assert from "node:assert/strict";
import { type MediaFrame, Registry } from "../../mod.ts";
import { serveSrt, type SrtServer } from "../../ingest/srt/mod.ts";
import { serveRtmp } from "../../ingest/rtmp/mod.ts";
import { TsDecoder } from "../../media/ts/mod.ts";
import {
  decodeCheck,
  makeFixture,
  probePackets,
  Procs,
  sine,
  tempPath,
  testsrc,
} from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { LossyRelay } from "../ingest/srt/_util.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ srt: ["ffmpeg", "ffprobe", "srt-live-transmit"] });

const SECONDS = 3;

/** testsrc2 + sine for `seconds`, encoded H.264 (B-frames, one-second GOPs) + AAC. */
function source(seconds: number): string[] {
  return [
    ...testsrc({ duration: seconds }),
    ...sine({ duration: seconds }),
    ...["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"],
    ...["-c:a", "aac"],
  ];
}

/** The clip as an MPEG-TS file. */
function clip(): Promise<string> {
  return makeFixture("srt-clip.ts", [...source(SECONDS), "-f", "mpegts"]);
}

/**
 * A live publisher of 8 s: long enough that readers started after its first frames still get
 * their 1.5 s before it ends on a loaded machine (a reader that outlives the stream gets an
 * end-of-stream error from libsrt).
 */
function liveEncode(url: string, format: "mpegts" | "flv"): string[] {
  return ["-hide_banner", "-nostdin", "-v", "error", "-re", ...source(8), "-f", format, url];
}

function demux(bytes: Uint8Array): MediaFrame[] {
  const frames: MediaFrame[] = [];
  const decoder = new TsDecoder();
  decoder.decode(bytes, (f) => frames.push(f));
  decoder.flush((f) => frames.push(f));
  return frames;
}

/** Frames are the same: track, kind, codec, timestamps, flags and every byte. */
function assertSameFrames(actual: MediaFrame[], expected: MediaFrame[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: frame count`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const meta = (
      f: MediaFrame,
    ) => [f.track, f.kind, f.codec, f.pts, f.dts, f.flags, f.data.length];
    assert.deepEqual(meta(a), meta(e), `${what}: frame ${i}`);
    assert.ok(a.data.every((b, k) => b === e.data[k]), `${what}: frame ${i} bytes`);
  }
}

async function until(what: string, test: () => boolean, ms = 15_000): Promise<void> {
  const end = performance.now() + ms;
  while (!test()) {
    if (performance.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A registry that records every frame published, per stream key, and a server on it. */
async function setup(latencyMs = 120): Promise<{
  registry: Registry;
  server: SrtServer;
  log: LogLines;
  published: Map<string, MediaFrame[]>;
  ended: Set<string>;
}> {
  const published = new Map<string, MediaFrame[]>();
  const ended = new Set<string>();
  const registry = new Registry({
    observer: {
      onPublish: (key) => void published.set(key, []),
      onFrame: (key, frame) => void published.get(key)?.push(frame),
      onUnpublish: (key) => void ended.add(key),
    },
  });
  const log = new LogLines();
  const server = await serveSrt({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
    latencyMs,
  });
  return { registry, server, log, published, ended };
}

/** Writes `file` to `stdin` at its own bitrate over SECONDS, then half a second of null packets. */
function paced(file: Uint8Array) {
  const nulls = new Uint8Array(1316);
  for (let at = 0; at < nulls.length; at += 188) nulls.set([0x47, 0x1f, 0xff, 0x10], at);
  return async (stdin: WritableStreamDefaultWriter<Uint8Array>) => {
    const start = performance.now();
    for (let at = 0; at < file.length; at += 1316) {
      await stdin.write(file.subarray(at, Math.min(at + 1316, file.length)));
      const due = start + (at / file.length) * SECONDS * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    // Nothing follows the last packets of a live stream, so a lost one could not be
    // noticed: null packets (ignored by the demuxer) let the receiver see every gap.
    for (let i = 0; i < 50; i++) {
      await stdin.write(nulls);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
}

test.srt("srt e2e: ffmpeg publishes live H.264 + AAC; ffmpeg and srt-live-transmit read it cleanly", async () => {
  const { registry, server, log, published } = await setup();
  const children = new Procs();
  const url = (id: string) => `srt://127.0.0.1:${server.addr.port}?streamid=${id}`;
  try {
    const publisher = children.spawn(
      "ffmpeg",
      // ffmpeg takes the latency in µs: a second, as for srt-live-transmit's reader below
      liveEncode(`${url("publish:live/x")}&pkt_size=1316&latency=1000000`, "mpegts"),
      { limitMs: 30_000 },
    );
    await until("frames", () => (published.get("live/x")?.length ?? 0) > 0);
    const recorded = await tempPath("srt-read.ts");
    const ffmpegReader = children.spawn("ffmpeg", [
      "-hide_banner",
      "-nostdin",
      "-v",
      "warning",
      "-i",
      url("read:live/x"),
      "-c",
      "copy",
      "-t",
      "1.5",
      "-f",
      "mpegts",
      "-y",
      recorded,
    ], { limitMs: 30_000 });
    const nullReader = children.spawn("ffmpeg", [
      "-hide_banner",
      "-nostdin",
      "-v",
      "warning",
      "-i",
      url("#!::r=live/x,u=viewer"),
      "-c",
      "copy",
      "-t",
      "1.5",
      "-f",
      "null",
      "-",
    ], { limitMs: 30_000 });
    const sltReader = children.spawn("srt-live-transmit", [
      "-a",
      "no",
      "-t",
      "20",
      // A second of latency: on a loaded machine (the suite runs files in parallel on two
      // cores) 120 ms is not always enough for a repair, and a late packet is dropped.
      `${url("read:live/x")}&latency=1000`,
      "file://con",
    ], { limitMs: 30_000, stdout: true });

    const [pub, rec, nul, slt] = await Promise.all([
      publisher,
      ffmpegReader,
      nullReader,
      sltReader,
    ]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(pub.stderr, "");
    for (const [what, r] of [["ffmpeg reader", rec], ["ffmpeg -f null reader", nul]] as const) {
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, "", what);
    }
    assert.equal(slt.timedOut, false, slt.stderr);

    const check = await decodeCheck(recorded);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stderr, "");
    const streams = await probePackets(recorded);
    assert.deepEqual(streams.map((s) => s.codecName).sort(), ["aac", "h264"]);
    assert.ok(streams.every((s) => s.packets.length > 10), "both tracks carried packets");

    const sltFile = await tempPath("srt-slt-read.ts");
    await Deno.writeFile(sltFile, slt.stdout);
    const sltCheck = await decodeCheck(sltFile);
    const srtLog = log.lines.filter((l) => / srt /.test(l)).join("\n");
    assert.equal(sltCheck.code, 0, `${sltCheck.stderr}\n${srtLog}`);
    assert.equal(sltCheck.stderr, "");
    const sltVideo = (await probePackets(sltFile)).find((s) => s.codecName === "h264");
    assert.ok(sltVideo && sltVideo.packets.length >= 25, "srt-live-transmit got a second of video");
    assert.ok(sltVideo.packets[0].keyframe, "readers start on a keyframe");

    await log.waitFor(/srt 127\.0\.0\.1:\d+: read live\/x/);
    assert.equal(registry.get("live", "x"), undefined, "the publish ended with ffmpeg");
  } finally {
    children.killAll();
    await server.close();
  }
});

/** srt-live-transmit publishes the clip (through a relay losing `loss`); the frames published. */
async function publishClip(
  loss: number,
): Promise<{ frames: MediaFrame[]; lost: number; relayDropped: number }> {
  const file = await Deno.readFile(await clip());
  const { server, published, ended } = await setup(1000);
  const relay = await LossyRelay.open({ target: server.addr.port, loss, seed: 0x5eed });
  const children = new Procs();
  try {
    // srt-live-transmit does not end at the end of its input once connected: -t ends it,
    // a few seconds after the clip (fed in SECONDS) and its tail of null packets. The slack is
    // for a loaded machine, where feeding the clip can fall seconds behind (one run under two
    // parallel test suites lost its last 23 frames with 2 s).
    const run = await children.spawn("srt-live-transmit", [
      "-a",
      "no",
      "-t",
      String(SECONDS + 5),
      "file://con",
      `srt://127.0.0.1:${relay.port}?streamid=publish:live/clip&latency=1000`,
    ], { limitMs: 40_000, feed: paced(file) });
    assert.equal(run.timedOut, false, run.stderr);
    await until("the publish to end", () => ended.has("live/clip"));
    const stats = server.stats();
    return {
      frames: published.get("live/clip") ?? [],
      lost: stats.receive.lost,
      relayDropped: relay.counts.upDropped + relay.counts.downDropped,
    };
  } finally {
    children.killAll();
    await relay.close();
    await server.close();
  }
}

test.srt("srt e2e: srt-live-transmit publishes a file; the registry gets its exact frames, with and without 10% loss", async () => {
  const expected = demux(await Deno.readFile(await clip()));
  assert.ok(expected.length > 100);
  const clean = await publishClip(0);
  assertSameFrames(clean.frames, expected, "loss-free");
  assert.equal(clean.lost, 0);
  const lossy = await publishClip(0.1);
  assert.ok(lossy.relayDropped > 20, `the relay dropped ${lossy.relayDropped}`);
  assert.ok(lossy.lost > 10, `the listener saw ${lossy.lost} losses`);
  assertSameFrames(lossy.frames, expected, "10% loss");
});

/** ffmpeg reads the clip's frames (published directly) through a relay losing `loss`. */
async function readClip(
  loss: number,
  name: string,
): Promise<{ frames: MediaFrame[]; retransmitted: number }> {
  const frames = demux(await Deno.readFile(await clip()));
  const { registry, server } = await setup(1000);
  const relay = await LossyRelay.open({ target: server.addr.port, loss, seed: 0xbeef });
  const children = new Procs();
  const recorded = await tempPath(name);
  try {
    const handle = registry.startPublish("live", "clip");
    const reader = children.spawn("ffmpeg", [
      "-hide_banner",
      "-nostdin",
      "-v",
      "warning",
      "-i",
      `srt://127.0.0.1:${relay.port}?streamid=read:live/clip&latency=1000000`,
      "-c",
      "copy",
      "-f",
      "mpegts",
      "-y",
      recorded,
    ], { limitMs: 40_000 });
    await until("the reader to connect", () => server.stats().connections === 1);
    // The reader's connection paces the frames by their timestamps.
    for (const frame of frames) handle.publish(frame);
    registry.endPublish(handle);
    const result = await reader;
    assert.equal(result.timedOut, false, result.stderr);
    // libsrt reports the end of a live connection as an I/O error; nothing else is allowed.
    const other = result.stderr.split("\n").filter((l) => l && !/Input\/output error$/.test(l));
    assert.deepEqual(other, []);
    const check = await decodeCheck(recorded);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stderr, "");
    return {
      frames: demux(await Deno.readFile(recorded)),
      retransmitted: server.stats().send.retransmitted,
    };
  } finally {
    children.killAll();
    await relay.close();
    await server.close();
  }
}

test.srt("srt e2e: an ffmpeg reader behind 10% loss records the same frames as without loss", async () => {
  const clean = await readClip(0, "srt-read-clean.ts");
  const lossy = await readClip(0.1, "srt-read-lossy.ts");
  assert.ok(clean.frames.length > 100);
  assert.ok(lossy.retransmitted > 10, `only ${lossy.retransmitted} retransmissions`);
  assertSameFrames(lossy.frames, clean.frames, "10% loss");
});

test.srt("srt e2e: SRT in, RTMP out; RTMP in, SRT out", async () => {
  const { registry, server } = await setup();
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const children = new Procs();
  const srtUrl = (id: string) => `srt://127.0.0.1:${server.addr.port}?streamid=${id}`;
  const rtmpUrl = (name: string) => `rtmp://127.0.0.1:${rtmp.addr.port}/live/${name}`;
  const record = (input: string, file: string, format: string) =>
    children.spawn("ffmpeg", [
      "-hide_banner",
      "-nostdin",
      "-v",
      "warning",
      "-i",
      input,
      "-c",
      "copy",
      "-t",
      "1.5",
      "-f",
      format,
      "-y",
      file,
    ], { limitMs: 30_000 });
  try {
    const asFlv = await tempPath("srt-to-rtmp.flv");
    const asTs = await tempPath("rtmp-to-srt.ts");
    const srtIn = children.spawn(
      "ffmpeg",
      liveEncode(`${srtUrl("publish:live/a")}&pkt_size=1316`, "mpegts"),
      {
        limitMs: 30_000,
      },
    );
    const rtmpIn = children.spawn("ffmpeg", liveEncode(rtmpUrl("b"), "flv"), { limitMs: 30_000 });
    await until("both publishes", () => !!registry.get("live", "a") && !!registry.get("live", "b"));
    const outputs = await Promise.all([
      record(rtmpUrl("a"), asFlv, "flv"),
      record(srtUrl("read:live/b"), asTs, "mpegts"),
    ]);
    for (const r of outputs) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
    }
    for (const file of [asFlv, asTs]) {
      const check = await decodeCheck(file);
      assert.equal(check.code, 0, `${file}: ${check.stderr}`);
      assert.equal(check.stderr, "", file);
      const streams = await probePackets(file);
      assert.deepEqual(streams.map((s) => s.codecName).sort(), ["aac", "h264"], file);
    }
    for (const r of await Promise.all([srtIn, rtmpIn])) assert.equal(r.code, 0, r.stderr);
  } finally {
    children.killAll();
    await rtmp.close();
    await server.close();
  }
});

test.srt("srt e2e: libsrt callers see the rejections", async () => {
  const { registry, server } = await setup();
  registry.startPublish("live", "taken");
  const children = new Procs();
  const url = (id: string, extra = "") =>
    `srt://127.0.0.1:${server.addr.port}?streamid=${id}${extra}`;
  const slt = (target: string) =>
    children.spawn("srt-live-transmit", ["-a", "no", "-t", "10", target, "file://con"], {
      limitMs: 15_000,
    });
  try {
    const [encrypted, missing, busy, ffmpegMissing] = await Promise.all([
      slt(url("read:live/taken", "&passphrase=0123456789abcdef")),
      slt(url("read:live/missing")),
      children.spawn("srt-live-transmit", [
        "-a",
        "no",
        "-t",
        "10",
        "file://con",
        url("publish:live/taken"),
      ], { limitMs: 15_000, feed: async (_stdin, exited) => void await exited }),
      children.spawn("ffmpeg", [
        "-hide_banner",
        "-nostdin",
        "-i",
        url("read:live/missing"),
        "-f",
        "null",
        "-",
      ], {
        limitMs: 15_000,
      }),
    ]);
    // libsrt's words for SRT_REJ_UNSECURE and for a listener's own (1000+) codes.
    assert.match(encrypted.stderr, /Password required or unexpected/);
    assert.match(missing.stderr, /Application-defined rejection reason/);
    assert.match(busy.stderr, /Application-defined rejection reason/);
    assert.notEqual(ffmpegMissing.code, 0);
    assert.match(ffmpegMissing.stderr, /Connection to srt:.* failed/);
    for (const r of [encrypted, missing, busy, ffmpegMissing]) assert.equal(r.timedOut, false);
    assert.equal(server.stats().rejected, 4);
  } finally {
    children.killAll();
    await server.close();
  }
});
