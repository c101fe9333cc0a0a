/**
 * `cli.ts serve` with every listener at once (RTMP, HTTP, RTSP, SRT), crossed by real ffmpeg
 * clients: SRT in → RTMP, HLS and RTSP out; RTSP in → SRT and HTTP-FLV out; RTMP in → SRT
 * out. Every client runs at `-v warning` and must stay silent; every recording must start on
 * a keyframe, keep its decode times in order and carry the codecs and picture size published;
 * `/v1/streams` must describe each stream while it is live.
 */

import assert from "node:assert/strict";
import {
  decodeCheck,
  probePackets,
  type ProbeStream,
  Procs,
  sine,
  testsrc,
  x264,
} from "../_util/ffmpeg.ts";
import { startServe, waitFor } from "../_util/serve.ts";
import { freeUdpPair } from "../ingest/rtsp/_util.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ srt: ["ffmpeg", "ffprobe", "srt-live-transmit"] });

/** B-frames between reference frames in every published stream. */
const BFRAMES = 2;

/** The longest any one client may run. */
const LIMIT_MS = 60_000;

/** How each protocol carries a publisher's stream out of ffmpeg. */
const PUBLISH_OUTPUT: Record<string, string[]> = {
  srt: ["-f", "mpegts"],
  rtsp: ["-f", "rtsp", "-rtsp_transport", "tcp"],
  // Without a seekable output, the FLV muxer warns that it cannot write the duration.
  rtmp: ["-f", "flv", "-flvflags", "no_duration_filesize"],
};

/** A published stream: key, ingest protocol and a picture size of its own, so a mix-up shows. */
interface Published {
  key: string;
  protocol: "srt" | "rtsp" | "rtmp";
  width: number;
  height: number;
}

/** One `/v1/streams` entry, as far as this test reads it. */
interface Listed {
  key: string;
  ingestProtocol: string;
  codecs: string[];
  width: number;
  height: number;
  subscribers: number;
}

test.srt("serve matrix: SRT, RTSP and RTMP publishers read over RTMP, HLS, RTSP, SRT and HTTP-FLV", async (t) => {
  const rtpPort = await freeUdpPair();
  const server = await startServe(["rtmp", "http", "rtsp", "srt"], [
    "--rtsp-rtp-port",
    String(rtpPort),
  ]);
  const { ports } = server;
  const http = `http://127.0.0.1:${ports.http}`;
  const url = {
    srt: (id: string) => `srt://127.0.0.1:${ports.srt}?streamid=${id}`,
    rtsp: (key: string) => `rtsp://127.0.0.1:${ports.rtsp}/${key}`,
    rtmp: (key: string) => `rtmp://127.0.0.1:${ports.rtmp}/${key}`,
  };
  const dir = await Deno.makeTempDir({ prefix: "arcly-matrix-" });
  const procs = new Procs();

  /** ffmpeg publishing `seconds` of testsrc2 + sine, H.264 with B-frames + AAC, live. */
  function publish(stream: Published, seconds: number) {
    const target = stream.protocol === "srt"
      ? `${url.srt(`publish:${stream.key}`)}&pkt_size=1316`
      : url[stream.protocol](stream.key);
    return procs.run("ffmpeg", [
      ...["-v", "warning", "-re"],
      ...testsrc({ duration: seconds, size: `${stream.width}x${stream.height}` }),
      ...sine({ duration: seconds }),
      ...x264({ gop: 25, bframes: BFRAMES }),
      ...["-c:a", "aac"],
      ...PUBLISH_OUTPUT[stream.protocol],
      target,
    ], LIMIT_MS);
  }

  /** ffmpeg copying `input` into `file` in `format`. */
  function record(input: string, file: string, format: string) {
    return procs.run(
      "ffmpeg",
      ["-v", "warning", "-i", input, "-c", "copy", "-f", format, "-y", `${dir}/${file}`],
      LIMIT_MS,
    );
  }

  async function streams(): Promise<Listed[]> {
    return await (await fetch(`${http}/v1/streams`)).json();
  }

  /** Waits until `/v1/streams` lists the stream with both codecs, and checks the entry. */
  async function listed(stream: Published): Promise<void> {
    const entry = await waitFor(`${stream.key} in /v1/streams with two codecs`, async () => {
      const entry = (await streams()).find((s) => s.key === stream.key);
      return entry && entry.codecs.length === 2 ? entry : undefined;
    });
    assert.equal(entry.ingestProtocol, stream.protocol, `${stream.key} ingest protocol`);
    assert.deepEqual(entry.codecs.map((c) => c.slice(0, 5)), ["avc1.", "mp4a."], stream.key);
    assert.deepEqual([entry.width, entry.height], [stream.width, stream.height], stream.key);
  }

  /**
   * Waits until `count` subscribers read the stream: the players joined while it was live
   * (the live HLS packager is one of them).
   */
  async function joined(stream: Published, count: number): Promise<void> {
    await waitFor(`${count} subscribers on ${stream.key} while live`, async () => {
      const entry = (await streams()).find((s) => s.key === stream.key);
      assert.ok(entry, `${stream.key} ended before its players joined`);
      return entry.subscribers >= count || undefined;
    });
  }

  /**
   * A client that exited 0 with nothing on stderr at `-v warning`. An SRT reader may say
   * `<its URL>: Input/output error` last and nothing else: libsrt gives ffmpeg no end of
   * stream but a broken connection when the server closes it as the stream ends.
   */
  async function silent(what: string, run: ReturnType<typeof procs.run>, srtUrl?: string) {
    const out = await run;
    const end = `${srtUrl}: Input/output error\n`;
    const stderr = srtUrl && out.stderr.endsWith(end)
      ? out.stderr.slice(0, -end.length)
      : out.stderr;
    assert.deepEqual([out.code, out.timedOut, stderr], [0, false, ""], `${what} exited cleanly`);
  }

  /** The stream's recording: decodes cleanly, as published, from a keyframe, DTS in order. */
  async function checkRecording(file: string, stream: Published): Promise<void> {
    const path = `${dir}/${file}`;
    const decoded = await decodeCheck(path);
    assert.deepEqual([decoded.code, decoded.stderr], [0, ""], `${file} decodes cleanly`);
    checkStreams(await probePackets(path), stream, file);
  }

  try {
    await t.step("SRT publish; RTMP, HLS and RTSP play", async () => {
      const s: Published = { key: "live/s", protocol: "srt", width: 320, height: 240 };
      const publisher = publish(s, 10);
      await listed(s);
      const rtmp = record(url.rtmp(s.key), "srt-rtmp.flv", "flv");
      const rtspNull = procs.run("ffmpeg", [
        ...["-v", "warning", "-rtsp_transport", "tcp", "-i", url.rtsp(s.key)],
        ...["-f", "null", "-"],
      ], LIMIT_MS);
      // ffmpeg's RTSP reader gives the first video packet no timestamps, so the packets are
      // read with ffprobe rather than copied into a container; -timeout bounds a stall.
      const rtspProbe = probePackets(url.rtsp(s.key), [
        ...["-rtsp_transport", "tcp", "-timeout", "10000000", "-read_intervals", "%+30"],
      ]);
      rtspProbe.catch(() => {}); // awaited below; not unhandled if a step before fails
      // HLS players need a first segment.
      await waitFor(`the first HLS segment of ${s.key}`, async () => {
        const response = await fetch(`${http}/${s.key}/stream.m3u8`);
        const text = await response.text();
        return response.ok && /#EXTINF/.test(text) ? text : undefined;
      });
      const hls = record(`${http}/${s.key}/index.m3u8`, "srt-hls.ts", "mpegts");
      // The HLS packager, the RTMP player and both RTSP readers.
      await joined(s, 4);

      await silent("SRT publisher", publisher);
      await silent("RTMP player", rtmp);
      await silent("HLS player", hls);
      await silent("RTSP player", rtspNull);
      await checkRecording("srt-rtmp.flv", s);
      await checkRecording("srt-hls.ts", s);
      checkStreams(await rtspProbe, s, "RTSP packets");
    });

    await t.step("RTSP publish; SRT and HTTP-FLV play; RTMP publish; SRT play", async () => {
      const r: Published = { key: "live/r", protocol: "rtsp", width: 256, height: 144 };
      const m: Published = { key: "live/m", protocol: "rtmp", width: 160, height: 120 };
      const publishers = [publish(r, 8), publish(m, 8)];
      await Promise.all([listed(r), listed(m)]);
      const rSrt = url.srt(`read:${r.key}`);
      const mSrt = url.srt(`read:${m.key}`);
      const players = [
        record(rSrt, "rtsp-srt.ts", "mpegts"),
        record(`${http}/${r.key}.flv`, "rtsp-flv.flv", "flv"),
        record(mSrt, "rtmp-srt.ts", "mpegts"),
      ];
      // The HLS packager and two players on live/r; the packager and one on live/m.
      await Promise.all([joined(r, 3), joined(m, 2)]);

      await silent("RTSP publisher", publishers[0]);
      await silent("RTMP publisher", publishers[1]);
      await silent("SRT player of live/r", players[0], rSrt);
      await silent("HTTP-FLV player of live/r", players[1]);
      await silent("SRT player of live/m", players[2], mSrt);
      await checkRecording("rtsp-srt.ts", r);
      await checkRecording("rtsp-flv.flv", r);
      await checkRecording("rtmp-srt.ts", m);
    });

    const metrics = await (await fetch(`${http}/metrics`)).text();
    for (const protocol of ["srt", "rtsp", "rtmp"]) {
      assert.match(
        metrics,
        new RegExp(`^arcly_publishes_total\\{protocol="${protocol}"\\} 1$`, "m"),
      );
    }
    assert.deepEqual(await streams(), [], "no stream outlives its publisher");
  } finally {
    procs.killAll();
    const code = await server.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, `serve exits 0 on SIGTERM:\n${server.log.join("\n")}`);
  }
  const log = server.log.join("\n");
  assert.doesNotMatch(log, / (WARN|ERROR) /, "the server logged no warnings or errors");
});

/** Video and audio as published: codecs, picture size, a keyframe first, DTS increasing. */
function checkStreams(streams: ProbeStream[], stream: Published, what: string): void {
  const video = streams.find((s) => s.codecType === "video");
  const audio = streams.find((s) => s.codecType === "audio");
  assert.ok(video && audio, `${what} has video and audio`);
  assert.deepEqual(
    [video.codecName, video.info.width, video.info.height, audio.codecName],
    ["h264", stream.width, stream.height, "aac"],
    `${what}: codecs and picture size as published`,
  );
  assert.ok(video.packets.length >= 25, `${what}: ${video.packets.length} video packets`);
  assert.ok(audio.packets.length >= 25, `${what}: ${audio.packets.length} audio packets`);
  assert.ok(video.packets[0].keyframe, `${what}: the first video packet is a keyframe`);
  for (const s of [video, audio]) {
    // ffmpeg's RTP demuxer has no decode time for the first video packet nor, with B-frames,
    // for the packets of its reorder delay; past those leading ones, every packet has one.
    const timed = s.packets.findIndex((p) => p.dts !== undefined);
    assert.ok(timed >= 0 && timed <= 1 + BFRAMES, `${what} ${s.codecType}: ${timed} untimed first`);
    const dts = s.packets.slice(timed).map((p) => p.dts);
    for (let i = 1; i < dts.length; i++) {
      assert.ok(
        dts[i]! > dts[i - 1]!,
        `${what} ${s.codecType}: DTS ${dts[i]} after ${dts[i - 1]} (packet ${timed + i})`,
      );
    }
  }
}
