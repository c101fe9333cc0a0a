/**
 * `cli.ts serve` with TLS listeners, end to end with real clients: ffmpeg publishes to
 * `rtmps://` and plays it back over RTMPS and plain RTMP side by side; ffmpeg publishes to
 * `rtsps://` and reads it back; ffmpeg and hls.js in Chromium play HLS over `https://`. A
 * loopback relay in front of the RTMPS port captures what the publisher sent: the stream's
 * SPS, in the played-back FLV, is nowhere in it.
 */

import assert from "node:assert/strict";
import { CHROMIUM } from "../_util/browser.ts";
import { concat } from "../_util/bytes.ts";
import { decodeCheck, Procs, publishLive, sine, tempPath, testsrc, x264 } from "../_util/ffmpeg.ts";
import { PLAYBACK_EVENT, watchWithHlsJs } from "../_util/hlsjs.ts";
import { startServe, waitFor } from "../_util/serve.ts";
import { makeCert } from "../_util/tls.ts";

const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
const LISTENERS = ["rtmp", "http", "rtsp", "srt", "rtmps", "rtsps", "https"];

/** A loopback TCP relay to `port` that keeps every byte its clients sent. */
function capturingRelay(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sent: Uint8Array[] = [];
  const pipes: Promise<unknown>[] = [];
  const accepting = (async () => {
    for await (const client of listener) {
      const server = await Deno.connect({ hostname: "127.0.0.1", port });
      const tap = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          sent.push(chunk.slice());
          controller.enqueue(chunk);
        },
      });
      pipes.push(
        client.readable.pipeThrough(tap).pipeTo(server.writable).catch(() => {}),
        server.readable.pipeTo(client.writable).catch(() => {}),
      );
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    captured: () => concat(sent),
    async close() {
      listener.close();
      await accepting;
      await Promise.all(pipes);
    },
  };
}

/** The first SPS in an FLV file: from the AVC sequence header's decoder configuration record. */
function spsOfFlv(flv: Uint8Array): Uint8Array {
  for (let i = 0; i + 13 < flv.length; i++) {
    // video tag body: keyframe+AVC (0x17), AVC sequence header (0), composition time 0, avcC v1
    if (flv[i] === 0x17 && flv[i + 1] === 0 && flv[i + 4] === 0 && flv[i + 5] === 1) {
      const record = flv.subarray(i + 5);
      const length = record[6] << 8 | record[7];
      if ((record[5] & 0x1f) >= 1 && (record[8] & 0x1f) === 7) return record.slice(8, 8 + length);
    }
  }
  throw new Error("no AVC sequence header in the FLV");
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test({
  name:
    "tls e2e: RTMPS and HTTPS with ffmpeg and hls.js, plain RTMP beside; the wire is not the clear stream",
  ignore: !hasChromium,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "arcly-tls-e2e-" });
    const { certFile, keyFile, cert } = await makeCert(dir, "server");
    const server = await startServe(
      ["rtmp", "rtmps", "https"],
      ["--tls-cert", certFile, "--tls-key", keyFile],
      LISTENERS,
    );
    const procs = new Procs();
    const { rtmp, rtmps, https } = server.ports;
    const relay = capturingRelay(rtmps);
    const client = Deno.createHttpClient({ caCerts: [cert] });
    try {
      const publisher = publishLive(procs, `rtmps://127.0.0.1:${relay.port}/live/sec`, 12);
      const hls = `https://127.0.0.1:${https}/live/sec`;
      await waitFor("two HLS segments over HTTPS", async () => {
        const response = await fetch(`${hls}/stream.m3u8`, { client });
        const text = await response.text();
        return response.ok && text.split("#EXTINF").length > 2 ? text : undefined;
      });
      const flvTls = await tempPath("tls-rtmps.flv");
      const flvPlain = await tempPath("tls-rtmp.flv");
      const fromHls = await tempPath("tls-https.ts");
      const play = (url: string, out: string, format: string) =>
        procs.run("ffmpeg", [
          ...["-v", "warning", "-i", url, "-t", "3", "-c", "copy", "-f", format, "-y", out],
        ], 60_000);
      const [overTls, overPlain, overHttps, report] = await Promise.all([
        play(`rtmps://127.0.0.1:${rtmps}/live/sec`, flvTls, "flv"),
        play(`rtmp://127.0.0.1:${rtmp}/live/sec`, flvPlain, "flv"),
        play(`${hls}/index.m3u8`, fromHls, "mpegts"),
        watchWithHlsJs(`${hls}/index.m3u8`, {
          seconds: 2,
          chromiumFlags: ["--ignore-certificate-errors"],
        }),
      ]);
      for (
        const [name, run, out] of [
          ["rtmps", overTls, flvTls],
          ["rtmp", overPlain, flvPlain],
          ["https hls", overHttps, fromHls],
        ] as const
      ) {
        assert.equal(run.code, 0, `${name}: ${run.stderr}`);
        const check = await decodeCheck(out);
        assert.equal(check.code, 0, `${name} decodes: ${check.stderr}`);
        assert.equal(check.stderr, "", `${name} decodes silently`);
      }
      assert.deepEqual(report.errors.filter((e) => !PLAYBACK_EVENT.test(e)), []);
      assert.ok(report.fragments + report.parts > 0, "hls.js buffered media over HTTPS");

      const published = await publisher;
      assert.equal(published.code, 0, published.stderr);
      const sps = spsOfFlv(await Deno.readFile(flvTls));
      const wire = relay.captured();
      assert.ok(wire.length > 100_000, `the publisher sent ${wire.length} bytes through the relay`);
      assert.equal(indexOf(wire, sps), -1, "the SPS is not on the wire");
    } finally {
      client.close();
      procs.killAll();
      await relay.close();
      const code = await server.stop();
      assert.equal(code, 0, `serve exits 0 on SIGTERM:\n${server.log.join("\n")}`);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("tls e2e: ffmpeg publishes RTSP to rtsps:// and reads it back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-tls-e2e-" });
  const { certFile, keyFile } = await makeCert(dir, "server");
  const server = await startServe(
    ["rtsps"],
    ["--tls-cert", certFile, "--tls-key", keyFile],
    LISTENERS,
  );
  const procs = new Procs();
  const url = `rtsps://127.0.0.1:${server.ports.rtsps}/live/rtsp-sec`;
  try {
    const publisher = procs.run("ffmpeg", [
      ...["-v", "warning", "-re"],
      ...testsrc({ duration: 10 }),
      ...sine({ duration: 10 }),
      ...x264({ gop: 25 }),
      ...["-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "tcp", url],
    ], 60_000);
    await waitFor(
      "the RTSPS publish",
      () => server.log.some((l) => /publish live\/rtsp-sec/.test(l)) || undefined,
    );
    // Decoded, one line per frame (copying RTSP's first B-frames into a file warns of unset
    // timestamps, whatever the server).
    const reader = await procs.run("ffmpeg", [
      ...["-v", "error", "-rtsp_transport", "tcp", "-i", url, "-t", "3", "-f", "framecrc", "-"],
    ], 60_000);
    assert.equal(reader.code, 0, reader.stderr);
    assert.equal(reader.stderr, "", "the reader decodes silently");
    const videoFrames = reader.stdout.split("\n").filter((l) => /^0,/.test(l)).length;
    assert.ok(videoFrames >= 50, `the reader decoded ${videoFrames} video frames`);
    const published = await publisher;
    assert.equal(published.code, 0, published.stderr);
    assert.ok(
      server.log.some((l) => /rtsp 127\.0\.0\.1:\d+: publish live\/rtsp-sec/.test(l)),
      "the publisher is logged with its own address, not the TLS relay's",
    );
  } finally {
    procs.killAll();
    const code = await server.stop();
    assert.equal(code, 0, `serve exits 0 on SIGTERM:\n${server.log.join("\n")}`);
    await Deno.remove(dir, { recursive: true });
  }
});
