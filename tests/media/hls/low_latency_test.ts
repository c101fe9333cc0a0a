/** Low-Latency HLS: partial segments, their playlist tags, blocking waits, and real playback. */

import assert from "node:assert/strict";
import { DirectoryStorage, HlsPackager, MemoryStorage } from "../../../media/hls/mod.ts";
import { decodeCheck } from "../../_util/ffmpeg.ts";
import { mp4Frames } from "../fmp4/_frames.ts";
import { assertPlays, countFrames, countPackets, h264Aac, parsePlaylist, withDir } from "./_hls.ts";
import { audio, audioConfig, text, video, videoConfig } from "./_synthetic.ts";
import { concat } from "../ts/_helpers.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

Deno.test("low latency: parts, their tags, preload hints and segments made of parts", async () => {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({
    storage,
    segmentType: "fmp4",
    targetDuration: 1,
    partDuration: 0.5,
    windowSize: 4,
  });
  const writer = packager.getWriter();
  await writer.write(videoConfig());
  await writer.write(audioConfig());
  const hints: string[] = [];
  const listedParts: string[] = [];
  for (let i = 0; i < 25 * 8; i++) {
    await writer.write(video(i * 3600, i % 25 === 0));
    await writer.write(audio(i * 3600));
    const body = text(storage, "stream.m3u8");
    if (body === "") continue; // nothing listed before the first part
    const playlist = parsePlaylist(body);
    assert.equal(playlist.tags.get("EXT-X-VERSION"), "9");
    assert.equal(playlist.tags.get("EXT-X-PART-INF"), "PART-TARGET=0.500");
    assert.equal(
      playlist.tags.get("EXT-X-SERVER-CONTROL"),
      "CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
    );
    assert.ok(playlist.preloadHint);
    if (hints.at(-1) !== playlist.preloadHint) hints.push(playlist.preloadHint);
    for (const p of [...playlist.segments.flatMap((s) => s.parts), ...playlist.pendingParts]) {
      if (!listedParts.includes(p.uri)) listedParts.push(p.uri);
      assert.ok(storage.read(p.uri), `${p.uri} is stored before it is listed`);
    }
  }
  await writer.close();
  // 25 frames per segment: parts of 12, 12 and 1 frames (a part ends before passing 0.5 s)
  assert.deepEqual(listedParts.slice(0, 6), [
    "seg0.0.m4s",
    "seg0.1.m4s",
    "seg0.2.m4s",
    "seg1.0.m4s",
    "seg1.1.m4s",
    "seg1.2.m4s",
  ]);
  // each hint names the part listed next
  for (const hint of hints.slice(0, -1)) assert.ok(listedParts.includes(hint), hint);

  const playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.ok(playlist.ended);
  assert.equal(playlist.preloadHint, undefined);
  assert.deepEqual(playlist.segments.map((s) => s.uri), [
    "seg4.m4s",
    "seg5.m4s",
    "seg6.m4s",
    "seg7.m4s",
  ]);
  // parts listed for the last three target durations only
  assert.deepEqual(playlist.segments.map((s) => s.parts.length), [0, 3, 3, 3]);
  for (const s of playlist.segments.slice(1)) {
    assert.deepEqual(s.parts.map((p) => [p.duration, p.independent]), [
      [0.48, true],
      [0.48, false],
      [0.04, false],
    ]);
    const sum = s.parts.reduce((n, p) => n + p.duration, 0);
    assert.ok(Math.abs(sum - s.duration) < 0.001);
    const joined = concat(s.parts.map((p) => storage.read(p.uri)!));
    assert.deepEqual(joined, storage.read(s.uri), `${s.uri} is its parts back to back`);
  }
  // part files of segments long unlisted are gone; storage stays bounded
  assert.equal(storage.read("seg0.0.m4s"), undefined);
  assert.ok(storage.names().length < 30, storage.names().join(" "));
});

Deno.test("low latency: waitForPart resolves as soon as that part is listed", async () => {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({
    storage,
    segmentType: "fmp4",
    targetDuration: 1,
    partDuration: 0.5,
  });
  const writer = packager.getWriter();
  await writer.write(videoConfig());
  await writer.write(audioConfig()); // both tracks known: no probing delay
  const part1 = packager.waitForPart(1, 1);
  const segment1 = packager.waitForSegment(1);
  let done = false;
  part1.then(() => done = true);
  for (let i = 0; i < 49; i++) await writer.write(video(i * 3600, i % 25 === 0));
  await Promise.resolve();
  assert.equal(done, false, "part 1 of segment 1 (frames 37 to 48) ends only when frame 49 comes");
  let playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.deepEqual(playlist.pendingParts.map((p) => p.uri), ["seg1.0.m4s"]);
  await writer.write(video(49 * 3600, false));
  assert.equal(await part1, true);
  playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.deepEqual(playlist.segments.map((s) => s.uri), ["seg0.m4s"]);
  assert.deepEqual(playlist.pendingParts.map((p) => p.uri), ["seg1.0.m4s", "seg1.1.m4s"]);
  assert.equal(playlist.preloadHint, "seg1.2.m4s");
  await writer.close();
  assert.equal(await segment1, true);
  assert.equal(await packager.waitForPart(1, 7), true, "a finished segment satisfies any part");
  assert.equal(await packager.waitForPart(2, 0), false);
});

Deno.test("low latency: no playlist before the first whole segment (players want one)", async () => {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({ storage, segmentType: "fmp4", partDuration: 0.5 });
  const writer = packager.getWriter();
  await writer.write(videoConfig());
  await writer.write(audioConfig());
  for (let i = 0; i < 40; i++) await writer.write(video(i * 3600, i === 0));
  assert.ok(storage.read("seg0.2.m4s"), "parts are written");
  assert.equal(storage.read("stream.m3u8"), undefined);
  assert.equal(await packager.waitForPart(0, 1), true, "and can be waited for");
  await writer.close();
});

test.ffmpeg("low latency: a real stream with parts plays in ffmpeg, and parts decode on their own", async () => {
  const { configs, frames } = await mp4Frames(await h264Aac(), 6000);
  await withDir(async (dir) => {
    const packager = new HlsPackager({
      storage: new DirectoryStorage(dir),
      segmentType: "fmp4",
      playlistType: "event",
      partDuration: 0.5,
    });
    await ReadableStream.from([...configs, ...frames]).pipeTo(packager);
    await assertPlays(dir);
    assert.deepEqual(await countPackets(`${dir}/index.m3u8`), countFrames(frames));
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    const last = playlist.segments.at(-1)!;
    assert.ok(last.parts.length >= 4);
    const joined = `${dir}/parts.mp4`;
    const bytes = [await Deno.readFile(`${dir}/${last.map}`)];
    for (const p of last.parts) bytes.push(await Deno.readFile(`${dir}/${p.uri}`));
    await Deno.writeFile(joined, concat(bytes));
    const decoded = await decodeCheck(joined);
    assert.equal(decoded.stderr, "");
    assert.equal(decoded.code, 0);
  });
});

Deno.test("low latency: partDuration needs fMP4, a live or event playlist, and to be below the target", () => {
  const storage = new MemoryStorage();
  assert.throws(() => new HlsPackager({ storage, partDuration: 0.5 }), /needs fmp4/);
  assert.throws(
    () => new HlsPackager({ storage, segmentType: "fmp4", playlistType: "vod", partDuration: 0.5 }),
    /needs fmp4 segments, live or event/,
  );
  assert.throws(
    () => new HlsPackager({ storage, segmentType: "fmp4", targetDuration: 1, partDuration: 1 }),
    RangeError,
  );
});
