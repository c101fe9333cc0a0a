/**
 * WHIP and WHEP with a real browser: headless Chromium publishes its fake camera through
 * the publish page and ffmpeg decodes what reached the registry; ffmpeg publishes H.264 +
 * AAC over RTMP and Chromium plays it through the player page, whose getStats() must show
 * framesDecoded growing and, its AAC transcoded to Opus, an audio track that is not silent.
 */

import assert from "node:assert/strict";
import { FrameFlags, type Logger, type MediaFrame, Registry } from "../../mod.ts";
import { FlvWriter } from "../../media/flv/mod.ts";
import { serveRtmp } from "../../ingest/rtmp/mod.ts";
import { serveHttp } from "../../ingest/http/server.ts";
import { httpFlv } from "../../ingest/http/flv.ts";
import { WebRtcServer } from "../../ingest/webrtc/mod.ts";
import { TranscodedViews } from "../../media/transcode/mod.ts";
import { openInChromium, resultCollector } from "../_util/browser.ts";
import { decodeCheck, probePackets, Procs, tempPath } from "../_util/ffmpeg.ts";
import { LiveHls } from "../../ingest/http/hls.ts";
import { watchWithHlsJs } from "../_util/hlsjs.ts";
import { parseOpusHead } from "../../media/codec/opus.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ chromium: ["chromium", "ffmpeg", "ffprobe"] });

const FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"];

/** Collects log lines so a failure shows what the server said. */
function lines(): Logger & { all: string[] } {
  const all: string[] = [];
  return {
    all,
    info: (m) => all.push(`INFO ${m}`),
    warn: (m) => all.push(`WARN ${m}`),
    error: (m) => all.push(`ERROR ${m}`),
  };
}

/** Poll `check` every 100 ms until it returns a value, failing after `ms`. */
async function waitFor<T>(what: string, ms: number, check: () => T | undefined): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

test.chromium("Chromium publishes its camera through WHIP; ffmpeg decodes the video", async () => {
  const registry = new Registry();
  const logger = lines();
  const webrtc = new WebRtcServer({ registry, logger, keyframeIntervalMs: 1000 });
  const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0, logger });
  const browser = await openInChromium(
    `http://127.0.0.1:${http.addr.port}/live/cam/publish`,
    FAKE_MEDIA,
  );
  try {
    const handle = await waitFor("the WHIP publish", 30_000, () => registry.get("live", "cam"));
    const reader = handle.subscribe({ replay: true }).getReader();
    const frames: MediaFrame[] = [];
    let keyframes = 0;
    const deadline = setTimeout(() => reader.cancel(), 40_000);
    try {
      // 2 keyframes (the publisher is asked for one every second) and 40 video frames.
      while (keyframes < 2 || frames.filter((f) => f.kind === "video").length < 40) {
        const { value, done } = await reader.read();
        if (done) break;
        frames.push(value);
        if (value.kind === "video" && value.flags & FrameFlags.KEYFRAME) keyframes++;
      }
    } finally {
      clearTimeout(deadline);
      await reader.cancel();
    }
    const video = frames.filter((f) => f.kind === "video");
    assert.ok(keyframes >= 2, `2 keyframes expected, got ${keyframes}\n${logger.all.join("\n")}`);
    assert.equal(video[0].flags, FrameFlags.CONFIG, "the video starts with its avcC");
    assert.equal(video[1].flags & FrameFlags.KEYFRAME, FrameFlags.KEYFRAME);
    for (let i = 2; i < video.length; i++) assert.ok(video[i].dts >= video[i - 1].dts);
    const audio = frames.filter((f) => f.kind === "audio");
    assert.ok(audio.length > 0, "the fake microphone's Opus arrives too");
    assert.equal(audio[0].flags, FrameFlags.CONFIG);
    assert.equal(parseOpusHead(audio[0].data).channels, 2);
    assert.equal(handle.metadata().videoCodec?.startsWith("avc1."), true);

    const file = await tempPath("whip.flv");
    await ReadableStream.from(video).pipeThrough(new FlvWriter()).pipeTo(
      (await Deno.create(file)).writable,
    );
    const decoded = await decodeCheck(file);
    assert.equal(decoded.stderr, "");
    assert.equal(decoded.code, 0);
  } finally {
    await browser.close();
    await webrtc.close();
    await http.close();
    registry.closeAll();
  }
});

test.chromium("ffmpeg publishes H.264 + AAC over RTMP; Chromium plays it through WHEP, with the AAC as Opus", async () => {
  const registry = new Registry();
  const logger = lines();
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const transcode = new TranscodedViews({ logger });
  const webrtc = new WebRtcServer({ registry, logger, transcode });
  const collector = resultCollector(45_000);
  const testPage: (request: Request, url: URL) => Response | undefined = (_request, url) =>
    url.pathname === "/test.html"
      ? new Response(TEST_PAGE, { headers: { "content-type": "text/html" } })
      : undefined;
  const http = serveHttp({
    routes: [collector.route, testPage, webrtc.route],
    hostname: "127.0.0.1",
    port: 0,
    logger,
  });
  const ffmpeg = new Deno.Command("ffmpeg", {
    args: [
      ...["-hide_banner", "-nostdin", "-v", "error", "-re"],
      ...["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"],
      ...["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "40"],
      ...["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-bf", "0"],
      ...["-g", "25", "-c:a", "aac", "-f", "flv"],
      `rtmp://127.0.0.1:${rtmp.addr.port}/live/cam`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let browser: { close(): Promise<void> } | undefined;
  try {
    await waitFor("the RTMP publish", 20_000, () => {
      const handle = registry.get("live", "cam");
      return handle?.cachedConfigs().video && handle.cachedConfigs().audio ? handle : undefined;
    });
    browser = await openInChromium(`http://127.0.0.1:${http.addr.port}/test.html`, [
      "--autoplay-policy=no-user-gesture-required",
    ]);
    const result = await collector.result as {
      frames: number[];
      audio: { samples: number; level: number }[];
      status: string;
      audioTracks: number;
      error?: string;
    };
    assert.equal(result.error, undefined, `${result.error}\n${logger.all.join("\n")}`);
    assert.match(result.status, /WebRTC \(WHEP\)/);
    assert.ok(result.frames.length >= 2);
    assert.ok(result.frames[0] > 0, `frames decoded: ${result.frames}`);
    assert.ok(result.frames.at(-1)! > result.frames[0], `framesDecoded grows: ${result.frames}`);
    assert.equal(result.audioTracks, 1, "the AAC arrives as an Opus track");
    assert.ok(logger.all.some((l) => /audio is aac, sent as Opus/.test(l)));
    const samples = result.audio.map((a) => a.samples);
    assert.ok(samples.length >= 2 && samples.at(-1)! > samples[0], `samples received: ${samples}`);
    const level = Math.max(...result.audio.map((a) => a.level));
    assert.ok(
      level > 0.01,
      `audio level ${level}: the sine, not silence`,
    );
  } finally {
    await browser?.close();
    try {
      ffmpeg.kill("SIGKILL");
    } catch { /* already exited */ }
    await ffmpeg.status;
    await webrtc.close();
    transcode.close();
    await http.close();
    await rtmp.close();
    registry.closeAll();
  }
});

test.chromium("Chromium publishes Opus over WHIP; RTMP, HTTP-FLV and TS HLS carry it as AAC that ffmpeg decodes and hls.js plays", async () => {
  const logger = lines();
  const transcode = new TranscodedViews({ logger });
  const registry = new Registry({ observer: { onPublish: (key) => hls.start(key) } });
  const hls = new LiveHls({ registry, segmentType: "ts", targetDuration: 1, transcode, logger });
  const webrtc = new WebRtcServer({ registry, logger, keyframeIntervalMs: 1000 });
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, transcode, logger });
  const http = serveHttp({
    routes: [httpFlv(registry, { transcode }), hls.route, webrtc.route], // as serve orders them
    hostname: "127.0.0.1",
    port: 0,
    logger,
  });
  const base = `http://127.0.0.1:${http.addr.port}/live/cam`;
  const procs = new Procs();
  const browser = await openInChromium(`${base}/publish`, FAKE_MEDIA);
  try {
    const handle = await waitFor("the WHIP publish", 30_000, () => registry.get("live", "cam"));
    await waitFor(
      "Opus from the microphone",
      30_000,
      () => handle.cachedConfigs().audio?.codec === "opus" || undefined,
    );
    const playlist = `${base}/stream.m3u8`;
    for (let i = 0;; i++) {
      const response = await fetch(playlist);
      const text = await response.text();
      if (response.ok && (text.match(/#EXTINF/g)?.length ?? 0) >= 3) break;
      if (i > 400) throw new Error(`no three segments in 40 s:\n${logger.all.join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(logger.all.some((l) => /Opus audio packaged as AAC/.test(l)), logger.all.join("\n"));
    const file = await tempPath("whip-hls.ts");
    const read = await procs.run("ffmpeg", [
      ...["-v", "warning", "-i", playlist, "-t", "3", "-c", "copy", "-f", "mpegts", "-y", file],
    ], 40_000);
    assert.deepEqual([read.code, read.stderr], [0, ""], "ffmpeg reads the TS HLS");
    const streams = await probePackets(file);
    const audio = streams.find((s) => s.codecType === "audio");
    assert.equal(audio?.codecName, "aac", `the audio is AAC:\n${logger.all.join("\n")}`);
    assert.ok(audio.packets.length > 50, `${audio.packets.length} AAC packets`);
    const decoded = await decodeCheck(file);
    assert.deepEqual([decoded.code, decoded.stderr], [0, ""], "it decodes without error");
    // RTMP and HTTP-FLV players get AAC too, from the same view
    for (
      const [what, url] of [
        ["RTMP", `rtmp://127.0.0.1:${rtmp.addr.port}/live/cam`],
        ["HTTP-FLV", `${base}.flv`],
      ]
    ) {
      const flv = await tempPath(`whip-${what}.flv`);
      const played = await procs.run("ffmpeg", [
        ...["-v", "warning", "-i", url, "-t", "3", "-c", "copy", "-f", "flv", "-y", flv],
      ], 40_000);
      assert.deepEqual([played.code, played.stderr], [0, ""], `ffmpeg plays ${what}`);
      const got = await probePackets(flv);
      const sound = got.find((s) => s.codecType === "audio");
      assert.equal(sound?.codecName, "aac", `${what} audio`);
      assert.ok(sound.packets.length > 50, `${what}: ${sound.packets.length} AAC packets`);
      const clean = await decodeCheck(flv);
      assert.deepEqual([clean.code, clean.stderr], [0, ""], `${what} decodes`);
    }
    const report = await watchWithHlsJs(playlist, { seconds: 2 });
    // a fragment load aborted and retried on a loaded machine is not a stream fault
    assert.deepEqual(report.errors.filter((e) => e.endsWith(":fatal")), []);
    assert.match(
      report.codecs.audio ?? "",
      /^mp4a\./,
      `hls.js audio: ${JSON.stringify(report.codecs)}`,
    );
  } finally {
    await browser.close();
    procs.killAll();
    await webrtc.close();
    transcode.close();
    await hls.close();
    await rtmp.close();
    await http.close();
    registry.closeAll();
  }
});

/**
 * Loads the real player page in an iframe, waits for its peer connection, then samples
 * framesDecoded from getStats() every second and posts the samples to /result.
 */
const TEST_PAGE =
  `<!doctype html><iframe id="player" src="/live/cam/" width="400" height="300"></iframe>
<script>
const post = (body) => fetch("/result", { method: "POST", body: JSON.stringify(body) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  try {
    const frame = document.getElementById("player");
    let pc;
    for (let i = 0; i < 200 && !(pc = frame.contentWindow?.arclyPeer); i++) await sleep(100);
    if (!pc) throw new Error("the player made no peer connection");
    // the player's video element is muted: play the received audio as a listener would
    for (let i = 0; i < 100 && !pc.getReceivers().some((r) => r.track.kind === "audio"); i++) await sleep(100);
    const speaker = new Audio();
    speaker.srcObject = new MediaStream(pc.getReceivers().map((r) => r.track).filter((t) => t.kind === "audio"));
    speaker.play().catch(() => {});
    const frames = [];
    const audio = [];
    // until three video samples and three audio ones (the transcoded audio starts later)
    for (let i = 0; i < 40 && (frames.length < 3 || audio.length < 3); i++) {
      await sleep(1000);
      const stats = await pc.getStats();
      let decoded = 0;
      stats.forEach((s) => {
        if (s.type !== "inbound-rtp") return;
        if (s.kind === "video") {
          decoded = s.framesDecoded ?? 0;
        } else if (s.kind === "audio" && s.totalSamplesReceived > 0) {
          audio.push({ samples: s.totalSamplesReceived, level: s.audioLevel ?? 0 });
        }
      });
      if (decoded > 0) frames.push(decoded);
    }
    const audioTracks = pc.getTransceivers().filter((t) =>
      t.receiver.track.kind === "audio" && /recv/.test(t.currentDirection ?? "")
    ).length;
    const status = frame.contentDocument.getElementById("status").textContent;
    await post({ frames, audio, status, audioTracks });
  } catch (error) {
    await post({ frames: [], audio: [], status: "", audioTracks: -1, error: String(error) });
  }
})();
</script>`;
