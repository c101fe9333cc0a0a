/**
 * HLS through an HTTP cache: nginx (`proxy_cache`, `proxy_cache_lock on`) in front of one
 * `serve()`; ffmpeg publishes over RTMP, 200 players polling like hls.js (playlist, then the
 * segments it newly lists) and one ffmpeg decoding with `-xerror` play through nginx. The
 * origin sees about one request per segment (arcly_hls_requests_total in its /metrics,
 * against the segments nginx served), and every player got every segment after its join.
 * With Low-Latency HLS the players make blocking reloads and fetch each new part: nginx
 * collapses the identical held requests, so the origin sees about one request per playlist
 * update and per part.
 */

import assert from "node:assert/strict";
import { parsePlaylist } from "../media/hls/_hls.ts";
import { decodeCheck, Procs, publishLive, tempPath } from "../_util/ffmpeg.ts";
import { startNginx } from "../_util/nginx.ts";
import { freeTcpPort as freePort } from "../_util/ports.ts";
import { startServer, waitFor } from "../_util/serve.ts";
import type { ServerConfig } from "../../server/mod.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ nginx: ["ffmpeg", "ffprobe", "nginx"] });

/** Players fetching through the cache, and how long they play. */
const PLAYERS = 200;
const PLAY_MS = 15_000;
const LOW_LATENCY_PLAY_MS = 10_000;
/** The server's default target duration, in seconds. */
const TARGET = 2;

/** What one player fetched. */
interface Played {
  /** Media sequence numbers of the segments it fetched, in order. */
  sequences: number[];
  /** The last sequence number the last playlist it loaded listed. */
  lastListed: number;
  /** Segment URIs it fetched. */
  uris: string[];
}

/**
 * A player like hls.js on a live playlist: loads it, fetches the last three segments on
 * the first load and every newly listed one after, reloads after a target duration when
 * the playlist changed and half of one when it did not; until `until` (performance.now()).
 */
async function play(playlistUrl: string, until: number): Promise<Played> {
  const played: Played = { sequences: [], lastListed: -1, uris: [] };
  let last = -1;
  while (performance.now() < until) {
    const response = await fetch(playlistUrl);
    assert.equal(response.status, 200, "the playlist through the cache");
    const playlist = parsePlaylist(await response.text());
    const first = Number(playlist.tags.get("EXT-X-MEDIA-SEQUENCE"));
    played.lastListed = first + playlist.segments.length - 1;
    const start = last < 0 ? Math.max(first, played.lastListed - 2) : last + 1;
    const changed = played.lastListed > last;
    for (let sequence = start; sequence <= played.lastListed; sequence++) {
      const uri = playlist.segments[sequence - first].uri;
      const segment = await fetch(new URL(uri, playlistUrl));
      assert.equal(segment.status, 200, `segment ${uri}`);
      const bytes = new Uint8Array(await segment.arrayBuffer());
      assert.ok(bytes.byteLength > 0 && bytes.byteLength % 188 === 0 && bytes[0] === 0x47, uri);
      played.sequences.push(sequence);
      played.uris.push(uri);
      last = sequence;
    }
    const waitMs = (changed ? TARGET : TARGET / 2) * 1000;
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
  return played;
}

/** The origin `serve()` with `config`, nginx caching it, and the test's child processes. */
async function cachedOrigin(config: ServerConfig) {
  const procs = new Procs();
  const origin = await startServer(["rtmp", "http"], config);
  const port = freePort();
  const nginx = await startNginx(
    procs,
    `events { worker_connections 2048; }
http {
  log_format hls '$status $upstream_cache_status $request_uri';
  access_log {dir}/access.log hls;
  proxy_cache_path {dir}/cache levels=1:2 keys_zone=hls:8m max_size=256m inactive=2m
    use_temp_path=off;
  upstream origin { server 127.0.0.1:${origin.ports.http}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache hls;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_cache_revalidate on;
      proxy_cache_use_stale updating;
    }
  }
}
`,
  ).catch(async (error) => {
    await origin.stop();
    throw error;
  });
  const publisher = publishLive(procs, `rtmp://127.0.0.1:${origin.ports.rtmp}/live/cam`, 30);
  const base = `http://127.0.0.1:${port}/live/cam`;
  /** The origin's count of HLS requests of `kind`. */
  const originRequests = async (kind: string) => {
    const metrics = await (await fetch(`http://127.0.0.1:${origin.ports.http}/metrics`)).text();
    const line = new RegExp(`^arcly_hls_requests_total\\{kind="${kind}"\\} (\\d+)$`, "m");
    return Number(line.exec(metrics)?.[1] ?? NaN);
  };
  /** nginx's access log: status, cache status and request URI of every request. */
  const accessLog = async () =>
    (await Deno.readTextFile(`${nginx.dir}/access.log`)).split("\n").filter((l) => l !== "")
      .map((line) => {
        const [status, cache, uri] = line.split(" ");
        return { status, cache, uri };
      });
  /**
   * ffmpeg playing `seconds` of the stream through nginx into a file, without a warning,
   * and decoding that with `-xerror`.
   */
  const decode = async (seconds: number) => {
    const recording = await tempPath(`hls-cache-${crypto.randomUUID()}.mkv`);
    const played = await procs.run("ffmpeg", [
      ...["-v", "warning", "-i", `${base}/index.m3u8`, "-t", String(seconds)],
      ...["-c", "copy", "-y", recording],
    ], 40_000);
    assert.deepEqual(
      [played.code, played.stderr, played.timedOut],
      [0, "", false],
      "ffmpeg plays the stream through nginx",
    );
    const check = await decodeCheck(recording);
    assert.deepEqual([check.code, check.stderr], [0, ""], "what ffmpeg got decodes with -xerror");
  };
  const stop = async () => {
    procs.killAll();
    await publisher;
    await nginx.stop();
    await origin.stop();
  };
  // Start once two segments are listed, as players would.
  await waitFor("two segments through nginx", async () => {
    const response = await fetch(`${base}/stream.m3u8`).catch(() => undefined);
    const text = response?.ok ? await response.text() : (await response?.body?.cancel(), "");
    return text.split("#EXTINF").length > 2 || undefined;
  }).catch(async (error) => {
    await stop();
    throw error;
  });
  return { base, originRequests, accessLog, decode, stop };
}

/** Players joining over a target duration, as viewers do, each running `player`. */
function crowd<T>(player: () => Promise<T>): Promise<T[]> {
  return Promise.all(Array.from({ length: PLAYERS }, async (_, i) => {
    await new Promise((resolve) => setTimeout(resolve, (i * TARGET * 1000) / PLAYERS));
    return player();
  }));
}

test.nginx("hls cache: 200 players through nginx proxy_cache make about one origin request per segment", async () => {
  const cache = await cachedOrigin({});
  try {
    const until = performance.now() + PLAY_MS;
    const [played] = await Promise.all([
      crowd(() => play(`${cache.base}/stream.m3u8`, until)),
      cache.decode(8),
    ]);
    for (const [i, p] of played.entries()) {
      assert.ok(p.sequences.length >= 4, `player ${i} got ${p.sequences.length} segments`);
      p.sequences.forEach((sequence, k) => {
        if (k > 0) assert.equal(sequence, p.sequences[k - 1] + 1, `player ${i}: no gap`);
      });
      assert.equal(p.sequences.at(-1), p.lastListed, `player ${i} got all it saw listed`);
    }
    const originSegments = await cache.originRequests("segment");
    const originPlaylists = await cache.originRequests("playlist");
    // Every segment any client got through nginx (the players and ffmpeg).
    const log = await cache.accessLog();
    const served = log.filter((r) => r.status === "200" && r.uri.endsWith(".ts"));
    const segments = new Set(served.map((r) => r.uri)).size;
    const misses = served.filter((r) => r.cache === "MISS").length;
    const playlistRequests = log.filter((r) => r.uri.endsWith(".m3u8")).length;
    console.log(
      `hls cache: ${PLAYERS} players for ${PLAY_MS / 1000} s through nginx: ` +
        `${served.length} segment responses of ${segments} segments, ${misses} misses; ` +
        `origin: ${originSegments} segment requests, ${originPlaylists} playlist requests ` +
        `(${playlistRequests} playlist requests at nginx)`,
    );
    assert.ok(
      originSegments >= segments && originSegments <= segments * 1.5,
      `origin segment requests ${originSegments} for ${segments} segments`,
    );
    assert.ok(originPlaylists < playlistRequests / 10, "playlists mostly from the cache");
  } finally {
    await cache.stop();
  }
});

/** What one Low-Latency player fetched: the part URIs, in order. */
interface PlayedParts {
  parts: string[];
  /** Blocking reloads it made. */
  reloads: number;
}

/**
 * A Low-Latency HLS player: loads the playlist, then makes blocking reloads for the part
 * after the last listed one and fetches every part newly listed, until `until`.
 */
async function playLowLatency(playlistUrl: string, until: number): Promise<PlayedParts> {
  const played: PlayedParts = { parts: [], reloads: 0 };
  const load = async (url: string | URL) => {
    const response = await fetch(url);
    assert.equal(response.status, 200, `${url} through the cache`);
    return parsePlaylist(await response.text());
  };
  let playlist = await load(playlistUrl);
  const partsOf = (
    p: typeof playlist,
  ) => [...p.segments.flatMap((s) => s.parts), ...p.pendingParts];
  let last = partsOf(playlist).at(-1)?.uri;
  while (performance.now() < until && !playlist.ended) {
    const msn = Number(playlist.tags.get("EXT-X-MEDIA-SEQUENCE")) + playlist.segments.length;
    const reload = new URL(playlistUrl);
    reload.search = `_HLS_msn=${msn}&_HLS_part=${playlist.pendingParts.length}`;
    playlist = await load(reload);
    played.reloads++;
    const parts = partsOf(playlist).map((p) => p.uri);
    const after = last === undefined ? 0 : parts.indexOf(last) + 1;
    assert.ok(after > 0 || last === undefined, `${last} still listed: no part missed`);
    for (const uri of parts.slice(after)) {
      const part = await fetch(new URL(uri, playlistUrl));
      assert.equal(part.status, 200, `part ${uri}`);
      assert.ok((await part.arrayBuffer()).byteLength > 0, uri);
      played.parts.push(uri);
    }
    last = parts.at(-1) ?? last;
  }
  return played;
}

test.nginx("hls cache: 200 LL-HLS players through nginx make about one origin request per part and per playlist update", async () => {
  const cache = await cachedOrigin({ hls: { segmentType: "fmp4", partDuration: 0.5 } });
  try {
    const until = performance.now() + LOW_LATENCY_PLAY_MS;
    const [played] = await Promise.all([
      crowd(() => playLowLatency(`${cache.base}/stream.m3u8`, until)),
      // Once three segments are listed: what ffmpeg reads of them needs no playlist reload,
      // after which its HLS demuxer reads the fMP4 init section again ("Found duplicated
      // MOOV Atom", from the origin directly too).
      new Promise((resolve) => setTimeout(resolve, 3 * TARGET * 1000)).then(() => cache.decode(4)),
    ]);
    for (const [i, p] of played.entries()) {
      assert.ok(p.parts.length >= 8, `player ${i} got ${p.parts.length} parts`);
    }
    const originParts = await cache.originRequests("part");
    const originPlaylists = await cache.originRequests("playlist");
    const log = await cache.accessLog();
    const served = log.filter((r) => r.status === "200" && /\.\d+\.m4s$/.test(r.uri));
    const parts = new Set(served.map((r) => r.uri)).size;
    const reloads = log.filter((r) => r.uri.includes("_HLS_msn="));
    const updates = new Set(reloads.map((r) => r.uri)).size;
    const playlistRequests = log.filter((r) => /\.m3u8(\?|$)/.test(r.uri)).length;
    console.log(
      `hls cache (LL-HLS): ${PLAYERS} players for ${LOW_LATENCY_PLAY_MS / 1000} s through nginx: ` +
        `${served.length} part responses of ${parts} parts, ${reloads.length} blocking reloads ` +
        `of ${updates} distinct updates; origin: ${originParts} part requests, ` +
        `${originPlaylists} playlist requests (${playlistRequests} at nginx)`,
    );
    assert.ok(
      originParts >= parts && originParts <= parts * 1.5,
      `origin part requests ${originParts} for ${parts} parts`,
    );
    assert.ok(
      originPlaylists <= updates * 1.5 + 20,
      `origin playlist requests ${originPlaylists} for ${updates} blocking reload URLs`,
    );
  } finally {
    await cache.stop();
  }
});
