/**
 * The SRT caller against real listeners: pullSrt from ffmpeg in listener mode and from our
 * own serveSrt (in clear and encrypted), the frames checked by ffmpeg's decoder; refusals,
 * a silent source, abort; a hostile listener answering with mangled handshakes.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import {
  encodeHandshake,
  HandshakeType,
  parseSrtUrl,
  pullSrt,
  RejectReason,
  serveSrt,
  SRT_MAGIC,
  SrtError,
} from "../../../ingest/srt/mod.ts";
import { TsDecoder } from "../../../media/ts/mod.ts";
import { Procs } from "../../_util/ffmpeg.ts";
import { checkPulled } from "../../_util/pulled.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { flipBit, prng, randomBytes, returnsOrRangeError } from "../../_util/fuzz.ts";
import { LogLines } from "../../_util/log.ts";
import { testsWith } from "../../_util/tools.ts";
import { srtClip } from "./_util.ts";
import { freeUdpPort } from "../../_util/ports.ts";
import { startServer, waitFor } from "../../_util/serve.ts";
import { within } from "../../_util/within.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** No characters a URL would escape: ffmpeg takes the query as written. */
const PASSPHRASE = "correct-horse-battery";

/** The frames written back as MPEG-TS and decoded by ffmpeg (`-v warning -xerror`). */
async function assertDecodes(frames: readonly MediaFrame[], what: string): Promise<void> {
  const { decode } = await checkPulled(frames, `caller-${Math.random().toString(36).slice(2)}`);
  assert.deepEqual([decode.code, decode.stderr], [0, ""], `${what}: ffmpeg decodes the frames`);
}

/** Video frames of the clip itself, as our demuxer sees the file. */
async function clipVideoFrames(): Promise<number> {
  const decoder = new TsDecoder();
  let n = 0;
  const count = (f: MediaFrame) => {
    if (f.kind === "video" && !(f.flags & FrameFlags.CONFIG)) n++;
  };
  decoder.decode(await Deno.readFile(await srtClip()), count);
  decoder.flush(count);
  return n;
}

function summary(frames: readonly MediaFrame[]) {
  const media = frames.filter((f) => !(f.flags & FrameFlags.CONFIG));
  const firstVideo = media.find((f) => f.kind === "video");
  return {
    video: media.filter((f) => f.kind === "video").length,
    audio: media.filter((f) => f.kind === "audio").length,
    firstVideoIsKey: !!firstVideo && (firstVideo.flags & FrameFlags.KEYFRAME) !== 0,
  };
}

for (const encrypted of [false, true]) {
  const name = encrypted ? "encrypted (AES-128)" : "in clear";
  test.ffmpeg(`pullSrt from ffmpeg as an SRT listener, ${name}: every frame, ffmpeg decodes them`, async () => {
    const procs = new Procs();
    const log = new LogLines();
    try {
      const port = await freeUdpPort();
      const secret = encrypted ? `&passphrase=${PASSPHRASE}&pbkeylen=16` : "";
      const listener = procs.spawn("ffmpeg", [
        ...["-hide_banner", "-nostdin", "-v", "error", "-re", "-i", await srtClip(), "-c", "copy"],
        ...[
          "-f",
          "mpegts",
          `srt://127.0.0.1:${port}?mode=listener&listen_timeout=15000000${secret}`,
        ],
      ], { limitMs: 30_000 });
      const frames: MediaFrame[] = [];
      const url = new URL(`srt://127.0.0.1:${port}?streamid=read:live/x&latency=200${secret}`);
      await within(
        pullSrt(url, { onFrame: (f) => frames.push(f), logger: log, timeoutMs: 10_000 }),
        30_000,
        "the pull",
      );
      const done = await listener;
      assert.equal(done.code, 0, done.stderr);
      assertConfigFirst(frames, name);
      const got = summary(frames);
      // libsrt's close may leave the last packet or two unsent: every frame but those.
      const expected = await clipVideoFrames();
      assert.ok(got.firstVideoIsKey, "the first video frame is a keyframe");
      assert.ok(
        got.video <= expected && got.video >= expected - 3,
        `${name}: ${got.video} of ${expected} video frames\n${log.lines.join("\n")}`,
      );
      assert.ok(got.audio > 0, "audio frames");
      if (encrypted) assert.ok(log.lines.some((l) => /AES-128/.test(l)), log.lines.join("\n"));
      await assertDecodes(frames, name);
    } finally {
      procs.killAll();
    }
  });
}

for (const encrypted of [false, true]) {
  const name = encrypted ? "encrypted (AES-256)" : "in clear";
  test.ffmpeg(`pullSrt reads our own serve (read:live/x), ${name}; the end of the stream resolves it`, async () => {
    const server = await startServer(["srt"], encrypted ? { srt: { passphrase: PASSPHRASE } } : {});
    const registry = server.server.registry;
    const procs = new Procs();
    try {
      const port = server.ports.srt!;
      const secret = encrypted ? `&passphrase=${PASSPHRASE}&pbkeylen=32` : "";
      const publish = procs.spawn("ffmpeg", [
        ...["-hide_banner", "-nostdin", "-v", "error", "-re", "-i", await srtClip(), "-c", "copy"],
        ...["-f", "mpegts", `srt://127.0.0.1:${port}?streamid=publish:live/x${secret}`],
      ], { limitMs: 30_000 });
      await within(
        (async () => {
          while (!registry.get("live", "x")?.cachedConfigs().video) {
            await new Promise((r) => setTimeout(r, 20));
          }
        })(),
        15_000,
        "the publish",
      );
      const frames: MediaFrame[] = [];
      const url = new URL(`srt://127.0.0.1:${port}?streamid=read:live/x${secret}`);
      await within(pullSrt(url, { onFrame: (f) => frames.push(f) }), 30_000, "the pull");
      assert.equal((await publish).code, 0);
      assertConfigFirst(frames, name);
      const got = summary(frames);
      assert.ok(got.firstVideoIsKey, "starts on the GOP replay's keyframe");
      assert.ok(got.video >= 25 && got.audio > 0, JSON.stringify(got));
      await assertDecodes(frames, name);
    } finally {
      procs.killAll();
      await server.stop();
    }
  });
}

test.ffmpeg("pullSrt: refusals carry the listener's reason (no such stream, wrong or missing passphrase)", async () => {
  const registry = new Registry();
  const server = await serveSrt({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    passphrase: (r) => (r.stream === "secure" ? PASSPHRASE : undefined),
  });
  try {
    const base = `srt://127.0.0.1:${server.addr.port}?streamid=read:`;
    registry.startPublish("live", "secure");
    const cases: [string, number][] = [
      [`${base}live/missing`, RejectReason.NOTFOUND],
      [`${base}live/secure&passphrase=not-the-passphrase`, RejectReason.BADSECRET],
      [`${base}live/secure`, RejectReason.UNSECURE],
    ];
    for (const [url, reason] of cases) {
      await assert.rejects(
        within(pullSrt(new URL(url), { onFrame: () => {} }), 10_000, url),
        (e: unknown) =>
          e instanceof SrtError && e.reason === reason && !e.message.includes("not-the"),
        url,
      );
    }
  } finally {
    await server.close();
  }
});

test.ffmpeg("pullSrt: a listener that never answers, and a stream that goes silent, reject at the timeout", async () => {
  const mute = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => mute.bind(0, "127.0.0.1", resolve));
  const registry = new Registry();
  const server = await serveSrt({ registry, hostname: "127.0.0.1", port: 0 });
  try {
    await assert.rejects(
      within(
        pullSrt(new URL(`srt://127.0.0.1:${mute.address().port}`), {
          onFrame: () => {},
          timeoutMs: 500,
        }),
        5000,
        "the pull",
      ),
      /induction: no answer within 500 ms/,
    );
    // Aborted while the handshake waits: the pull resolves, long before its timeout.
    const stop = new AbortController();
    const aborted = pullSrt(new URL(`srt://127.0.0.1:${mute.address().port}`), {
      onFrame: () => {},
      timeoutMs: 60_000,
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(), 300);
    assert.equal(await within(aborted, 5000, "the aborted pull"), undefined);
    // A live stream whose publisher stops sending: keep-alives go on, media does not.
    const handle = registry.startPublish("live", "quiet");
    const frames: MediaFrame[] = [];
    const pull = pullSrt(
      new URL(`srt://127.0.0.1:${server.addr.port}?streamid=read:live/quiet`),
      { onFrame: (f) => frames.push(f), timeoutMs: 1500 },
    );
    await assert.rejects(within(pull, 10_000, "the pull"), /no media from the source for 1500 ms/);
    assert.equal(handle.closed, false);
    // The pull ends once its SHUTDOWN went out; the listener takes it a moment later.
    await waitFor(
      "the reader's connection to go",
      () => server.stats().connections === 0 || undefined,
      5000,
    );
  } finally {
    await new Promise<void>((resolve) => mute.close(() => resolve()));
    await server.close();
  }
});

test.ffmpeg("pullSrt: abort resolves and the listener sees the connection close", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const server = await serveSrt({ registry, hostname: "127.0.0.1", port: 0, logger: log });
  const procs = new Procs();
  try {
    const port = server.addr.port;
    const publish = procs.spawn("ffmpeg", [
      ...["-hide_banner", "-nostdin", "-v", "error", "-re", "-i", await srtClip(), "-c", "copy"],
      ...["-f", "mpegts", `srt://127.0.0.1:${port}?streamid=publish:live/x`],
    ], { limitMs: 30_000 });
    const stop = new AbortController();
    const frames: MediaFrame[] = [];
    const pull = pullSrt(new URL(`srt://127.0.0.1:${port}?streamid=read:live/x`), {
      onFrame: (f) => {
        frames.push(f);
        if (frames.length === 20) stop.abort();
      },
      signal: stop.signal,
      timeoutMs: 10_000,
    });
    // The reader may come before the publisher: retry until it is there.
    let pulled = pull;
    for (let tries = 0; tries < 40; tries++) {
      try {
        await within(pulled, 20_000, "the pull");
        break;
      } catch (error) {
        if (!(error instanceof SrtError && error.reason === RejectReason.NOTFOUND)) throw error;
        await new Promise((r) => setTimeout(r, 100));
        pulled = pullSrt(new URL(`srt://127.0.0.1:${port}?streamid=read:live/x`), {
          onFrame: (f) => {
            frames.push(f);
            if (frames.length === 20) stop.abort();
          },
          signal: stop.signal,
        });
      }
    }
    assert.ok(frames.length >= 20);
    await log.waitFor(/closed live\/x: peer closed the connection/);
    assert.equal(registry.get("live", "x")?.closed, false, "the publish goes on");
    procs.killAll();
    await publish;
  } finally {
    procs.killAll();
    await server.close();
  }
});

Deno.test("parseSrtUrl: options, defaults, redaction; bad URLs are RangeErrors", () => {
  const t = parseSrtUrl(
    "srt://[::1]:9000?streamid=read:live/a&passphrase=0123456789&pbkeylen=24&latency=80",
  );
  assert.deepEqual(t, {
    hostname: "::1",
    port: 9000,
    streamId: "read:live/a",
    passphrase: "0123456789",
    pbkeylen: 24,
    latencyMs: 80,
    redacted: "srt://[::1]:9000?…",
  });
  assert.deepEqual(
    [
      parseSrtUrl("srt://h:1").latencyMs,
      parseSrtUrl("srt://h:1").pbkeylen,
      parseSrtUrl("srt://h:1").streamId,
    ],
    [120, 16, undefined],
  );
  for (
    const bad of [
      "rtmp://h:1",
      "srt://h",
      "nonsense",
      "srt://h:1?passphrase=short",
      "srt://h:1?pbkeylen=20",
      "srt://h:1?latency=-1",
      "srt://h:1?latency=1.5",
      `srt://h:1?streamid=${"x".repeat(600)}`,
    ]
  ) assert.throws(() => parseSrtUrl(bad), RangeError, bad);
  const rand = prng(7);
  const alphabet = "srt:/?&=[]:%.0123456789abcdefhlnpqyk";
  for (let i = 0; i < 2000; i++) {
    let url = "";
    for (let n = (rand() * 60) | 0; n > 0; n--) url += alphabet[(rand() * alphabet.length) | 0];
    returnsOrRangeError(() => parseSrtUrl(url), url);
  }
});

Deno.test("pullSrt: a hostile listener's mangled handshake answers are ignored or refused, never a crash", async () => {
  const rand = prng(3);
  const hostile = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => hostile.bind(0, "127.0.0.1", resolve));
  let answers = 0;
  hostile.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    const view = new Uint8Array(msg);
    const callerSocket = new DataView(view.buffer, view.byteOffset).getUint32(16 + 24);
    const type = new DataView(view.buffer, view.byteOffset).getUint32(16 + 20);
    const good = encodeHandshake(
      {
        version: 5,
        encryption: 0,
        extensionField: type === HandshakeType.INDUCTION ? SRT_MAGIC : 1,
        isn: 1,
        mtu: 1500,
        flowWindow: 8192,
        type,
        socketId: 77,
        cookie: 1234,
        peerIp: "127.0.0.1",
        hsrsp: type === HandshakeType.INDUCTION
          ? undefined
          : { version: 0x010500, flags: 0x3f, receiverLatencyMs: 120, senderLatencyMs: 120 },
      },
      0,
      callerSocket,
    );
    const mangled = rand() < 0.5
      ? flipBit(good, 16 * 8 + Math.floor(rand() * (good.length - 16) * 8))
      : (() => {
        const junk = randomBytes(rand, 16 + Math.floor(rand() * 80));
        junk.set(good.subarray(0, 16));
        return junk;
      })();
    answers++;
    hostile.send(mangled, rinfo.port, rinfo.address);
  });
  try {
    for (let i = 0; i < 12; i++) {
      const outcome = await within(
        pullSrt(new URL(`srt://127.0.0.1:${hostile.address().port}`), {
          onFrame: () => {},
          timeoutMs: 400,
        }).then(() => "resolved", (e: unknown) => e),
        5000,
        `pull #${i}`,
      );
      assert.ok(outcome === "resolved" || outcome instanceof SrtError, String(outcome));
    }
    assert.ok(answers > 12);
  } finally {
    await new Promise<void>((resolve) => hostile.close(() => resolve()));
  }
});
