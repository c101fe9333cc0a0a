/**
 * LiveHls with Low-Latency HLS: blocking playlist reloads (`_HLS_msn`, `_HLS_part`) and
 * preload-hint part requests are held until the packager has what they ask for; bad or
 * far-ahead directives get 400, a wait past three target durations 503.
 */

import assert from "node:assert/strict";
import { type MediaFrame, Registry } from "../../../mod.ts";
import { LiveHls } from "../../../ingest/http/mod.ts";
import { type ParsedPlaylist, parsePlaylist } from "../../media/hls/_hls.ts";
import { waitFor } from "../../_util/serve.ts";
import { within } from "../../_util/within.ts";
import { prng, randomBytes } from "../../_util/fuzz.ts";
import { testsWith } from "../../_util/tools.ts";
import { configs, frames, INFO, setup, type Stream } from "./_live_hls.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** Runs `test` on a fresh LL-HLS stream with its first 1.6 s published, then ends it. */
async function withStream(test: (s: Stream) => Promise<void>): Promise<void> {
  const s = await setup();
  try {
    s.publishUntil(1.6);
    await test(s);
  } finally {
    await s.close();
  }
}

/** The media sequence number of the segment the parts after the listed ones belong to. */
function partialSequence(playlist: ParsedPlaylist): number {
  return Number(playlist.tags.get("EXT-X-MEDIA-SEQUENCE")) + playlist.segments.length;
}

/** Whether `promise` (which never rejects) settles before `ms` pass. */
function settledWithin<T>(promise: Promise<T>, ms: number): Promise<boolean> {
  return within(promise, ms, "an answer").then(() => true, () => false);
}

test.ffmpeg("ll-hls: a blocking reload is held until the part it names is listed", () =>
  withStream(async (s) => {
    const before = await s.playlist();
    assert.match(before.tags.get("EXT-X-SERVER-CONTROL") ?? "", /CAN-BLOCK-RELOAD=YES/);
    const msn = partialSequence(before);
    const part = before.pendingParts.length + 2; // two parts past the last listed one
    const reload = s.get(`stream.m3u8?_HLS_msn=${msn}&_HLS_part=${part}`);
    assert.equal(await settledWithin(reload, 300), false, "held while the part is not written");
    s.publishUntil(3.5);
    const response = await reload;
    assert.equal(response.status, 200);
    const after = parsePlaylist(await response.text());
    const listed = partialSequence(after) > msn
      ? true // the segment is complete: every part of it is listed
      : after.pendingParts.length > part;
    assert.ok(listed, `part ${part} of segment ${msn} is listed`);
    // Directives already satisfied are answered at once.
    const old = await s.get(`stream.m3u8?_HLS_msn=${msn - 1}`);
    assert.equal(old.status, 200);
  }));

test.ffmpeg("ll-hls: a request for the hinted part is held until it is written", () =>
  withStream(async (s) => {
    const hint = (await s.playlist()).preloadHint;
    assert.ok(hint, "the playlist hints at the next part");
    const early = s.get(hint);
    assert.equal(await settledWithin(early, 300), false, "held while the part is not written");
    s.publishUntil(3);
    const response = await early;
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "video/iso.segment");
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(new TextDecoder().decode(bytes.subarray(4, 8)), "moof", "a part is a fragment");
    // A part neither written nor hinted is not waited for.
    const [, prefix, sequence] = /^(.*?)(\d+)\.\d+\.m4s$/.exec(hint)!;
    assert.equal((await s.get(`${prefix}${Number(sequence) + 5}.0.m4s`)).status, 404);
  }));

test.ffmpeg("ll-hls: bad directives get 400, a wait past three target durations 503", () =>
  withStream(async (s) => {
    const playlist = await s.playlist();
    const msn = partialSequence(playlist);
    const lastPart = playlist.pendingParts.length - 1;
    for (
      const query of [
        "_HLS_part=1", // a part without a segment
        "_HLS_msn=abc",
        "_HLS_msn=-1",
        `_HLS_msn=${msn}&_HLS_part=x`,
        `_HLS_msn=${msn + 2}`, // the last listed is msn - 1: more than two ahead
        `_HLS_msn=${msn}&_HLS_part=${lastPart + 13}`, // past the limit: 3 / 0.25 parts ahead
      ]
    ) {
      const response = await s.get(`stream.m3u8?${query}`);
      assert.equal(response.status, 400, query);
      await response.body?.cancel();
    }
    // Nothing more is published: the wait ends after 3 × 1 s.
    const late = await s.get(`stream.m3u8?_HLS_msn=${msn + 1}`);
    assert.equal(late.status, 503);
    await late.body?.cancel();
    // A client that goes away stops its wait.
    const gone = new AbortController();
    const waiting = s.get(`stream.m3u8?_HLS_msn=${msn}`, { signal: gone.signal });
    gone.abort();
    assert.equal((await waiting).status, 503);
  }));

test.ffmpeg("ll-hls: fuzz, delivery directives that cannot be waited for are answered at once", () =>
  withStream(async (s) => {
    const rand = prng(5);
    const last = partialSequence(await s.playlist()) - 1;
    const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)];
    const junk = (): string => {
      const value = String.fromCharCode(...randomBytes(rand, 1 + Math.floor(rand() * 12)));
      return /^\d+$/.test(value) ? junk() : value; // a number might name a part to wait for
    };
    for (let i = 0; i < 300; i++) {
      // a value is garbage, a part of a segment already listed, or a segment too far ahead
      const msn = pick([junk(), String(Math.floor(rand() * (last + 1))), String(last + 3 + i)]);
      const query = new URLSearchParams();
      if (rand() < 0.9) query.set("_HLS_msn", msn);
      if (rand() < 0.5) query.set("_HLS_part", pick([junk(), String(Math.floor(rand() * 4))]));
      if (rand() < 0.3) query.set(pick(["_HLS_skip", "x", junk()]), junk());
      const response = await s.get(`stream.m3u8?${query}`);
      await response.body?.cancel();
      assert.ok([200, 400].includes(response.status), `${query}: ${response.status}`);
    }
  }));

test.ffmpeg("ll-hls: a stream that ends answers waiting reloads with the finished playlist", () =>
  withStream(async (s) => {
    const msn = partialSequence(await s.playlist());
    const reload = s.get(`stream.m3u8?_HLS_msn=${msn + 1}`);
    assert.equal(await settledWithin(reload, 200), false);
    s.handle.close();
    const response = await reload;
    assert.equal(response.status, 200);
    assert.equal(parsePlaylist(await response.text()).ended, true);
  }));

test.ffmpeg("ll-hls: without a part duration directives are ignored; parts need fMP4", async () => {
  const registry = new Registry();
  assert.throws(
    () => new LiveHls({ registry, segmentType: "ts", partDuration: 0.5 }),
    RangeError,
  );
  assert.throws(() => new LiveHls({ registry, segmentType: "fmp4", partDuration: 2 }), RangeError);
  const plain = new Registry({ observer: { onPublish: (key) => hls.start(key) } });
  const hls = new LiveHls({ registry: plain, targetDuration: 1 });
  const handle = plain.startPublish("live", "ts", { protocol: "test" });
  try {
    await waitFor("the packager", () => handle.subscriberCount > 0 || undefined);
    for (const frame of [...configs, ...frames.filter((f: MediaFrame) => f.dts < 90_000 * 2.5)]) {
      handle.publish(frame);
    }
    const url = "http://127.0.0.1/live/ts/stream.m3u8?_HLS_msn=99&_HLS_part=0";
    const response = await waitFor("the playlist", async () => {
      const r = await hls.route(new Request(url), new URL(url), INFO);
      return r?.status === 200 ? r : undefined;
    });
    const playlist = parsePlaylist(await response.text());
    assert.equal(playlist.tags.has("EXT-X-SERVER-CONTROL"), false);
  } finally {
    plain.endPublish(handle);
    await hls.close();
  }
});
