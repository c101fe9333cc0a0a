import assert from "node:assert/strict";
import { type HlsPullOptions, pullHls } from "../../../ingest/http/mod.ts";
import type { PullClient } from "../../../ingest/pull.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { ffmpeg, fixtureDir, Procs, publishLive, sine, testsrc, x264 } from "../../_util/ffmpeg.ts";
import { assertConfigFirst } from "../../_util/frames.ts";
import { LogLines } from "../../_util/log.ts";
import { startServer, waitFor } from "../../_util/serve.ts";
import { PullSource } from "../../../server/source.ts";
import { testsWith } from "../../_util/tools.ts";
import { within } from "../../_util/within.ts";
import { assertTsDecodes } from "../../media/ts/_helpers.ts";
import { serveOrigin } from "./_hls_origin.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** `pullHls` is a `PullClient`: the server's sources call it by URL scheme. */
const client: PullClient = pullHls;

/** Pulls `url` into an array of frames; resolves with them when the pull resolves. */
async function pullFrames(url: URL, options: Partial<HlsPullOptions> = {}): Promise<MediaFrame[]> {
  const frames: MediaFrame[] = [];
  await client(url, { timeoutMs: 5000, ...options, onFrame: (f) => frames.push(f) });
  return frames;
}

/**
 * The pulled frames keep the bus's contract, their decode times never go back within a
 * track, and re-muxed to TS they pass `ffmpeg -v warning -xerror`. Returns the media count.
 */
async function assertPlayable(frames: MediaFrame[], name: string): Promise<number> {
  const media = assertConfigFirst(frames, name);
  for (const track of [0, 1]) {
    const dts = frames.filter((f) => f.track === track && !(f.flags & FrameFlags.CONFIG))
      .map((f) => f.dts);
    assert.ok(dts.length > 0, `${name}: no frames on track ${track}`);
    for (let i = 1; i < dts.length; i++) {
      assert.ok(dts[i] >= dts[i - 1], `${name}: track ${track} dts ${dts[i]} after ${dts[i - 1]}`);
    }
  }
  await assertTsDecodes(frames, name);
  return media;
}

/** Segment files requested, in order, and whether any was asked for twice. */
function segmentRequests(requests: readonly string[]): string[] {
  const segments = requests.filter((p) => /\.(ts|m4s)$/.test(p));
  assert.equal(new Set(segments).size, segments.length, `a segment fetched twice: ${segments}`);
  return segments;
}

for (const type of ["mpegts", "fmp4"] as const) {
  test.ffmpeg(`pullHls follows ffmpeg's live HLS (${type}) from near the live edge to its ENDLIST`, async () => {
    const dir = await Deno.makeTempDir({ dir: await fixtureDir() });
    const procs = new Procs();
    const origin = serveOrigin(dir);
    try {
      const live = procs.run("ffmpeg", [
        ...["-v", "warning", "-re", ...testsrc({ duration: 8 }), ...sine({ duration: 8 })],
        ...x264({ gop: 25 }),
        ...["-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_list_size", "5"],
        ...["-hls_flags", "delete_segments", "-hls_segment_type", type, `${dir}/index.m3u8`],
      ], 40_000);
      const listed = await waitFor("four segments listed", async () => {
        const text = await Deno.readTextFile(`${dir}/index.m3u8`).catch(() => "");
        const names = text.split("\n").filter((l) => /\.(ts|m4s)$/.test(l));
        return names.length >= 4 ? names : undefined;
      });
      const frames = await within(pullFrames(origin.url("/index.m3u8")), 30_000, "the pull's end");
      const ended = await live;
      assert.equal(ended.code, 0, ended.stderr);
      const media = await assertPlayable(frames, `pull-ffmpeg-${type}`);
      const segments = segmentRequests(origin.requests);
      // Started within the last three listed segments, not at the oldest.
      const first = segments[0].slice(1);
      assert.ok(listed.indexOf(first) >= listed.length - 3, `started at ${first} of ${listed}`);
      assert.ok(media < 8 * (25 + 47), `${media} frames: more than the stream had`);
      assert.ok(frames.every((f) => !(f.flags & FrameFlags.DISCONTINUITY)), "a discontinuity");
      if (type === "fmp4") {
        assert.equal(origin.requests.filter((p) => p.endsWith(".mp4")).length, 1);
      }
    } finally {
      procs.killAll();
      await origin.close();
    }
  });
}

const serveHls = [
  { segmentType: "ts", targetDuration: 1 },
  { segmentType: "fmp4", targetDuration: 1 },
  { segmentType: "fmp4", targetDuration: 1, partDuration: 0.25 }, // LL-HLS: parts are skipped
] as const;
for (const hls of serveHls) {
  const form = hls.segmentType + ("partDuration" in hls ? "-ll" : "");
  test.ffmpeg(`pullHls plays our own serve's live HLS (${form}) while ffmpeg publishes RTMP`, async () => {
    const server = await startServer(["rtmp", "http"], { hls });
    const procs = new Procs();
    try {
      const publishing = publishLive(procs, `rtmp://127.0.0.1:${server.ports.rtmp}/live/cam`, 6);
      const url = new URL(`http://127.0.0.1:${server.ports.http}/live/cam/index.m3u8`);
      await waitFor("the HLS playlist", async () => {
        const response = await fetch(url);
        await response.body?.cancel();
        return response.ok || undefined;
      });
      const logger = new LogLines();
      const frames = await within(pullFrames(url, { logger }), 30_000, "the pull's end");
      assert.equal((await publishing).code, 0);
      await assertPlayable(frames, `pull-serve-${form}`);
      assert.ok(logger.lines.some((l) => l.includes("variant")), "multivariant playlist followed");
    } finally {
      procs.killAll();
      await server.stop();
    }
  });
}

/** 7 s of VOD HLS (TS, 1 s segments) made once; returns its directory and segment names. */
let vod: Promise<{ dir: string; segments: string[] }> | undefined;
function vodSegments(): Promise<{ dir: string; segments: string[] }> {
  return vod ??= (async () => {
    const dir = await Deno.makeTempDir({ dir: await fixtureDir() });
    const made = await ffmpeg([
      ...["-v", "error", ...testsrc({ duration: 7 }), ...sine({ duration: 7 })],
      ...x264({ gop: 25 }),
      ...["-c:a", "aac", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"],
      ...["-hls_segment_filename", `${dir}/s%d.ts`, `${dir}/vod.m3u8`],
    ]);
    assert.equal(made.code, 0, made.stderr);
    const text = await Deno.readTextFile(`${dir}/vod.m3u8`);
    return { dir, segments: text.split("\n").filter((l) => l.endsWith(".ts")) };
  })();
}

/** A media playlist listing `segments` from sequence `first`. */
function playlist(segments: readonly string[], first: number, ended: boolean): Response {
  const lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:1", `#EXT-X-MEDIA-SEQUENCE:${first}`];
  for (const s of segments) lines.push("#EXTINF:1.0,", s);
  if (ended) lines.push("#EXT-X-ENDLIST");
  return new Response(lines.join("\n") + "\n");
}

test.ffmpeg("pullHls: segments that left the playlist unread make a DISCONTINUITY", async () => {
  const { dir, segments } = await vodSegments();
  let reloads = 0;
  const origin = serveOrigin(dir, (path) => {
    if (path !== "/live.m3u8") return undefined;
    // First 0..2 (live), then 5..6 and the end: 3 and 4 were never listed in time.
    return reloads++ === 0
      ? playlist(segments.slice(0, 3), 0, false)
      : playlist(segments.slice(5, 7), 5, true);
  });
  try {
    const logger = new LogLines();
    const frames = await within(pullFrames(origin.url("/live.m3u8"), { logger }), 20_000, "end");
    assert.deepEqual(segmentRequests(origin.requests), [
      "/s0.ts",
      "/s1.ts",
      "/s2.ts",
      "/s5.ts",
      "/s6.ts",
    ]);
    const flagged = frames.filter((f) => f.flags & FrameFlags.DISCONTINUITY);
    assert.deepEqual(flagged.map((f) => f.track).sort(), [0, 1], "one DISCONTINUITY per track");
    assert.ok(
      logger.lines.some((l) => l.includes("segments 3..4 left the playlist")),
      logger.lines.join("\n"),
    );
    assertConfigFirst(frames);
    // The configs repeat in every TS segment, and are passed on once.
    assert.equal(frames.filter((f) => f.flags & FrameFlags.CONFIG).length, 2);
  } finally {
    await origin.close();
  }
});

test.ffmpeg("pullHls: a finished playlist is read from its start, each segment once, then resolves", async () => {
  const { dir, segments } = await vodSegments();
  const origin = serveOrigin(dir);
  try {
    const frames = await within(pullFrames(origin.url("/vod.m3u8")), 30_000, "end");
    assert.deepEqual(segmentRequests(origin.requests), segments.map((s) => `/${s}`));
    const media = await assertPlayable(frames, "pull-vod");
    assert.ok(media >= 7 * 25, `${media} frames`);
  } finally {
    await origin.close();
  }
});

test.ffmpeg("pullHls unwraps 33-bit TS timestamps across segments", async () => {
  const dir = await Deno.makeTempDir({ dir: await fixtureDir() });
  const made = await ffmpeg([
    ...["-v", "error", ...testsrc({ duration: 4 }), ...sine({ duration: 4 })],
    ...x264({ gop: 25 }),
    // 2^33 ticks are 95443.72 s: the timestamps wrap about 2 s in.
    ...["-c:a", "aac", "-output_ts_offset", "95441.5", "-f", "hls", "-hls_time", "1"],
    ...["-hls_playlist_type", "vod", `${dir}/wrap.m3u8`],
  ]);
  assert.equal(made.code, 0, made.stderr);
  const origin = serveOrigin(dir);
  try {
    const frames = await within(pullFrames(origin.url("/wrap.m3u8")), 20_000, "end");
    await assertPlayable(frames, "pull-wrap");
    const video = frames.filter((f) => f.track === 0 && !(f.flags & FrameFlags.CONFIG));
    assert.ok(video[0].dts < 2 ** 33 && video.at(-1)!.dts > 2 ** 33, "the stream crosses 2^33");
    assert.ok(frames.every((f) => !(f.flags & FrameFlags.DISCONTINUITY)));
  } finally {
    await origin.close();
  }
});

Deno.test("pullHls rejects a playlist that answers 404 or 403, or is not a playlist", async () => {
  const origin = serveOrigin("/nonexistent", (path) => {
    if (path === "/forbidden.m3u8") return new Response("no", { status: 403 });
    if (path === "/page.m3u8") return new Response("<html>\n");
    return undefined;
  });
  try {
    await assert.rejects(pullFrames(origin.url("/missing.m3u8")), /playlist: HTTP 404/);
    await assert.rejects(pullFrames(origin.url("/forbidden.m3u8")), /playlist: HTTP 403/);
    await assert.rejects(pullFrames(origin.url("/page.m3u8")), /does not start with #EXTM3U/);
  } finally {
    await origin.close();
  }
});

Deno.test("pullHls rejects a source that never answers, within its timeout", async () => {
  const release = Promise.withResolvers<Response>();
  const origin = serveOrigin("/nonexistent", () => release.promise);
  try {
    await assert.rejects(
      within(pullFrames(origin.url("/hang.m3u8"), { timeoutMs: 300 }), 10_000, "the rejection"),
      /playlist: no answer within 300 ms/,
    );
  } finally {
    release.resolve(new Response("late", { status: 503 }));
    await origin.close();
  }
});

test.ffmpeg("pullHls rejects a live playlist that stops changing, and resolves on abort", async () => {
  const { dir, segments } = await vodSegments();
  const origin = serveOrigin(dir, (path) => {
    if (path === "/stuck.m3u8") return playlist(segments.slice(0, 2), 0, false);
    return undefined;
  });
  try {
    // Target duration 1 s: three of them (3 s) is longer than the 500 ms timeout.
    const started = Date.now();
    await assert.rejects(
      within(pullFrames(origin.url("/stuck.m3u8"), { timeoutMs: 500 }), 15_000, "rejection"),
      /unchanged for \d+ ms/,
    );
    assert.ok(Date.now() - started >= 3000, "rejected before three target durations");
    // Abort: the pull resolves with what it had.
    const abort = new AbortController();
    const frames: MediaFrame[] = [];
    const pulling = pullHls(origin.url("/stuck.m3u8"), {
      signal: abort.signal,
      onFrame: (f) => {
        frames.push(f);
        abort.abort();
      },
    });
    await within(pulling, 10_000, "the pull's end after abort");
    assert.ok(frames.length >= 1);
  } finally {
    await origin.close();
  }
});

test.ffmpeg("pullHls skips a segment over maxSegmentBytes or gone (404) as a discontinuity", async () => {
  const { dir, segments } = await vodSegments();
  const sizes = await Promise.all(
    segments.map((s) => Deno.stat(`${dir}/${s}`).then((i) => i.size)),
  );
  const limit = Math.max(...sizes);
  const origin = serveOrigin(dir, (path) => {
    if (path === "/s1.ts") return new Response("gone", { status: 404 });
    if (path === "/s3.ts") return new Response(new Uint8Array(limit + 1));
    if (path === "/list.m3u8") return playlist(segments.slice(0, 4), 0, true);
    return undefined;
  });
  try {
    const logger = new LogLines();
    // s3 comes one byte over the limit.
    const frames = await pullFrames(origin.url("/list.m3u8"), { logger, maxSegmentBytes: limit });
    assert.ok(
      logger.lines.some((l) => /segment 1 skipped: segment 1: HTTP 404/.test(l)),
      logger.lines.join("\n"),
    );
    assert.ok(logger.lines.some((l) => /segment 3 skipped: segment 3 larger than/.test(l)));
    const flagged = frames.filter((f) => f.flags & FrameFlags.DISCONTINUITY);
    assert.deepEqual(flagged.map((f) => f.track).sort(), [0, 1], "after s1: s2 starts anew");
  } finally {
    await origin.close();
  }
});

Deno.test("pullHls: a target duration of 0 does not make it reload in a loop", async () => {
  const origin = serveOrigin("/nonexistent", (path) => {
    if (path !== "/zero.m3u8") return undefined;
    return new Response("#EXTM3U\n#EXT-X-TARGETDURATION:0\n#EXT-X-MEDIA-SEQUENCE:0\n");
  });
  try {
    await assert.rejects(
      within(pullFrames(origin.url("/zero.m3u8"), { timeoutMs: 500 }), 10_000, "rejection"),
      /no media for \d+ ms|unchanged for \d+ ms/,
    );
    // 0.5 s taken as the least: reloads 0.5 s apart, then 0.25 s, for 1.5 s.
    assert.ok(origin.requests.length <= 10, `${origin.requests.length} playlist requests`);
  } finally {
    await origin.close();
  }
});

test.ffmpeg("a PullSource with pullHls relays serve A's HLS into serve B, and ffmpeg plays it from B over RTMP", async () => {
  const origin = await startServer(["rtmp", "http"], {
    hls: { segmentType: "ts", targetDuration: 1 },
  });
  const edge = await startServer(["rtmp"]);
  const procs = new Procs();
  const logger = new LogLines();
  const source = new PullSource({
    registry: edge.server.registry,
    app: "live",
    stream: "relay",
    url: `http://127.0.0.1:${origin.ports.http}/live/cam/index.m3u8`,
    clientFor: () => pullHls,
    logger,
  });
  try {
    const publishing = publishLive(procs, `rtmp://127.0.0.1:${origin.ports.rtmp}/live/cam`, 8);
    await waitFor("the relayed stream on B", () => edge.server.registry.get("live", "relay"));
    const played = await procs.run("ffmpeg", [
      ...["-v", "warning", "-xerror", "-i", `rtmp://127.0.0.1:${edge.ports.rtmp}/live/relay`],
      ...["-t", "3", "-f", "null", "-"],
    ], 30_000);
    assert.equal(played.stderr, "", logger.lines.join("\n"));
    assert.equal(played.code, 0);
    assert.equal(source.status().state, "live");
    await publishing;
  } finally {
    procs.killAll();
    await source.stop();
    await edge.stop();
    await origin.stop();
  }
});

Deno.test("pullHls: abort during a segment fetch resolves the pull and closes the connection", async () => {
  const closed = Promise.withResolvers<void>();
  const origin = serveOrigin("/nonexistent", (path, request) => {
    if (path === "/live.m3u8") {
      return new Response("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhang.ts\n");
    }
    if (path !== "/hang.ts") return undefined;
    // Never answers: waits for the client to go away.
    return new Promise<Response>((resolve) => {
      request.signal.addEventListener("abort", () => {
        closed.resolve();
        resolve(new Response("gone", { status: 503 }));
      });
    });
  });
  try {
    const abort = new AbortController();
    const pulling = pullHls(origin.url("/live.m3u8"), { signal: abort.signal, onFrame() {} });
    await waitFor("the segment request", () => origin.requests.includes("/hang.ts") || undefined);
    abort.abort();
    await within(pulling, 5000, "the pull's end after abort");
    await within(closed.promise, 5000, "the origin seeing the connection closed");
  } finally {
    await origin.close();
  }
});

test.ffmpeg("pullHls sends the URL's credentials as Basic authorization and never logs them", async () => {
  const { dir, segments } = await vodSegments();
  const expected = `Basic ${btoa("cam:p@ss word")}`;
  const origin = serveOrigin(dir, (path, request) => {
    if (request.headers.get("authorization") !== expected) {
      return new Response("who?", { status: 401 });
    }
    if (path === "/auth.m3u8") return playlist(segments.slice(0, 2), 0, true);
    return undefined;
  });
  try {
    const logger = new LogLines();
    const url = origin.url("/auth.m3u8?token=secret");
    url.username = "cam";
    url.password = "p%40ss%20word";
    const frames = await within(pullFrames(url, { logger }), 10_000, "end");
    assert.ok(assertConfigFirst(frames) > 0);
    assert.deepEqual(segmentRequests(origin.requests), ["/s0.ts", "/s1.ts"]);
    url.password = "wrong";
    const refused = await pullFrames(url, { logger }).then(() => undefined, (e: Error) => e);
    assert.match(String(refused?.message), /playlist: HTTP 401/);
    const said = [...logger.lines, refused!.message].join("\n");
    assert.ok(
      !said.includes("wrong") && !said.includes("p%40ss") && !said.includes("secret"),
      said,
    );
  } finally {
    await origin.close();
  }
});

test.ffmpeg("pullHls takes the highest readable variant, and its audio from a rendition of its own", async () => {
  const { dir, segments } = await vodSegments();
  const origin = serveOrigin(dir, (path) => {
    // Both playlists list the same muxed segments: video is taken from one, audio from the other.
    if (path === "/two.m3u8" || path === "/audio.m3u8") {
      return playlist(segments.slice(0, 2), 0, true);
    }
    if (path !== "/master.m3u8") return undefined;
    return new Response([
      "#EXTM3U",
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fr",URI="other.m3u8"',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio.m3u8"',
      '#EXT-X-STREAM-INF:BANDWIDTH=9000000,CODECS="ac-3,avc1.64001f"',
      "unreadable.m3u8",
      '#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aud"',
      "two.m3u8",
      '#EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS="avc1.42c01e,mp4a.40.2"',
      "low.m3u8",
    ].join("\n"));
  });
  try {
    const logger = new LogLines();
    const frames = await within(pullFrames(origin.url("/master.m3u8"), { logger }), 10_000, "end");
    const playlists = origin.requests.filter((p) => p.endsWith(".m3u8"));
    assert.deepEqual(playlists.sort(), ["/audio.m3u8", "/master.m3u8", "/two.m3u8"]);
    assert.ok(logger.lines.some((l) => /audio .*audio\.m3u8/.test(l)), logger.lines.join("\n"));
    await assertPlayable(frames, "pull-renditions");
    // Each track once: video only from the variant's segments, audio only from the rendition's.
    const direct = await pullFrames(origin.url("/two.m3u8"));
    for (const track of [0, 1]) {
      const count = (list: MediaFrame[]) => list.filter((f) => f.track === track).length;
      assert.equal(count(frames), count(direct), `track ${track} frames`);
    }
  } finally {
    await origin.close();
  }
});

test.ffmpeg("pullHls reads ffmpeg's HLS with audio in a rendition of its own (var_stream_map agroup)", async () => {
  const dir = await Deno.makeTempDir({ dir: await fixtureDir() });
  const made = await ffmpeg([
    ...["-v", "error", ...testsrc({ duration: 4 }), ...sine({ duration: 4 })],
    ...["-map", "0:v", "-map", "1:a", ...x264({ gop: 25 }), "-c:a", "aac"],
    ...["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"],
    ...["-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,agroup:aud a:0,agroup:aud"],
    `${dir}/stream_%v.m3u8`,
  ]);
  assert.equal(made.code, 0, made.stderr);
  const origin = serveOrigin(dir);
  try {
    const frames = await within(pullFrames(origin.url("/master.m3u8")), 20_000, "end");
    await assertPlayable(frames, "pull-ffmpeg-renditions");
    assert.ok(origin.requests.includes("/stream_1.m3u8"), "audio rendition followed");
  } finally {
    await origin.close();
  }
});

test.ffmpeg("pullHls: when the audio rendition fails, the pull rejects and stops following the video", async () => {
  const { dir, segments } = await vodSegments();
  const origin = serveOrigin(dir, (path) => {
    if (path === "/video.m3u8") return playlist(segments.slice(0, 2), 0, false); // live, stuck
    if (path !== "/master.m3u8") return undefined; // audio.m3u8: 404
    return new Response([
      "#EXTM3U",
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",URI="audio.m3u8"',
      '#EXT-X-STREAM-INF:BANDWIDTH=900000,AUDIO="aud"',
      "video.m3u8",
    ].join("\n"));
  });
  try {
    await assert.rejects(
      within(pullFrames(origin.url("/master.m3u8")), 10_000, "rejection"),
      /playlist: HTTP 404/,
    );
    const seen = origin.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 1500)); // reloads would come every 0.5-1 s
    assert.deepEqual(origin.requests.slice(seen), [], "the video playlist is still reloaded");
  } finally {
    await origin.close();
  }
});
