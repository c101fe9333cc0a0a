/**
 * RTSP end to end with real ffmpeg and ffprobe: publish over TCP and UDP (H.264 with
 * B-frames, H.265, AAC, Opus), read over TCP and UDP (early and late readers), refuse a
 * second publisher, and cross protocols: RTMP in → RTSP out, RTSP in → RTMP and HLS out.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry, type StreamHandle } from "../../mod.ts";
import { type RtspServer, serveRtsp } from "../../ingest/rtsp/mod.ts";
import { serveRtmp } from "../../ingest/rtmp/mod.ts";
import { DirectoryStorage, HlsPackager } from "../../media/hls/mod.ts";
import {
  decodeCheck,
  fixtureDir,
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
import { freeUdpPair } from "../ingest/rtsp/_util.ts";
import { canRun, testsWith } from "../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  gstreamer: ["gst-launch-1.0", "ffmpeg", "ffprobe"],
});

async function startRtsp(
  registry: Registry,
): Promise<{ server: RtspServer; log: LogLines; base: string }> {
  const log = new LogLines();
  const server = serveRtsp({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    rtpPort: await freeUdpPair(),
    logger: log,
  });
  await server.ready;
  assert.ok(server.udp, "UDP ports bound");
  return { server, log, base: `rtsp://127.0.0.1:${server.addr.port}/live` };
}

/** ffmpeg args publishing `seconds` of testsrc2 + sine to `url` in `format`. */
function publishArgs(
  url: string,
  seconds: number,
  { video = "libx264", audio = "aac", format = "rtsp", transport = "tcp" } = {},
): string[] {
  const a = audio === "libopus" ? ["-c:a", "libopus", "-b:a", "64k"] : ["-c:a", audio];
  const v = video === "libx265"
    ? ["-c:v", "libx265", "-x265-params", "log-level=error:bframes=2:keyint=25:open-gop=0"]
    : ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "25"];
  return [
    "-v",
    format === "flv" ? "error" : "warning", // FLV over RTMP warns that it cannot seek back
    "-re",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=320x240:rate=25",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:sample_rate=48000",
    "-t",
    String(seconds),
    ...v,
    "-pix_fmt",
    "yuv420p",
    ...a,
    ...(format === "rtsp" ? ["-f", "rtsp", "-rtsp_transport", transport] : ["-f", format]),
    url,
  ];
}

/**
 * Input args for reading an RTSP URL over `transport`; over UDP with a larger receive
 * buffer, as a machine busy with parallel tests may not schedule the reader in time for
 * the default. ffprobe also gets a socket timeout and a read limit.
 */
function rtspInput(transport: "tcp" | "udp"): string[] {
  return ["-rtsp_transport", transport, ...transport === "udp" ? ["-buffer_size", "4194304"] : []];
}

function rtspProbe(transport: "tcp" | "udp"): string[] {
  return [...rtspInput(transport), "-timeout", "10000000", "-read_intervals", "%+25"];
}

/** ffmpeg args decoding (or with `copy`, just demuxing) an RTSP URL to nowhere. */
function readArgs(url: string, transport: "tcp" | "udp", copy = false): string[] {
  return [
    "-v",
    "warning",
    ...rtspInput(transport),
    "-i",
    url,
    ...copy ? ["-c", "copy"] : [],
    "-f",
    "null",
    "-",
  ];
}

/** The handle once `live/name` is published, and every frame it publishes from the start. */
async function published(registry: Registry, name: string): Promise<{
  handle: StreamHandle;
  frames: MediaFrame[];
  ended: Promise<void>;
}> {
  let handle: StreamHandle | undefined;
  for (let i = 0; i < 400 && !handle; i++) {
    handle = registry.get("live", name);
    if (!handle) await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(handle, `live/${name} was never published`);
  const frames: MediaFrame[] = [];
  const ended = (async () => {
    for await (const f of handle.subscribe({ replay: true })) frames.push(f);
  })();
  return { handle, frames, ended };
}

/** Resolves once the stream has published a frame at or after `seconds` of media. */
async function reached(handle: StreamHandle, frames: MediaFrame[], seconds: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const first = frames.find((f) => !(f.flags & FrameFlags.CONFIG));
    if (first && frames.at(-1)!.dts - first.dts >= seconds * 90000) return;
    if (handle.closed) throw new Error(`${handle.key} ended before ${seconds} s`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${handle.key} did not reach ${seconds} s`);
}

function media(frames: MediaFrame[], kind: "video" | "audio"): MediaFrame[] {
  return frames.filter((f) => f.kind === kind && !(f.flags & FrameFlags.CONFIG));
}

/**
 * Checks that a reader got every frame published from the keyframe it joined at (the
 * start of the GOP cached when it subscribed): its video packets are the published
 * video frames from some keyframe on, its audio packets the audio frames after it.
 */
function assertJoined(published: MediaFrame[], read: ProbeStream[], what: string): number {
  const all = published.filter((f) => !(f.flags & FrameFlags.CONFIG));
  const videoRead = stream(read, "video").packets.length;
  const audioRead = stream(read, "audio").packets.length;
  const video = all.filter((f) => f.kind === "video");
  const key = video[video.length - videoRead];
  assert.ok(
    key && key.flags & FrameFlags.KEYFRAME,
    `${what}: ${videoRead} of ${video.length} video frames is not from a keyframe on`,
  );
  const at = all.indexOf(key);
  const audioAfter = all.slice(at).filter((f) => f.kind === "audio").length;
  assert.equal(audioRead, audioAfter, `${what}: audio frames from the join point`);
  return video.indexOf(key);
}

function stream(streams: ProbeStream[], type: string): ProbeStream {
  const s = streams.find((s) => s.codecType === type);
  assert.ok(s, `no ${type} stream`);
  return s;
}

/** The video and audio streams, checked to be 320x240 H.264 and AAC. */
function h264Aac(streams: ProbeStream[], what: string): { v: ProbeStream; a: ProbeStream } {
  const v = stream(streams, "video");
  const a = stream(streams, "audio");
  assert.deepEqual([v.codecName, v.info.width, v.info.height, a.codecName], [
    "h264",
    320,
    240,
    "aac",
  ], what);
  return { v, a };
}

/**
 * Decode times in order. ffmpeg's H.264/H.265 parser cannot time the first frame of an
 * RTP source (it has no byte position), so packets without times are skipped here.
 */
function assertOrdered(s: ProbeStream, what: string): void {
  const dts = s.packets.filter((p) => p.dts !== undefined).map((p) => to90k(p.dts!, s.timeBase));
  assert.ok(dts.length > 0, `${what}: no timed packets`);
  for (let i = 1; i < dts.length; i++) {
    assert.ok(dts[i] > dts[i - 1], `${what}: dts ${dts[i]} after ${dts[i - 1]} (packet ${i})`);
  }
}

test.ffmpeg("rtsp e2e: ffmpeg publishes H.264 (B-frames) + AAC over TCP; TCP, UDP and late readers; a second publisher is refused", async () => {
  const registry = new Registry();
  const { server, log, base } = await startRtsp(registry);
  const url = `${base}/x`;
  const procs = new Procs();
  try {
    const publisher = procs.run("ffmpeg", publishArgs(url, 6), 40_000);
    const { handle, frames, ended } = await published(registry, "x");
    await reached(handle, frames, 0);
    const nullTcp = procs.run("ffmpeg", readArgs(url, "tcp", true), 40_000);
    const nullUdp = procs.run("ffmpeg", readArgs(url, "udp", true), 40_000);
    const earlyTcp = probePackets(url, rtspProbe("tcp"));
    const earlyUdp = probePackets(url, rtspProbe("udp"));
    await reached(handle, frames, 2.5);
    const late = probePackets(url, rtspProbe("tcp"));
    const second = await procs.run("ffmpeg", publishArgs(url, 2), 20_000);
    assert.equal(second.timedOut, false);
    assert.notEqual(second.code, 0, "the second publisher on a live key must be refused");
    assert.match(second.stderr, /Server returned 400 Bad Request/);

    const pub = await publisher;
    assert.deepEqual([pub.code, pub.stderr, pub.timedOut], [0, "", false]);
    await ended;
    for (const [name, reader] of [["tcp", nullTcp], ["udp", nullUdp]] as const) {
      const out = await reader;
      assert.deepEqual(
        [out.code, out.stderr, out.timedOut],
        [0, "", false],
        `ffmpeg ${name} reader`,
      );
    }
    const video = media(frames, "video");
    const audio = media(frames, "audio");
    assert.ok(
      video.length >= 140 && audio.length >= 270,
      `${video.length} video, ${audio.length} audio`,
    );
    assert.ok(video.some((f) => f.pts > f.dts), "decode times recovered for B-frames");
    for (const [name, probe] of [["tcp", earlyTcp], ["udp", earlyUdp]] as const) {
      const streams = await probe;
      const { v, a } = h264Aac(streams, name);
      assertJoined(frames, streams, name);
      assert.ok(v.packets[0].keyframe);
      assertOrdered(v, `${name} video`);
      assertOrdered(a, `${name} audio`);
    }
    const lateStreams = await late;
    const lateVideo = stream(lateStreams, "video");
    assert.ok(lateVideo.packets[0].keyframe, "the late reader starts on a keyframe");
    const joined = assertJoined(frames, lateStreams, "late reader");
    assert.ok(video[joined].dts - video[0].dts >= 2 * 90000, "the late reader joined after 2.5 s");
    assertOrdered(lateVideo, "late video");
    assert.ok(log.lines.some((l) => /record live\/x over tcp/.test(l)));
    assert.ok(log.lines.some((l) => /play live\/x over udp/.test(l)));
    assert.ok(!log.lines.some((l) => l.startsWith("error")), log.lines.join("\n"));
    assert.equal(server.stats().rtpPacketsDropped, 0);
  } finally {
    procs.killAll();
    await server.close();
  }
});

test.ffmpeg("rtsp e2e: ffmpeg publishes over UDP; H.265 + AAC and H.264 + Opus round trip", async () => {
  const registry = new Registry();
  const { server, log, base } = await startRtsp(registry);
  const procs = new Procs();
  try {
    const cases = [
      { name: "udp", opts: { transport: "udp" }, codecs: ["h264", "aac"], read: "tcp" as const },
      ...(await canRun("ffmpeg:libx265"))
        ? [{
          name: "hevc",
          opts: { video: "libx265" },
          codecs: ["hevc", "aac"],
          read: "udp" as const,
        }]
        : [],
      ...(await canRun("ffmpeg:libopus"))
        ? [{
          name: "opus",
          opts: { audio: "libopus" },
          codecs: ["h264", "opus"],
          read: "tcp" as const,
        }]
        : [],
    ];
    for (const { name, opts, codecs, read } of cases) {
      const url = `${base}/${name}`;
      const publisher = procs.run("ffmpeg", publishArgs(url, 3, opts), 40_000);
      const { frames, ended } = await published(registry, name);
      const probe = probePackets(url, rtspProbe(read));
      const decode = procs.run("ffmpeg", readArgs(url, read), 40_000);
      const pub = await publisher;
      assert.deepEqual([pub.code, pub.stderr], [0, ""], `${name} publisher`);
      await ended;
      const streams = await probe;
      const v = stream(streams, "video");
      const a = stream(streams, "audio");
      assert.deepEqual([v.codecName, a.codecName], codecs, name);
      assert.deepEqual([v.info.width, v.info.height], [320, 240], name);
      assertJoined(frames, streams, name);
      assertOrdered(v, `${name} video`);
      assertOrdered(a, `${name} audio`);
      const out = await decode;
      assert.deepEqual([out.code, out.stderr], [0, ""], `${name}: decoding what was read`);
    }
    assert.ok(log.lines.some((l) => /record live\/udp over udp/.test(l)), log.lines.join("\n"));
  } finally {
    procs.killAll();
    await server.close();
  }
});

test.ffmpeg("rtsp e2e: RTMP in → RTSP out; RTSP in → RTMP and HLS out", async () => {
  const registry = new Registry();
  const { server, base } = await startRtsp(registry);
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const rtmpBase = `rtmp://127.0.0.1:${rtmp.addr.port}/live`;
  const procs = new Procs();
  const hlsDir = `${await fixtureDir()}/rtsp-hls`;
  try {
    // RTMP in → RTSP out
    const rtmpPublisher = procs.run(
      "ffmpeg",
      publishArgs(`${rtmpBase}/fromrtmp`, 3, { format: "flv" }),
      40_000,
    );
    const fromRtmp = await published(registry, "fromrtmp");
    await reached(fromRtmp.handle, fromRtmp.frames, 0);
    const rtspProbeOfRtmp = probePackets(`${base}/fromrtmp`, rtspProbe("tcp"));

    // RTSP in → RTMP out (recorded to FLV) and → HLS (TS segments in a directory)
    const rtspPublisher = procs.run("ffmpeg", publishArgs(`${base}/fromrtsp`, 4), 40_000);
    const fromRtsp = await published(registry, "fromrtsp");
    await Deno.mkdir(hlsDir, { recursive: true });
    const packaging = fromRtsp.handle.packageTo(
      new HlsPackager({
        storage: new DirectoryStorage(hlsDir),
        segmentType: "ts",
        playlistType: "event",
        targetDuration: 1,
      }),
    );
    await reached(fromRtsp.handle, fromRtsp.frames, 0);
    const flv = await tempPath("rtsp-to-rtmp.flv");
    const rtmpReader = procs.run("ffmpeg", [
      "-v",
      "warning",
      "-i",
      `${rtmpBase}/fromrtsp`,
      "-c",
      "copy",
      "-f",
      "flv",
      "-y",
      flv,
    ], 40_000);

    for (
      const [name, p] of [["rtmp publisher", rtmpPublisher], [
        "rtsp publisher",
        rtspPublisher,
      ]] as const
    ) {
      const out = await p;
      assert.deepEqual([out.code, out.stderr], [0, ""], name);
    }
    await Promise.all([fromRtmp.ended, fromRtsp.ended, packaging]);

    const viaRtsp = await rtspProbeOfRtmp;
    const { v: v1 } = h264Aac(viaRtsp, "RTMP in → RTSP out");
    assertJoined(fromRtmp.frames, viaRtsp, "RTMP in → RTSP out");
    assertOrdered(v1, "RTMP in → RTSP out video");

    const out = await rtmpReader;
    assert.deepEqual(
      [out.code, out.stderr, out.timedOut],
      [0, "", false],
      "RTMP reader of an RTSP publish",
    );
    for (const [what, file] of [["RTMP out", flv], ["HLS out", `${hlsDir}/stream.m3u8`]] as const) {
      const streams = await probePackets(file);
      const { v, a } = h264Aac(streams, what);
      assert.ok(
        v.packets.every((p) => p.dts !== undefined && p.pts! >= p.dts),
        `${what}: pts ≥ dts`,
      );
      assert.ok(
        v.packets.some((p) => p.pts! > p.dts!),
        `${what}: B-frames keep their decode times`,
      );
      assertOrdered(v, `${what} video`);
      assertOrdered(a, `${what} audio`);
      const check = await decodeCheck(file);
      assert.deepEqual([check.code, check.stderr], [0, ""], what);
    }
  } finally {
    procs.killAll();
    await rtmp.close();
    await server.close();
  }
});

test.gstreamer("rtsp e2e: GStreamer rtspclientsink publishes H.264 + AAC as MP4A-LATM; ffmpeg reads RTMP with the audio", async () => {
  // Under the parallel suite, gst-launch's live pipeline now and then stops sending before its
  // last frame and never ends (the server closes the session for want of RTP); such a run is
  // tried again, twice at most.
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (await latmPublish(attempt === 3)) return;
  }
});

/** One LATM publish and its checks; false when GStreamer stalled and `last` is not set. */
async function latmPublish(last: boolean): Promise<boolean> {
  const registry = new Registry();
  const { server, log, base } = await startRtsp(registry);
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const procs = new Procs();
  try {
    // rtspclientsink payloads AAC with rtpmp4apay (MP4A-LATM, cpresent=0) by default
    const publisher = procs.spawn("gst-launch-1.0", [
      "-q",
      ..."videotestsrc is-live=true num-buffers=100".split(" "),
      "!",
      "video/x-raw,width=320,height=240,framerate=25/1",
      "!",
      ..."x264enc tune=zerolatency key-int-max=25 speed-preset=veryfast".split(" "),
      "!",
      "h264parse",
      "!",
      "s.sink_0",
      ..."audiotestsrc is-live=true num-buffers=172 samplesperbuffer=1024".split(" "),
      "!",
      "audio/x-raw,rate=44100,channels=1",
      "!",
      "avenc_aac",
      "!",
      "aacparse",
      "!",
      "s.sink_1",
      "rtspclientsink",
      "name=s",
      "protocols=tcp", // interleaved: UDP from a machine busy with parallel tests loses packets
      `location=${base}/gst`,
    ], { limitMs: 40_000 });
    const { handle, frames, ended } = await published(registry, "gst");
    await reached(handle, frames, 0);
    const flv = await tempPath("latm-to-rtmp.flv");
    const reader = procs.run("ffmpeg", [
      "-v",
      "warning",
      "-i",
      `rtmp://127.0.0.1:${rtmp.addr.port}/live/gst`,
      "-c",
      "copy",
      "-f",
      "flv",
      "-y",
      flv,
    ], 40_000);
    const out = await publisher;
    const stalled = log.lines.some((l) => /no RTP packet from the publisher/.test(l));
    // Every one of the source's 100 pictures arrived: a pipeline that then hangs or fails at
    // its end (EOS; "Could not send message") without a TEARDOWN has still published all it had.
    const complete = media(frames, "video").length >= 100;
    if (out.code !== 0 && stalled && !complete && !last) return false;
    // A publish that ended with its TEARDOWN is complete: gst-launch sometimes exits 1 after it,
    // reading the connection's end while it shuts down ("Received end-of-file").
    const tornDown = log.lines.some((l) => /closed: TEARDOWN/.test(l));
    assert.ok(
      out.code === 0 || tornDown || complete,
      `${media(frames, "video").length} pictures, ${media(frames, "audio").length} AAC frames\n` +
        `${out.stderr}\n${log.lines.join("\n")}`,
    );
    await ended;
    assert.ok(
      !log.lines.some((l) => /MP4A-LATM/.test(l)),
      `the audio track was kept:\n${log.lines.join("\n")}`,
    );
    const audio = media(frames, "audio");
    const config = frames.find((f) => f.kind === "audio" && f.flags & FrameFlags.CONFIG);
    assert.ok(config, "an AAC config frame");
    assert.equal(config.codec, "aac");
    assert.ok(audio.length > 100, `${audio.length} AAC frames published`);
    assert.ok(frames.indexOf(config) < frames.indexOf(audio[0]), "config before media");
    const read = await reader;
    assert.deepEqual([read.code, read.stderr, read.timedOut], [0, "", false], "RTMP reader");
    const streams = await probePackets(flv);
    const { v, a } = h264Aac(streams, "LATM in → RTMP out");
    assert.ok(a.packets.length > 0 && v.packets.length > 0);
    assertOrdered(a, "LATM in → RTMP out audio");
    const check = await decodeCheck(flv);
    assert.deepEqual([check.code, check.stderr], [0, ""], "ffmpeg decodes the RTMP recording");
    return true;
  } finally {
    procs.killAll();
    await rtmp.close();
    await server.close();
  }
}

test.gstreamer("rtsp e2e: GStreamer rtspsrc (default settings) joining mid-GOP decodes without a decreasing timestamp", async () => {
  const registry = new Registry();
  const { server, base } = await startRtsp(registry);
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const procs = new Procs();
  try {
    // 2 s GOPs, so a reader joining mid-GOP starts up to 2 s behind the live edge
    const publisher = procs.run("ffmpeg", [
      ...["-v", "error", "-re"],
      ...testsrc({ duration: 12, rate: 30, size: "640x360" }),
      ...sine({ duration: 12 }),
      ...x264({ gop: 60, bframes: 0 }),
      ...["-c:a", "aac", "-f", "flv", `rtmp://127.0.0.1:${rtmp.addr.port}/live/gop`],
    ], 40_000);
    const { handle, frames } = await published(registry, "gop");
    await reached(handle, frames, 2.5);
    // three readers, joining 0.0, 0.6 and 1.2 s apart, each ending after 90 decoded frames; a
    // reader that fails (gst-launch under the parallel suite now and then does) gets one more
    // try, and the warnings of every try count
    const read = () =>
      procs.spawn("gst-launch-1.0", [
        "--gst-debug-level=2",
        "uridecodebin",
        `uri=${base}/gop`,
        "!",
        "videoconvert",
        "!",
        "identity",
        "eos-after=90",
        "!",
        "fakesink",
      ], { limitMs: 15_000 });
    const readers = [0, 600, 1200].map(async (after) => {
      await new Promise((resolve) => setTimeout(resolve, after));
      const first = await read();
      return first.code === 0 ? [first] : [first, await read()];
    });
    for (const [i, tries] of (await Promise.all(readers)).entries()) {
      const last = tries.at(-1)!;
      assert.deepEqual(
        [last.code, last.timedOut],
        [0, false],
        `reader ${i} decodes 90 frames:\n${last.stderr.split("\n").slice(-8).join("\n")}`,
      );
      const decreasing = tries.flatMap((t) =>
        t.stderr.split("\n").filter((l) => /decreasing timestamp/.test(l))
      );
      assert.deepEqual(decreasing, [], `reader ${i}`);
    }
    await publisher;
  } finally {
    procs.killAll();
    await rtmp.close();
    await server.close();
  }
});
