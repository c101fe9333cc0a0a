/**
 * SrtPublisher against real listeners: srt-live-transmit (libsrt) writing what it receives
 * to stdout for ffprobe and ffmpeg's decoder, and our own serveSrt, in clear and encrypted;
 * a refused publish says why.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { RejectReason, serveSrt, SrtError, SrtPublisher } from "../../../ingest/srt/mod.ts";
import { TsDecoder } from "../../../media/ts/mod.ts";
import { decodeCheck, probePackets, Procs, tempPath } from "../../_util/ffmpeg.ts";
import { readAll } from "../../_util/frames.ts";
import { testsWith } from "../../_util/tools.ts";
import { srtClip } from "./_util.ts";
import { freeUdpPort } from "../../_util/ports.ts";
import { within } from "../../_util/within.ts";

const test = await testsWith({ srt: ["ffmpeg", "ffprobe", "srt-live-transmit"] });

const PASSPHRASE = "correct-horse-battery";

/** The clip's frames, as our demuxer reads the file. */
async function clipFrames(): Promise<MediaFrame[]> {
  const file = await srtClip();
  const frames: MediaFrame[] = [];
  const decoder = new TsDecoder();
  decoder.decode(await Deno.readFile(file), (f) => frames.push(f));
  decoder.flush((f) => frames.push(f));
  return frames;
}

/** Write `frames` at the pace of their decode times (as a relay of a live stream does). */
async function writeLive(out: SrtPublisher, frames: readonly MediaFrame[]): Promise<void> {
  const start = performance.now();
  const first = frames[0].dts;
  for (const frame of frames) {
    const due = start + (frame.dts - first) / 90;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    await out.write(frame);
  }
}

/** Connect, retrying while the listener is not up yet (the handshake gets no answer). */
async function connect(url: string): Promise<SrtPublisher> {
  for (let tries = 0;; tries++) {
    try {
      return await SrtPublisher.connect(url, { timeoutMs: 1000 });
    } catch (error) {
      if (tries === 10 || !(error instanceof SrtError) || error.reason !== undefined) throw error;
    }
  }
}

const videoCount = (frames: readonly MediaFrame[]) =>
  frames.filter((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG)).length;

for (const encrypted of [false, true]) {
  const name = encrypted ? "encrypted (AES-128)" : "in clear";
  test.srt(`SrtPublisher into srt-live-transmit, ${name}: ffprobe and ffmpeg's decoder take it`, async () => {
    const procs = new Procs();
    try {
      const port = await freeUdpPort();
      const secret = encrypted ? `&passphrase=${PASSPHRASE}&pbkeylen=16` : "";
      const listener = procs.spawn("srt-live-transmit", [
        "-a:no",
        "-q",
        `srt://127.0.0.1:${port}?mode=listener${secret}`,
        "file://con",
      ], { limitMs: 30_000, stdout: true });
      const frames = await clipFrames();
      const out = await connect(`srt://127.0.0.1:${port}?streamid=publish:live/x${secret}`);
      await writeLive(out, frames);
      out.close();
      assert.equal(await within(out.closed, 5000, "the close"), "closed");
      const done = await listener;
      const file = await tempPath(`publisher-${encrypted}.ts`);
      await Deno.writeFile(file, done.stdout);
      const streams = await probePackets(file);
      assert.deepEqual(streams.map((s) => s.codecName).sort(), ["aac", "h264"], done.stderr);
      const video = streams.find((s) => s.codecType === "video")!;
      assert.equal(video.packets.length, videoCount(frames), "every video frame arrived");
      assert.ok(video.packets[0].flags?.includes("K"), "starts on a keyframe");
      const check = await decodeCheck(file);
      assert.deepEqual([check.code, check.stderr], [0, ""], name);
      assert.equal(out.stats().dropped, 0);
    } finally {
      procs.killAll();
    }
  });
}

for (const encrypted of [false, true]) {
  const name = encrypted ? "encrypted (AES-192)" : "in clear";
  test.srt(`SrtPublisher into our serveSrt (publish:live/x), ${name}: the same frames arrive`, async () => {
    const registry = new Registry();
    const server = await serveSrt({
      registry,
      hostname: "127.0.0.1",
      port: 0,
      passphrase: encrypted ? PASSPHRASE : undefined,
    });
    try {
      const secret = encrypted ? `&passphrase=${PASSPHRASE}&pbkeylen=24` : "";
      const frames = await clipFrames();
      const out = await SrtPublisher.connect(
        `srt://127.0.0.1:${server.addr.port}?streamid=publish:live/x${secret}`,
      );
      const handle = registry.get("live", "x")!;
      const received = readAll(handle.subscribe({ replay: true }), 20_000);
      await writeLive(out, frames);
      out.close();
      await within(out.closed, 5000, "the close");
      const got = await received;
      // The demuxer hands a frame on when its track's next one starts: compare per track.
      for (const kind of ["video", "audio"]) {
        const mine = got.filter((f) => f.kind === kind);
        const theirs = frames.filter((f) => f.kind === kind);
        assert.equal(mine.length, theirs.length, `${kind} frame count`);
        for (let i = 0; i < theirs.length; i++) {
          const [a, b] = [mine[i], theirs[i]];
          assert.deepEqual(
            [a.codec, a.pts, a.dts, a.flags, a.data],
            [b.codec, b.pts, b.dts, b.flags, b.data],
            `${kind} frame ${i}`,
          );
        }
      }
      // A second publisher of the key is refused with the listener's reason.
      const second = SrtPublisher.connect(
        `srt://127.0.0.1:${server.addr.port}?streamid=publish:live/y${secret}`,
      );
      const third = SrtPublisher.connect(
        `srt://127.0.0.1:${server.addr.port}?streamid=publish:live/y${secret}`,
      );
      const results = await Promise.allSettled([second, third]);
      const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      assert.ok(
        refused?.reason instanceof SrtError && refused.reason.reason === RejectReason.CONFLICT,
        String(refused?.reason),
      );
      for (const r of results) if (r.status === "fulfilled") r.value.close();
    } finally {
      await server.close();
    }
  });
}
