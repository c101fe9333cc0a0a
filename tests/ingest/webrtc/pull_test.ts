/**
 * The WHEP pull client against our own server's WHEP: ffmpeg publishes H.264 + AAC over RTMP,
 * the server sends the AAC as Opus (transcodeAudio), and the pulled frames are muxed to TS and
 * decoded by ffmpeg. Refusals (404, 401), a silent endpoint, a peer that never connects, abort
 * (the session is DELETEd) and mutated answers end the pull as documented.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import type { PullClient } from "../../../ingest/pull.ts";
import { pullWhep, WebRtcError } from "../../../ingest/webrtc/mod.ts";
import { answerOffer } from "../../../ingest/webrtc/_peer.ts";
import { Procs, sine, testsrc, x264 } from "../../_util/ffmpeg.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { flipBit, prng } from "../../_util/fuzz.ts";
import { LogLines } from "../../_util/log.ts";
import { checkPulled } from "../../_util/pulled.ts";
import { startServer, waitFor } from "../../_util/serve.ts";
import { testsWith } from "../../_util/tools.ts";
import { within } from "../../_util/within.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** The client has the shape the server's sources call. */
const _isPullClient: PullClient = pullWhep;

/** ffmpeg publishing `seconds` of live H.264 without B-frames (as WebRTC carries it) + AAC. */
function publish(procs: Procs, url: string, seconds: number) {
  return procs.run("ffmpeg", [
    ...["-v", "warning", "-re"],
    ...testsrc({ duration: seconds, rate: 25 }),
    ...sine({ duration: seconds }),
    ...x264({ gop: 25, bframes: 0 }),
    ...["-c:a", "aac", "-f", "flv", url],
  ], 60_000);
}

/** Anyone may publish; reading takes the token `sesame`. */
const access = {
  grants: [
    { permissions: [{ action: "publish" as const }] },
    { token: "sesame", permissions: [{ action: "read" as const }] },
  ],
};

test.ffmpeg("whep pull: from our server (RTMP H.264 + AAC in, Opus out) with a token; ffmpeg decodes the frames; abort DELETEs the session", async () => {
  const server = await startServer(["rtmp", "http"], { access });
  const procs = new Procs();
  try {
    const publisher = publish(procs, `rtmp://127.0.0.1:${server.ports.rtmp}/live/cam`, 12);
    await waitFor(
      "the publish",
      () => server.server.registry.get("live", "cam")?.cachedConfigs().video,
    );
    const frames: MediaFrame[] = [];
    const stop = new AbortController();
    const log = new LogLines();
    let video = 0;
    let audio = 0;
    const pulling = pullWhep(new URL(`http://127.0.0.1:${server.ports.http}/live/cam/whep`), {
      onFrame: (frame) => {
        frames.push(frame);
        if (frame.flags & FrameFlags.CONFIG) return;
        if (frame.kind === "video") video++;
        else audio++;
        if (video >= 75 && audio >= 100) stop.abort();
      },
      signal: stop.signal,
      logger: log,
      token: "sesame",
    });
    await within(pulling, 40_000, "the pull, until 3 s of video and 2 s of audio");
    assert.ok(stop.signal.aborted);
    await server.log.waitFor(/whep live\/cam session \S+ from .* ended: ended by the client/, 5000);
    assertConfigFirst(frames, "whep pull");
    const first = frames.find((f) => f.kind === "video" && !(f.flags & FrameFlags.CONFIG))!;
    assert.ok(first.flags & FrameFlags.KEYFRAME, "video starts on a keyframe");
    const opusHead = frames.find((f) => f.kind === "audio" && f.flags & FrameFlags.CONFIG)!;
    assert.equal(new TextDecoder().decode(opusHead.data.subarray(0, 8)), "OpusHead");
    // The server's Opus encoder can start seconds after the video (a cold start on a busy
    // machine): ffmpeg is told to look far enough into the file for the first audio packet.
    const { decode, streams } = await checkPulled(frames, "whep-pull", [
      ...["-analyzeduration", "30000000"],
    ]);
    assert.deepEqual([decode.code, decode.stderr], [0, ""]);
    assert.deepEqual(streams.map((s) => s.codecName).sort(), ["h264", "opus"]);
    assert.equal(streams.find((s) => s.codecType === "video")!.packets.length, video);
    procs.killAll();
    await publisher;
  } finally {
    procs.killAll();
    await server.stop();
  }
});

test.ffmpeg("whep pull: refusals reject with the server's status", async () => {
  const server = await startServer(["http"], { access });
  const base = `http://127.0.0.1:${server.ports.http}`;
  const none = { onFrame: () => assert.fail("no frame expected"), timeoutMs: 5000 };
  try {
    const missing = await pullWhep(new URL(`${base}/live/missing/whep`), {
      ...none,
      token: "sesame",
    })
      .catch((e) => e);
    assert.ok(missing instanceof WebRtcError, String(missing));
    assert.equal(missing.status, 404);
    assert.match(missing.message, /offer refused: 404/);
    const anonymous = await pullWhep(new URL(`${base}/live/cam/whep`), none).catch((e) => e);
    assert.equal(anonymous.status, 401, String(anonymous));
    const wrong = await pullWhep(new URL(`${base}/live/cam/whep`), { ...none, token: "nope" })
      .catch((e) => e);
    assert.equal(wrong.status, 403, String(wrong));
    await assert.rejects(pullWhep(new URL(`rtmp://127.0.0.1/live/x`), none), RangeError);
    await assert.rejects(pullWhep(new URL(`http://127.0.0.1:1/live/x/whep`), none), WebRtcError);
  } finally {
    await server.stop();
  }
});

test.ffmpeg("whep pull: the stream's end resolves it; a live session without media rejects", async () => {
  const server = await startServer(["rtmp", "http"]);
  const procs = new Procs();
  const base = `http://127.0.0.1:${server.ports.http}`;
  try {
    const publisher = publish(procs, `rtmp://127.0.0.1:${server.ports.rtmp}/live/short`, 3);
    await waitFor(
      "the publish",
      () => server.server.registry.get("live", "short")?.cachedConfigs().video,
    );
    const log = new LogLines();
    let frames = 0;
    await within(
      pullWhep(new URL(`${base}/live/short/whep`), {
        onFrame: () => void frames++,
        logger: log,
        timeoutMs: 2000,
      }),
      30_000,
      "the pull ends with the stream",
    );
    assert.ok(frames > 0);
    assert.ok(
      log.lines.some((l) => /ended: the server had ended the session/.test(l)),
      log.lines.join("\n"),
    );
    await publisher;

    // published, but nothing sent: the session lives on, silent
    const handle = server.server.registry.startPublish("live", "quiet", { protocol: "test" });
    await assert.rejects(
      within(
        pullWhep(new URL(`${base}/live/quiet/whep`), { onFrame: () => {}, timeoutMs: 1500 }),
        20_000,
        "pull",
      ),
      /no media for 1500 ms/,
    );
    await server.log.waitFor(
      /whep live\/quiet session \S+ from .* ended: ended by the client/,
      5000,
    );
    server.server.registry.endPublish(handle, "ended");
  } finally {
    procs.killAll();
    await server.stop();
  }
});

/** A loopback HTTP server answering every request with `answer(request)`. */
function endpoint(answer: (request: Request) => Promise<Response> | Response) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, answer);
  return {
    url: new URL(`http://127.0.0.1:${server.addr.port}/live/x/whep`),
    close: () => server.shutdown(),
  };
}

/**
 * An endpoint that answers each offer with a real answer (passed through `edit`) from a peer
 * it closes at once, so that no ICE check is ever answered; its session URL is `/s/1`.
 */
function closedPeer(edit: (answer: string) => string) {
  return endpoint(async (request) => {
    if (request.method !== "POST") return new Response(null, { status: 404 });
    const { pc, answer } = await answerOffer(await request.text(), { hosts: ["127.0.0.1"] }, {
      direction: "sendonly",
      video: true,
      audio: true,
    }, 5000);
    await pc.close();
    return new Response(edit(answer), {
      status: 201,
      headers: { "content-type": "application/sdp", location: "/s/1" },
    });
  });
}

Deno.test("whep pull: an endpoint that never answers, and one whose peer never connects, make it reject", async () => {
  const stop = new AbortController();
  const hanging = endpoint(() =>
    new Promise<Response>((resolve) =>
      stop.signal.addEventListener("abort", () => resolve(new Response(null, { status: 503 })))
    )
  );
  const gone = closedPeer((answer) => answer);
  try {
    await assert.rejects(
      within(pullWhep(hanging.url, { onFrame: () => {}, timeoutMs: 1000 }), 10_000, "pull"),
      /no WHEP answer within 1000 ms/,
    );
    await assert.rejects(
      within(pullWhep(gone.url, { onFrame: () => {}, timeoutMs: 1500 }), 20_000, "pull"),
      /no ICE\/DTLS connection within 1500 ms|ICE\/DTLS failed/,
    );
    // aborted while the offer is out: resolves
    const abort = new AbortController();
    const waiting = pullWhep(hanging.url, { onFrame: () => {}, signal: abort.signal });
    setTimeout(() => abort.abort(), 300);
    await within(waiting, 10_000, "the pull ends on abort");
  } finally {
    stop.abort();
    await hanging.close();
    await gone.close();
  }
});

Deno.test("whep pull fuzz: mutated answers end it with an Error, never a hang or a crash", async () => {
  let mutate: (answer: string) => string = (answer) => answer;
  const fake = closedPeer((answer) => mutate(answer));
  const rand = prng(23);
  const text = new TextEncoder();
  const decoder = new TextDecoder();
  let rejected = 0;
  try {
    for (let i = 0; i < 24; i++) {
      mutate = (answer) => {
        const bytes = text.encode(answer);
        if (i % 3 === 2) return answer.slice(0, Math.floor(rand() * answer.length));
        return decoder.decode(flipBit(bytes, Math.floor(rand() * bytes.length * 8)));
      };
      const outcome = await within(
        pullWhep(fake.url, { onFrame: () => {}, timeoutMs: 500 }).then(() => undefined, (e) => e),
        15_000,
        `mutated answer ${i}`,
      );
      // resolving is fair too: werift took some truncated answers as connected, then the
      // silence and the 404 for the session URL said the server had ended the session
      if (outcome === undefined) continue;
      assert.ok(outcome instanceof Error, `mutated answer ${i}: ${outcome}`);
      assert.ok(!(outcome instanceof TypeError), outcome.stack);
      rejected++;
    }
    assert.ok(rejected > 0, "some mutated answers are refused");
  } finally {
    await fake.close();
  }
});
