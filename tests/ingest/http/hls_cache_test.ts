/**
 * LiveHls answers for HTTP caches: Cache-Control per kind of file (playlists short-lived,
 * blocking reloads that got their update for six target durations, segments, parts and
 * init segments immutable, refusals not stored, 404s short-lived), strong ETags and
 * Last-Modified with 304s, CORS headers and preflights, file names unique per output,
 * and the origin requests counted by kind in /metrics.
 */

import assert from "node:assert/strict";
import { type HlsRequestKind, Metrics } from "../../../ingest/http/mod.ts";
import { parsePlaylist } from "../../media/hls/_hls.ts";
import { waitFor } from "../../_util/serve.ts";
import { testsWith } from "../../_util/tools.ts";
import { setup, type Stream } from "./_live_hls.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** A strong entity tag as LiveHls makes them. */
const STRONG_ETAG = /^"[0-9a-z]+\.\d+"$/;
const IMMUTABLE = "public, max-age=86400, immutable";

/** MPEG-TS segments of 2 s (playlists fresh for 1 s), the requests counted by kind. */
async function tsStream(options: Parameters<typeof setup>[0] = {}) {
  const counted: HlsRequestKind[] = [];
  const s = await setup({
    segmentType: "ts",
    targetDuration: 2,
    partDuration: undefined,
    onRequest: (kind) => counted.push(kind),
    ...options,
  });
  return { s, counted };
}

/** Runs `body` on `s`, then ends the stream. */
async function using(s: Stream, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    await s.close();
  }
}

/** The names of the segments a playlist lists, once it lists at least `count`. */
async function segmentsOf(s: Stream, count: number): Promise<string[]> {
  return await waitFor(`${count} segments`, async () => {
    const playlist = await s.playlist();
    return playlist.segments.length >= count ? playlist.segments.map((x) => x.uri) : undefined;
  });
}

test.ffmpeg("hls cache: playlists short-lived, segments immutable, validators and CORS on each", async () => {
  const { s, counted } = await tsStream();
  await using(s, async () => {
    s.publishUntil(5);
    const [segment] = await segmentsOf(s, 2);
    for (const name of ["index.m3u8", "stream.m3u8", segment]) {
      const response = await s.get(name);
      await response.body?.cancel();
      assert.equal(response.status, 200, name);
      const h = response.headers;
      assert.equal(
        h.get("cache-control"),
        name.endsWith(".m3u8") ? "public, max-age=1" : IMMUTABLE,
      );
      assert.match(h.get("etag") ?? "", STRONG_ETAG, `${name}: a strong ETag`);
      const modified = Date.parse(h.get("last-modified") ?? "");
      assert.ok(modified <= Date.now() && modified > Date.now() - 60_000, `${name}: Last-Modified`);
      assert.equal(h.get("access-control-allow-origin"), "*");
      assert.match(h.get("access-control-expose-headers") ?? "", /\bAge\b.*\bETag\b/);
    }
    const head = await s.get(segment, { method: "HEAD" });
    assert.equal(head.body, null);
    assert.ok(Number(head.headers.get("content-length")) > 0);
    assert.equal(head.headers.get("cache-control"), IMMUTABLE);
    const kinds = new Set(counted);
    assert.ok(kinds.has("playlist") && kinds.has("segment"), [...kinds].join());
    assert.equal(kinds.has("part") || kinds.has("init"), false);
  });
});

test.ffmpeg("hls cache: If-None-Match and If-Modified-Since get 304 while the file is unchanged", async () => {
  const { s } = await tsStream();
  await using(s, async () => {
    s.publishUntil(2.5);
    const [segment] = await segmentsOf(s, 1);
    const first = await s.get(segment);
    const bytes = (await first.arrayBuffer()).byteLength;
    const etag = first.headers.get("etag")!;
    const lastModified = first.headers.get("last-modified")!;
    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const response = await s.get(segment, { headers: { "if-none-match": ifNoneMatch } });
      assert.equal(response.status, 304, ifNoneMatch);
      assert.equal(response.body, null);
      assert.equal(response.headers.get("etag"), etag);
      assert.equal(response.headers.get("cache-control"), IMMUTABLE);
      assert.equal(response.headers.get("access-control-allow-origin"), "*");
    }
    const other = await s.get(segment, { headers: { "if-none-match": '"other"' } });
    assert.equal(other.status, 200);
    assert.equal((await other.arrayBuffer()).byteLength, bytes);
    const since = await s.get(segment, { headers: { "if-modified-since": lastModified } });
    assert.equal(since.status, 304, "a segment is unmodified since its Last-Modified");
    // If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    const both = await s.get(segment, {
      headers: { "if-none-match": '"other"', "if-modified-since": lastModified },
    });
    assert.equal(both.status, 200);
    await both.body?.cancel();

    const playlist = await s.get("stream.m3u8");
    await playlist.body?.cancel();
    const tag = playlist.headers.get("etag")!;
    const same = await s.get("stream.m3u8", { headers: { "if-none-match": tag } });
    assert.equal(same.status, 304);
    assert.equal(same.headers.get("cache-control"), "public, max-age=1");
    // A playlist may be rewritten within the second its Last-Modified names: not a 304.
    const dated = playlist.headers.get("last-modified")!;
    const sameSecond = await s.get("stream.m3u8", { headers: { "if-modified-since": dated } });
    assert.equal(sameSecond.status, 200);
    await sameSecond.body?.cancel();
    const later = new Date(Date.now() + 5_000).toUTCString();
    const unchanged = await s.get("stream.m3u8", { headers: { "if-modified-since": later } });
    assert.equal(unchanged.status, 304);
    // Once it lists another segment, the old tag no longer matches.
    s.publishUntil(4.5);
    await segmentsOf(s, 2);
    const changed = await s.get("stream.m3u8", { headers: { "if-none-match": tag } });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get("etag"), tag);
    assert.match(await changed.text(), /#EXTM3U/);
  });
});

test.ffmpeg("hls cache: 404s are short-lived, refusals not stored", async () => {
  const { s } = await tsStream();
  await using(s, async () => {
    s.publishUntil(5);
    const [segment] = await segmentsOf(s, 2);
    const missing = await s.get(segment.replace(/\d+\.ts$/, "999.ts"));
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("cache-control"), "public, max-age=1");
    assert.equal(missing.headers.get("access-control-allow-origin"), "*");
    await missing.body?.cancel();
    const post = await s.get("stream.m3u8", { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("cache-control"), "no-store");
    await post.body?.cancel();
  });
});

test.ffmpeg("hls cache: OPTIONS preflights, with the default or a configured origin", async () => {
  for (const allowOrigin of [undefined, "https://player.example"]) {
    const { s } = await tsStream({ allowOrigin });
    await using(s, async () => {
      const preflight = await s.get("stream.m3u8", {
        method: "OPTIONS",
        headers: { origin: "https://player.example", "access-control-request-method": "GET" },
      });
      assert.equal(preflight.status, 204);
      const h = preflight.headers;
      assert.equal(h.get("access-control-allow-origin"), allowOrigin ?? "*");
      assert.match(h.get("access-control-allow-methods") ?? "", /\bGET\b/);
      assert.match(h.get("access-control-allow-headers") ?? "", /\bRange\b/);
      assert.ok(Number(h.get("access-control-max-age")) > 0);
      assert.equal(h.get("vary"), null, "the same for every origin: one cache entry");
      s.publishUntil(3);
      const [segment] = await segmentsOf(s, 1);
      const response = await s.get(segment);
      await response.body?.cancel();
      assert.equal(response.headers.get("access-control-allow-origin"), allowOrigin ?? "*");
    });
  }
});

test.ffmpeg("hls cache: LL-HLS blocking reloads that got their update are kept six target durations", async () => {
  const counted: HlsRequestKind[] = [];
  const s = await setup({ onRequest: (kind) => counted.push(kind) }); // 1 s segments
  await using(s, async () => {
    s.publishUntil(2.6);
    const playlist = await s.playlist();
    const plain = await s.get("stream.m3u8");
    await plain.body?.cancel();
    assert.equal(plain.headers.get("cache-control"), "no-cache", "half of 1 s is under a second");
    const msn = Number(playlist.tags.get("EXT-X-MEDIA-SEQUENCE")) + playlist.segments.length;
    const update = s.get(`stream.m3u8?_HLS_msn=${msn}&_HLS_part=0`);
    s.publishUntil(4);
    const reload = await update;
    assert.equal(reload.status, 200);
    assert.equal(reload.headers.get("cache-control"), "public, max-age=6");
    assert.match(reload.headers.get("etag") ?? "", STRONG_ETAG);
    await reload.body?.cancel();
    const bad = await s.get("stream.m3u8?_HLS_msn=x");
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get("cache-control"), "no-store");
    await bad.body?.cancel();
    const latest = await s.playlist();
    const part = latest.segments.at(-1)!.parts?.[0]?.uri ?? latest.pendingParts[0].uri;
    const init = latest.segments.at(-1)!.map!;
    for (const name of [part, init]) {
      const response = await s.get(name);
      await response.body?.cancel();
      assert.equal(response.status, 200, name);
      assert.equal(response.headers.get("cache-control"), IMMUTABLE, name);
    }
    assert.ok(counted.includes("part") && counted.includes("init"), counted.join());
    // A reload answered because the stream ended is not its update: short-lived.
    const last = await s.playlist();
    const next = Number(last.tags.get("EXT-X-MEDIA-SEQUENCE")) + last.segments.length + 1;
    const ending = s.get(`stream.m3u8?_HLS_msn=${next}`);
    s.handle.close();
    const ended = await ending;
    assert.equal(parsePlaylist(await ended.text()).ended, true);
    assert.equal(ended.headers.get("cache-control"), "no-cache");
  });
});

test.ffmpeg("hls cache: a publish after the retention names its files apart from the last one", async () => {
  const { s } = await tsStream({ retainMs: 0 });
  await using(s, async () => {
    s.publishUntil(5);
    const before = await segmentsOf(s, 2);
    const tag = (await s.get("stream.m3u8")).headers.get("etag");
    s.registry.endPublish(s.handle);
    await waitFor("the output to expire", async () => {
      const response = await s.get(before[0]);
      await response.body?.cancel();
      return response.status === 404 || undefined;
    });
    await s.publish();
    s.publishUntil(5);
    const after = await segmentsOf(s, 2);
    assert.deepEqual(after.filter((name) => before.includes(name)), [], "no name reused");
    assert.notEqual((await s.get("stream.m3u8")).headers.get("etag"), tag);
  });
});

test.ffmpeg("hls cache: /metrics counts the origin requests by kind", async () => {
  const metrics = new Metrics();
  const { s } = await tsStream({ onRequest: (kind) => metrics.onHlsRequest(kind) });
  await using(s, async () => {
    const empty = metrics.render(s.registry);
    assert.match(empty, /^arcly_hls_requests_total\{kind="part"\} 0$/m);
    s.publishUntil(5);
    const [segment] = await segmentsOf(s, 2);
    const playlists = Number(
      /^arcly_hls_requests_total\{kind="playlist"\} (\d+)$/m.exec(metrics.render(s.registry))![1],
    );
    for (let i = 0; i < 3; i++) await (await s.get(segment)).body?.cancel();
    const text = metrics.render(s.registry);
    assert.match(text, /^# TYPE arcly_hls_requests_total counter$/m);
    assert.match(text, /^arcly_hls_requests_total\{kind="segment"\} 3$/m);
    assert.ok(playlists > 0);
    assert.match(
      text,
      new RegExp(`^arcly_hls_requests_total\\{kind="playlist"\\} ${playlists}$`, "m"),
    );
  });
});

test.ffmpeg("hls cache: a publish within the retention goes on with the output's names, init segments kept", async () => {
  const s = await setup({ partDuration: undefined, targetDuration: 1 }); // fMP4
  await using(s, async () => {
    s.publishUntil(2.5);
    const first = await waitFor("two segments", async () => {
      const playlist = await s.playlist();
      return playlist.segments.length >= 2 ? playlist : undefined;
    });
    const oldInit = first.segments[0].map!;
    const oldTag = (await s.get(oldInit)).headers.get("etag");
    s.registry.endPublish(s.handle);
    await waitFor("the ended playlist", async () => (await s.playlist()).ended || undefined);
    await s.publish();
    s.publishUntil(2.5);
    const next = await waitFor("a segment of the new publish", async () => {
      const playlist = await s.playlist();
      return playlist.segments.some((x) => x.discontinuity) ? playlist : undefined;
    });
    const newInit = next.segments.find((x) => x.discontinuity)!.map!;
    assert.notEqual(newInit, oldInit, "a new init segment, not over the one listed before");
    const prefix = (name: string) => name.replace(/\d+\.mp4$/, "");
    assert.equal(prefix(newInit), prefix(oldInit), "the output's own names");
    const kept = await s.get(oldInit);
    await kept.body?.cancel();
    assert.equal(kept.status, 200);
    assert.equal(kept.headers.get("etag"), oldTag, "the old init segment unchanged");
  });
});
