/**
 * HLS through an HTTP cache: nginx (`proxy_cache`, `proxy_cache_lock on`) in front of one
 * `serve()`; ffmpeg publishes over RTMP, 200 players polling like hls.js (playlist, then the
 * segments it newly lists) and one ffmpeg decoding with `-xerror` play through nginx. The
 * origin sees about one request per segment (arcly_hls_requests_total in its /metrics,
 * against the segments nginx served), and every player got every segment after its join.
 */

import assert from "node:assert/strict";
import { parsePlaylist } from "../media/hls/_hls.ts";
import { Procs, publishLive } from "../_util/ffmpeg.ts";
import { freePort, startNginx } from "../_util/nginx.ts";
import { startServer, waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ nginx: ["ffmpeg", "ffprobe", "nginx"] });

/** Players fetching through the cache, and how long they play. */
const PLAYERS = 200;
const PLAY_MS = 15_000;
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

/** The value of `arcly_hls_requests_total{kind="<kind>"}` in a /metrics text. */
function hlsRequests(metrics: string, kind: string): number {
  const line = new RegExp(`^arcly_hls_requests_total\\{kind="${kind}"\\} (\\d+)$`, "m");
  return Number(line.exec(metrics)?.[1] ?? NaN);
}

test.nginx("hls cache: 200 players through nginx proxy_cache make about one origin request per segment", async () => {
  const procs = new Procs();
  const origin = await startServer(["rtmp", "http"]);
  const port = freePort();
  const nginx = await startNginx(
    procs,
    `events { worker_connections 2048; }
http {
  log_format hls '$status $upstream_cache_status $uri';
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
    }
  }
}
`,
  );
  try {
    const publisher = publishLive(
      procs,
      `rtmp://127.0.0.1:${origin.ports.rtmp}/live/cam`,
      PLAY_MS / 1000 + 12,
    );
    const base = `http://127.0.0.1:${port}/live/cam`;
    await waitFor("two segments through nginx", async () => {
      const response = await fetch(`${base}/stream.m3u8`).catch(() => undefined);
      const text = response?.ok ? await response.text() : (await response?.body?.cancel(), "");
      return text.includes("#EXTINF") && text.split("#EXTINF").length > 2 || undefined;
    });
    const until = performance.now() + PLAY_MS;
    // Players join over a target duration, as viewers do; one real client with them.
    const players = Array.from({ length: PLAYERS }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, (i * TARGET * 1000) / PLAYERS));
      return play(`${base}/stream.m3u8`, until);
    });
    const decoder = procs.run("ffmpeg", [
      ...["-v", "warning", "-xerror", "-t", "8", "-i", `${base}/index.m3u8`],
      ...["-f", "null", "-"],
    ], 40_000);
    const played = await Promise.all(players);
    const decoded = await decoder;
    assert.deepEqual(
      [decoded.code, decoded.stderr, decoded.timedOut],
      [0, "", false],
      "ffmpeg decodes the stream through nginx",
    );

    for (const [i, p] of played.entries()) {
      assert.ok(p.sequences.length >= 4, `player ${i} got ${p.sequences.length} segments`);
      p.sequences.forEach((sequence, k) => {
        if (k > 0) assert.equal(sequence, p.sequences[k - 1] + 1, `player ${i}: no gap`);
      });
      assert.equal(p.sequences.at(-1), p.lastListed, `player ${i} got all it saw listed`);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${origin.ports.http}/metrics`)).text();
    const originSegments = hlsRequests(metrics, "segment");
    const originPlaylists = hlsRequests(metrics, "playlist");
    // Every segment any client got through nginx (the players and ffmpeg).
    const log = await Deno.readTextFile(`${nginx.dir}/access.log`);
    const served = log.split("\n").map((line) => line.split(" ")).filter(([status, , uri]) =>
      status === "200" && uri?.endsWith(".ts")
    );
    const segments = new Set(served.map(([, , uri]) => uri)).size;
    const misses = served.filter(([, cache]) => cache === "MISS").length;
    const playlistRequests = log.split("\n").filter((line) => line.endsWith(".m3u8")).length;
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
    await publisher;
  } finally {
    procs.killAll();
    await nginx.stop();
    await origin.stop();
  }
});
