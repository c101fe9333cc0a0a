/**
 * The RTMP pull client against real servers: our own RTMP server (plain and RTMPS) and
 * nginx-rtmp, with ffmpeg publishing; the pulled frames are muxed to TS and decoded by ffmpeg.
 * Refusals, silence and abort end the pull as documented; mutated server sessions only ever
 * end it with an Error.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import type { PullClient } from "../../../ingest/pull.ts";
import {
  ChunkWriter,
  commandMessage,
  dataMessage,
  HANDSHAKE_SIZE,
  MessageType,
  pullRtmp,
  type RtmpMessage,
  RtmpPublisher,
  serveRtmp,
  setChunkSizeMessage,
  statusInfo,
  UserControlEvent,
  userControlMessage,
  windowAckSizeMessage,
} from "../../../ingest/rtmp/mod.ts";
import { encodeAudioTag, encodeVideoTag, FlvReader } from "../../../media/flv/mod.ts";
import { TsDemuxer } from "../../../media/ts/mod.ts";
import { makeFixture, Procs, publishLive, sine, testsrc, x264 } from "../../_util/ffmpeg.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { concat } from "../../_util/bytes.ts";
import { flipBit, prng } from "../../_util/fuzz.ts";
import { LogLines } from "../../_util/log.ts";
import { startNginx } from "../../_util/nginx.ts";
import { freeTcpPort as freePort } from "../../_util/ports.ts";
import { checkPulled } from "../../_util/pulled.ts";
import { waitFor } from "../../_util/serve.ts";
import { makeCert } from "../../_util/tls.ts";
import { testsWith } from "../../_util/tools.ts";
import { within } from "../../_util/within.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  nginx: ["ffmpeg", "ffprobe", "nginx"],
  x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"],
});

/** The client has the shape the server's sources call. */
const _isPullClient: PullClient = pullRtmp;

/** The stream `live/NAME` of `registry` once it has both configs. */
function live(registry: Registry, name: string) {
  return waitFor(`the publish of live/${name}`, () => {
    const handle = registry.get("live", name);
    return handle?.cachedConfigs().video && handle.cachedConfigs().audio ? handle : undefined;
  });
}

/** Asserts what a pull of ffmpeg's H.264 + AAC test stream delivered, and that ffmpeg decodes it. */
async function assertDecodes(frames: MediaFrame[], name: string): Promise<void> {
  const media = assertConfigFirst(frames, name);
  assert.ok(media > 0, `${name}: media frames`);
  const firstVideo = frames.find((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG));
  assert.ok(firstVideo && firstVideo.flags & FrameFlags.KEYFRAME, `${name}: starts on a keyframe`);
  const { decode, streams } = await checkPulled(frames, name);
  assert.deepEqual([decode.code, decode.stderr], [0, ""], name);
  assert.deepEqual(streams.map((s) => s.codecName).sort(), ["aac", "h264"], name);
  const video = streams.find((s) => s.codecType === "video")!;
  assert.equal(
    video.packets.length,
    frames.filter((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG)).length,
    `${name}: every video frame is a packet`,
  );
}

test.ffmpeg("rtmp pull: from our server while ffmpeg publishes; ffmpeg decodes the frames; the publish's end resolves the pull", async () => {
  const registry = new Registry();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const procs = new Procs();
  const log = new LogLines();
  try {
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${server.addr.port}/live/cam`, 4);
    await live(registry, "cam");
    const frames: MediaFrame[] = [];
    const url = new URL(`rtmp://127.0.0.1:${server.addr.port}/live/cam?token=secret`);
    await within(
      pullRtmp(url, { onFrame: (f) => frames.push(f), logger: log }),
      30_000,
      "the pull",
    );
    assert.equal((await publisher).code, 0);
    await assertDecodes(frames, "rtmp-pull-ours");
    await log.waitFor(/rtmp pull .*: ended: the server ended the stream \(StreamEOF\)/);
    assert.ok(!log.lines.some((l) => l.includes("secret")), "the token stays out of the log");
  } finally {
    procs.killAll();
    registry.closeAll();
    await server.close();
  }
});

test.ffmpeg("rtmp over TLS: rtmps:// pulled from our server's TLS listener, and published back to it with RtmpPublisher", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-rtmps-pull-" });
  const cert = await makeCert(dir, "server");
  const registry = new Registry();
  const server = serveRtmp({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    tls: { port: 0, certFile: cert.certFile, keyFile: cert.keyFile },
  });
  const procs = new Procs();
  try {
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${server.addr.port}/live/tls`, 3);
    await live(registry, "tls");
    const frames: MediaFrame[] = [];
    const url = new URL(`rtmps://localhost:${server.tlsAddr!.port}/live/tls`);
    await within(
      pullRtmp(url, { onFrame: (f) => frames.push(f), caCerts: [cert.cert] }),
      30_000,
      "the rtmps pull",
    );
    await publisher;
    await assertDecodes(frames, "rtmps-pull");
    // the publisher shares the connection code: the same frames go back over rtmps://
    const back = await RtmpPublisher.connect(
      `rtmps://localhost:${server.tlsAddr!.port}/live/back`,
      {
        caCerts: [cert.cert],
      },
    );
    for (const frame of frames) await back.write(frame);
    const copy = await live(registry, "back");
    assert.equal(copy.cachedConfigs().video?.codec, "h264");
    back.close();
    // without the certificate as a trust anchor the TLS handshake fails, and says so
    await assert.rejects(pullRtmp(url, { onFrame: () => {}, timeoutMs: 3000 }), /certificate/i);
  } finally {
    procs.killAll();
    registry.closeAll();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

test.nginx("rtmp pull: from nginx-rtmp, started before ffmpeg publishes; the StreamEOF at its end resolves it", async () => {
  const procs = new Procs();
  const port = freePort();
  const nginx = await startNginx(
    procs,
    `events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:${port}; application live { live on; } } }
`,
    { modules: "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n" },
  );
  try {
    await waitFor(
      "nginx listening",
      () =>
        Deno.connect({ hostname: "127.0.0.1", port }).then(
          (c) => (c.close(), true),
          () => undefined,
        ),
    );
    const frames: MediaFrame[] = [];
    const log = new LogLines();
    const pulling = pullRtmp(new URL(`rtmp://127.0.0.1:${port}/live/cam`), {
      onFrame: (f) => frames.push(f),
      logger: log,
    });
    await log.waitFor(/playing/);
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${port}/live/cam`, 4);
    await within(pulling, 30_000, "the pull from nginx");
    assert.equal((await publisher).code, 0);
    await assertDecodes(frames, "rtmp-pull-nginx");
    assert.ok(
      log.lines.some((l) => /ended: the server ended the stream \(StreamEOF\)/.test(l)),
      log.lines.join("\n"),
    );
  } finally {
    await nginx.stop();
    procs.killAll();
  }
});

test.x265("rtmp pull: H.265 over Enhanced RTMP, frame for frame, and ffmpeg decodes it", async () => {
  const ts = await makeFixture("pull-hevc.ts", [
    ...testsrc({ duration: 1 }),
    ...["-c:v", "libx265", "-x265-params", "log-level=error", "-f", "mpegts"],
  ]);
  const demuxed = (await Deno.open(ts)).readable.pipeThrough(new TsDemuxer());
  const published: MediaFrame[] = [];
  for await (const frame of demuxed) published.push(frame);
  const registry = new Registry();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  try {
    const handle = registry.startPublish("live", "hevc", { protocol: "test" });
    for (const frame of published) handle.publish(frame);
    const got: MediaFrame[] = [];
    const pulling = pullRtmp(new URL(`rtmp://127.0.0.1:${server.addr.port}/live/hevc`), {
      onFrame: (f) => got.push(f),
    });
    await waitFor("every frame", () => got.length >= published.length || undefined, 15_000);
    registry.endPublish(handle, "ended");
    await within(pulling, 10_000, "the pull ends with the publish");
    // RTMP has millisecond times: the composition offsets survive them, in ms
    const shape = (f: MediaFrame) => [
      f.codec,
      f.flags,
      f.flags & FrameFlags.CONFIG ? 0 : Math.round((f.pts - f.dts) / 90),
      f.data.length,
    ];
    assert.deepEqual(got.map(shape), published.map(shape));
    const { decode, streams } = await checkPulled(got, "rtmp-pull-hevc");
    assert.deepEqual([decode.code, decode.stderr], [0, ""]);
    assert.deepEqual(streams.map((s) => s.codecName), ["hevc"]);
  } finally {
    registry.closeAll();
    await server.close();
  }
});

test.ffmpeg("rtmp pull: refusals reject with the server's reason", async () => {
  const registry = new Registry({
    authorize: (request) => request.stream !== "secret",
  });
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  const at = (path: string) => new URL(`rtmp://127.0.0.1:${server.addr.port}/${path}`);
  const none = { onFrame: () => assert.fail("no frame expected"), timeoutMs: 5000 };
  try {
    await assert.rejects(pullRtmp(at("live/missing"), none), /NetStream\.Play\.StreamNotFound/);
    await assert.rejects(
      pullRtmp(at("nope/cam"), none),
      /connect refused: NetConnection\.Connect\.Rejected/,
    );
    registry.startPublish("live", "secret", { protocol: "test" });
    await assert.rejects(
      pullRtmp(at("live/secret"), none),
      /NetStream\.Play\.Failed not authorized/,
    );
    await assert.rejects(
      pullRtmp(new URL(`rtmp://127.0.0.1:1/live/x`), none),
      /refused/i,
    );
    await assert.rejects(pullRtmp(new URL("http://127.0.0.1/live/x"), none), RangeError);
  } finally {
    registry.closeAll();
    await server.close();
  }
});

test.ffmpeg("rtmp pull: a server that goes silent makes it reject, in the handshake and once playing", async () => {
  // a TCP server that accepts and never answers
  const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  void (async () => {
    for await (const conn of mute) accepted.push(conn);
  })();
  const registry = new Registry();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0 });
  try {
    const port = (mute.addr as Deno.NetAddr).port;
    await assert.rejects(
      within(
        pullRtmp(new URL(`rtmp://127.0.0.1:${port}/live/x`), { onFrame: () => {}, timeoutMs: 500 }),
        5000,
        "pull",
      ),
      /handshake: no answer within 500 ms/,
    );
    // a stream that is published but sends nothing
    const handle = registry.startPublish("live", "quiet", { protocol: "test" });
    const log = new LogLines();
    await assert.rejects(
      within(
        pullRtmp(new URL(`rtmp://127.0.0.1:${server.addr.port}/live/quiet`), {
          onFrame: () => {},
          timeoutMs: 500,
          logger: log,
        }),
        5000,
        "pull",
      ),
      /no media for 500 ms/,
    );
    assert.ok(log.lines.some((l) => l.includes("playing")), "it had started playing");
    registry.endPublish(handle, "ended");
  } finally {
    mute.close();
    for (const conn of accepted) conn.close();
    registry.closeAll();
    await server.close();
  }
});

test.ffmpeg("rtmp pull: abort resolves it and closes the connection", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const server = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, logger: log });
  const procs = new Procs();
  try {
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${server.addr.port}/live/long`, 20);
    await live(registry, "long");
    const stop = new AbortController();
    let count = 0;
    const pulling = pullRtmp(new URL(`rtmp://127.0.0.1:${server.addr.port}/live/long`), {
      onFrame: () => {
        if (++count === 20) stop.abort();
      },
      signal: stop.signal,
    });
    await within(pulling, 15_000, "the pull ends on abort");
    assert.ok(count >= 20);
    await log.waitFor(/rtmp 127\.0\.0\.1:\d+: closed: peer closed the connection/, 5000);
    // aborted before it starts: resolves at once, no connection
    const before = log.lines.length;
    await pullRtmp(new URL(`rtmp://127.0.0.1:${server.addr.port}/live/long`), {
      onFrame: () => {},
      signal: AbortSignal.abort(),
    });
    // aborted during the set-up (the mute handshake above): resolves
    const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const early = new AbortController();
    const waiting = pullRtmp(
      new URL(`rtmp://127.0.0.1:${(mute.addr as Deno.NetAddr).port}/live/x`),
      {
        onFrame: () => {},
        signal: early.signal,
      },
    );
    const conn = await mute.accept();
    early.abort();
    await within(waiting, 5000, "the pull ends on abort in the handshake");
    const buffer = new Uint8Array(4096);
    const drained = (async () => {
      while ((await conn.read(buffer)) !== null) { /* C0 C1, then the end */ }
    })();
    await within(drained, 5000, "the server side sees the connection end");
    conn.close();
    mute.close();
    assert.equal(log.lines.slice(before).filter((l) => /connect app/.test(l)).length, 0);
    procs.killAll();
    await publisher;
  } finally {
    procs.killAll();
    registry.closeAll();
    await server.close();
  }
});

/** What a server sends a player, as one byte string: S0 S1 S2, then `messages` chunked. */
function serverSession(messages: RtmpMessage[]): Uint8Array {
  const writer = new ChunkWriter();
  const out: Uint8Array[] = [new Uint8Array(1 + 2 * HANDSHAKE_SIZE)];
  out[0][0] = 3;
  out.push(writer.encode(setChunkSizeMessage(4096)));
  writer.chunkSize = 4096;
  for (const message of messages) out.push(writer.encode(message));
  return concat(out);
}

/** A loopback server that answers every connection with `bytes` and then drains it. */
function scripted(next: () => Uint8Array) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  void (async () => {
    for await (const conn of listener) {
      void (async () => {
        const buffer = new Uint8Array(8192);
        try {
          if ((await conn.read(buffer)) === null) return;
          await conn.write(next());
          while ((await conn.read(buffer)) !== null) { /* drain until the client leaves */ }
        } catch {
          // the client reset the connection
        } finally {
          conn.close();
        }
      })();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}

test.ffmpeg("rtmp pull fuzz: mutated server sessions end the pull with an Error, never a hang or a crash", async () => {
  const file = await makeFixture("pull-fuzz.flv", [
    ...testsrc({ duration: 1 }),
    ...sine({ duration: 1 }),
    ...x264({ gop: 10 }),
    ...["-c:a", "aac", "-f", "flv"],
  ]);
  const frames: MediaFrame[] = [];
  await (await Deno.open(file)).readable.pipeThrough(new FlvReader()).pipeTo(
    new WritableStream({ write: (frame) => void frames.push(frame) }),
  );
  const media = frames.slice(0, 12).map((frame): RtmpMessage => ({
    csid: frame.kind === "video" ? 6 : 4,
    typeId: frame.kind === "video" ? MessageType.VIDEO : MessageType.AUDIO,
    streamId: 1,
    timestamp: Math.round(frame.dts / 90),
    payload: frame.kind === "video" ? encodeVideoTag(frame) : encodeAudioTag(frame),
  }));
  const status = (code: string) =>
    commandMessage(5, 1, "onStatus", 0, null, statusInfo("status", code, code));
  const seed = serverSession([
    windowAckSizeMessage(5000),
    commandMessage(
      3,
      0,
      "_result",
      1,
      { fmsVer: "FMS/3,5,7,7009" },
      statusInfo("status", "NetConnection.Connect.Success", "ok"),
    ),
    commandMessage(3, 0, "_result", 2, null, 1),
    userControlMessage(UserControlEvent.STREAM_BEGIN, 1),
    status("NetStream.Play.Reset"),
    status("NetStream.Play.Start"),
    dataMessage(5, 1, "onMetaData", { width: 320, height: 240 }),
    userControlMessage(UserControlEvent.PING_REQUEST, 7),
    ...media,
    status("NetStream.Play.UnpublishNotify"),
  ]);
  // the unmutated session plays and ends cleanly
  let current = seed;
  const server = scripted(() => current);
  const url = new URL(`rtmp://127.0.0.1:${server.port}/live/x`);
  try {
    const got: MediaFrame[] = [];
    await within(
      pullRtmp(url, { onFrame: (f) => got.push(f), timeoutMs: 300 }),
      5000,
      "clean pull",
    );
    assert.equal(got.length, media.length);
    const rand = prng(17);
    const cases: Uint8Array[] = [];
    const chunked = seed.length - (1 + 2 * HANDSHAKE_SIZE);
    for (let i = 0; i < 120; i++) {
      cases.push(flipBit(seed, (1 + 2 * HANDSHAKE_SIZE) * 8 + Math.floor(rand() * chunked * 8)));
    }
    for (let i = 0; i < 30; i++) cases.push(seed.subarray(0, Math.floor(rand() * seed.length)));
    let rejected = 0;
    for (const bytes of cases) {
      current = bytes;
      try {
        await within(pullRtmp(url, { onFrame: () => {}, timeoutMs: 300 }), 5000, "mutated pull");
      } catch (error) {
        assert.ok(error instanceof Error, String(error));
        assert.ok(
          !(error instanceof TypeError) && !/did not happen/.test(error.message),
          error.stack,
        );
        rejected++;
      }
    }
    assert.ok(rejected > 0, "some mutations are refused");
  } finally {
    server.close();
  }
});
