/** The packager's rules on synthetic frames, in memory: cuts, windows, discontinuities, errors. */

import assert from "node:assert/strict";
import {
  type HlsFileData,
  HlsPackager,
  type HlsPackagerOptions,
  type HlsStorage,
  MemoryStorage,
} from "../../../media/hls/mod.ts";
import { concat, firstDifference } from "../../_util/bytes.ts";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { parsePlaylist } from "./_hls.ts";
import { audio, audioConfig, text, video, videoConfig, videoFrames } from "./_synthetic.ts";

async function run(frames: MediaFrame[], options: Omit<HlsPackagerOptions, "storage">) {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({ storage, ...options });
  await ReadableStream.from(frames).pipeTo(packager);
  return { storage, packager, playlist: parsePlaylist(text(storage, "stream.m3u8")) };
}

Deno.test("rules: audio only is cut by duration; the master has no RESOLUTION", async () => {
  const frames = [audioConfig(), ...Array.from({ length: 200 }, (_, i) => audio(i * 1920))];
  const { playlist, storage } = await run(frames, { playlistType: "vod", targetDuration: 1 });
  // 1024 samples at 48 kHz = 1920 ticks: 47 frames reach 1 s
  assert.deepEqual(playlist.segments.map((s) => s.duration), [1.003, 1.003, 1.003, 1.003, 0.256]);
  assert.equal(
    text(storage, "index.m3u8").split("\n")[2].replace(/BANDWIDTH=\d+,AVERAGE-BANDWIDTH=\d+/, ""),
    '#EXT-X-STREAM-INF:,CODECS="mp4a.40.2"',
  );
});

Deno.test("rules: segments longer than the target raise EXT-X-TARGETDURATION", async () => {
  const { playlist } = await run([videoConfig(), ...videoFrames(9, 75)], {
    playlistType: "vod",
    targetDuration: 2,
  });
  assert.deepEqual(playlist.segments.map((s) => s.duration), [3, 3, 3]);
  assert.equal(playlist.tags.get("EXT-X-TARGETDURATION"), "3");
});

Deno.test("rules: frames before the first keyframe are dropped", async () => {
  const frames = [videoConfig(), audioConfig(), audio(0), video(0, false), video(3600, true)];
  const { packager, playlist } = await run(frames, { playlistType: "vod" });
  assert.equal(packager.stats.dropped, 2);
  assert.equal(packager.stats.frames, 1);
  assert.equal(playlist.segments.length, 1);
});

Deno.test("rules: live storage stays flat; DISCONTINUITY-SEQUENCE counts tags slid out", async () => {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({ storage, windowSize: 3, targetDuration: 1 });
  const writer = packager.getWriter();
  await writer.write(videoConfig());
  const sizes: number[] = [];
  for (let second = 0; second < 60; second++) {
    const flags = second === 30 ? FrameFlags.DISCONTINUITY : 0;
    for (let i = 0; i < 25; i++) {
      await writer.write(video((second * 25 + i) * 3600, i === 0, 0, i === 0 ? flags : 0));
    }
    sizes.push(storage.names().length);
    if (second === 0) continue; // the first segment ends at the next keyframe
    // segments 0 .. second - 1 are written, the last three listed
    const playlist = parsePlaylist(text(storage, "stream.m3u8"));
    assert.equal(playlist.tags.get("EXT-X-MEDIA-SEQUENCE"), String(Math.max(0, second - 3)));
    const tags = playlist.segments.filter((s) => s.discontinuity).length;
    // segment 30 follows the discontinuity: tagged while listed after another segment,
    // then counted in EXT-X-DISCONTINUITY-SEQUENCE once it is the first one listed
    assert.equal(tags, second === 31 || second === 32 ? 1 : 0, `second ${second}`);
    const sequence = playlist.tags.get("EXT-X-DISCONTINUITY-SEQUENCE");
    assert.equal(sequence, second >= 33 ? "1" : undefined);
  }
  await writer.close();
  // 3 listed + 4 kept for late readers + 2 playlists
  assert.equal(Math.max(...sizes), 9);
  assert.equal(storage.names().length, 9);
  assert.ok(parsePlaylist(text(storage, "stream.m3u8")).ended);
});

Deno.test("rules: fMP4 config changes get a new init; the old one goes with its segments", async () => {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({
    storage,
    segmentType: "fmp4",
    windowSize: 2,
    targetDuration: 1,
  });
  const writer = packager.getWriter();
  await writer.write(videoConfig());
  for (const f of videoFrames(3, 25)) await writer.write(f);
  await writer.write(audioConfig()); // a track appears: new init at the next keyframe
  for (const f of videoFrames(1, 25, 3 * 90000)) await writer.write(f);
  let playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.deepEqual(playlist.segments.map((s) => [s.uri, s.map, s.discontinuity]), [
    ["seg1.m4s", "init0.mp4", false],
    ["seg2.m4s", "init0.mp4", false],
  ]);
  assert.ok(storage.read("init1.mp4"), "written when the new tracks start");
  for (let s = 4; s < 10; s++) {
    for (const f of videoFrames(1, 25, s * 90000)) await writer.write(f);
    await writer.write(audio(s * 90000));
  }
  await writer.close();
  playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.deepEqual(playlist.segments.map((s) => s.map), ["init1.mp4", "init1.mp4"]);
  assert.equal(storage.read("init0.mp4"), undefined, "deleted with its last segment");
  assert.match(text(storage, "index.m3u8"), /CODECS="avc1.42c01e,mp4a.40.2",RESOLUTION=320x240/);
});

Deno.test("rules: fMP4 segments reach storage as chunks: moof + mdat header, then the frames' bytes", async () => {
  const memory = new MemoryStorage();
  const writes = new Map<string, HlsFileData>();
  const storage: HlsStorage = {
    write: (name, data) => {
      writes.set(name, data);
      return memory.write(name, data);
    },
    delete: (name) => memory.delete(name),
  };
  const media = videoFrames(3, 25).flatMap((v, i) => i % 2 ? [v] : [v, audio(v.dts)]);
  const packager = new HlsPackager({ storage, segmentType: "fmp4", playlistType: "vod" });
  await ReadableStream.from([videoConfig(), audioConfig(), ...media]).pipeTo(packager);
  const segments = [...writes].filter(([name]) => name.endsWith(".m4s"));
  assert.equal(segments.length, 2);
  const sent = new Set(media.map((f) => f.data));
  let samples = 0;
  for (const [name, data] of segments) {
    assert.ok(Array.isArray(data), `${name} comes as a chunk list`);
    const [head, ...rest] = data as readonly Uint8Array[];
    assert.equal(new TextDecoder().decode(head.subarray(4, 8)), "moof");
    assert.ok(rest.every((c) => sent.has(c)), `${name}: every sample is a frame's own data`);
    samples += rest.length;
    assert.deepEqual(memory.read(name), concat(data as Uint8Array[]), "MemoryStorage joins them");
  }
  assert.equal(samples, media.length);
});

Deno.test("rules: TS slabs reused after a segment is stored never change a stored segment", async () => {
  const memory = new MemoryStorage();
  const copies = new Map<string, Uint8Array>();
  const slabs = new Map<ArrayBufferLike, Set<string>>();
  const storage: HlsStorage = {
    write: (name, data) => {
      const chunks = data instanceof Uint8Array ? [data] : data;
      copies.set(name, concat([...chunks]));
      for (const c of chunks) slabs.set(c.buffer, (slabs.get(c.buffer) ?? new Set()).add(name));
      return memory.write(name, data);
    },
    delete: (name) => memory.delete(name),
  };
  // 10 kB frames, one-second segments of about 270 kB: most lie inside one 1 MiB slab
  const frames = videoFrames(30, 25).map((f, i) => {
    const data = new Uint8Array(10_000).fill(i & 0xff);
    data.set(f.data.subarray(0, 5));
    new DataView(data.buffer).setUint32(0, data.length - 4);
    return { ...f, data };
  });
  const packager = new HlsPackager({ storage, playlistType: "vod", targetDuration: 1 });
  await ReadableStream.from([videoConfig(), ...frames]).pipeTo(packager);
  const segments = [...copies.keys()].filter((name) => name.endsWith(".ts"));
  assert.equal(segments.length, 30);
  const reuse = Math.max(...[...slabs.values()].map((names) => names.size));
  assert.ok(reuse > 8, `a slab served ${reuse} segments`);
  for (const name of segments) {
    assert.equal(firstDifference(memory.read(name)!, copies.get(name)!), -1, `${name} changed`);
  }
});

/** 6 s of 25 fps video (2 s GOPs) and AAC, payloads of a few hundred bytes filled with their index. */
function filledFrames(): MediaFrame[] {
  return videoFrames(6, 50).flatMap((v, i) => {
    const data = new Uint8Array(300 + i).fill(i & 0xff);
    data.set(v.data.subarray(0, 5));
    new DataView(data.buffer).setUint32(0, data.length - 4);
    const a = audio(v.dts);
    return [{ ...v, data }, { ...a, data: new Uint8Array(100).fill(~i & 0xff) }];
  });
}

for (
  const options of [
    { segmentType: "ts", playlistType: "vod" },
    { segmentType: "fmp4", playlistType: "vod" },
    { segmentType: "fmp4", playlistType: "event", partDuration: 0.5 },
  ] as Omit<HlsPackagerOptions, "storage">[]
) {
  const label = `${options.segmentType}${options.partDuration ? " LL-HLS" : ""}`;
  Deno.test(`rules: onRelease (${label}) reports every media frame once, when its bytes may be reused`, async () => {
    const expected = await run([videoConfig(), audioConfig(), ...filledFrames()], options);
    const storage = new MemoryStorage();
    const frames = filledFrames();
    const released = new Map<Uint8Array, number>();
    const packager = new HlsPackager({
      storage,
      ...options,
      onRelease: (data) => {
        released.set(data, (released.get(data) ?? 0) + 1);
        data.fill(0xee); // the source reuses the memory at once
      },
    });
    await ReadableStream.from([videoConfig(), audioConfig(), ...frames]).pipeTo(packager);
    assert.equal(released.size, frames.length, "every media frame is reported");
    assert.ok([...released.values()].every((n) => n === 1), "once");
    assert.deepEqual(storage.names().sort(), expected.storage.names().sort());
    for (const name of storage.names()) {
      const want = expected.storage.read(name)!;
      assert.equal(firstDifference(storage.read(name)!, want), -1, `${name} as without reuse`);
    }
  });
}

Deno.test("rules: a lead timestamp going back is a discontinuity", async () => {
  const frames = [videoConfig(), ...videoFrames(2, 25, 900000), ...videoFrames(2, 25, 0)];
  const { playlist } = await run(frames, { playlistType: "vod" });
  assert.deepEqual(playlist.segments.map((s) => [s.duration, s.discontinuity]), [
    [2, false],
    [2, true],
  ]);
});

Deno.test("rules: TS with other track numbers keeps both tracks", async () => {
  const frames = [videoConfig(3), audioConfig(7), video(0, true, 3), audio(0, 7), audio(1920, 7)];
  const { storage } = await run(frames, { playlistType: "vod" });
  const ts = storage.read("seg0.ts")!;
  const pids = new Set<number>();
  for (let p = 0; p < ts.length; p += 188) pids.add(((ts[p + 1] & 0x1f) << 8) | ts[p + 2]);
  assert.deepEqual([...pids].sort(), [0, 0x100, 0x101, 0x1000]);
});

Deno.test("rules: waitForSegment resolves when a segment is listed, false at the end", async () => {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({ storage, targetDuration: 1 });
  const writer = packager.getWriter();
  const first = packager.waitForSegment(0);
  const never = packager.waitForSegment(5);
  const controller = new AbortController();
  const aborted = packager.waitForSegment(1, controller.signal);
  controller.abort(new Error("client gone"));
  await assert.rejects(aborted, /client gone/);
  await writer.write(videoConfig());
  for (const f of videoFrames(1, 25)) await writer.write(f);
  let settled = false;
  first.then(() => settled = true);
  await Promise.resolve();
  assert.equal(settled, false);
  await writer.write(video(90000, true));
  assert.equal(await first, true);
  assert.ok(text(storage, "stream.m3u8").includes("seg0.ts"), "listed before the wait ends");
  assert.equal(await packager.waitForSegment(0), true);
  await writer.close();
  assert.equal(await never, false);
  assert.equal(await packager.waitForSegment(9), false);
});

Deno.test("rules: input it cannot use is skipped and said once, and the output is still finished", async () => {
  const storage = new MemoryStorage();
  const skipped: string[] = [];
  const packager = new HlsPackager({
    storage,
    playlistType: "vod",
    onSkip: (what) => skipped.push(what),
  });
  const frames = [videoConfig(), ...videoFrames(3, 25), audio(0), audio(1920)];
  await ReadableStream.from(frames).pipeTo(packager);
  assert.deepEqual(skipped, [
    "track 1 (audio aac): media frame before its CONFIG frame; the track is skipped until a CONFIG frame and a keyframe",
  ]);
  assert.equal(packager.stats.dropped, 2);
  const playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.ok(playlist.ended);
  assert.equal(playlist.segments.length, 2);

  const av1 = { ...videoConfig(), codec: "av1" as const, data: new Uint8Array([0x81]) };
  const nothing = new HlsPackager({ storage: new MemoryStorage() });
  await ReadableStream.from([av1]).pipeTo(nothing);
  assert.equal(nothing.stats.segments, 0);
  const twoStorage = new MemoryStorage();
  const two = [videoConfig(0), videoConfig(2), ...videoFrames(3, 25, 0, 2), ...videoFrames(3, 25)];
  await ReadableStream.from(two).pipeTo(new HlsPackager({ storage: twoStorage }));
  assert.ok(parsePlaylist(text(twoStorage, "stream.m3u8")).segments.length >= 1);
  assert.throws(() => new HlsPackager({ storage, targetDuration: 0 }), RangeError);
  assert.throws(() => new HlsPackager({ storage, windowSize: 0 }), RangeError);
});

Deno.test("rules: aborting finishes the output with what was written", async () => {
  const storage = new MemoryStorage();
  const packager = new HlsPackager({ storage, playlistType: "event" });
  const writer = packager.getWriter();
  await writer.write(videoConfig());
  for (const f of videoFrames(3, 25)) await writer.write(f);
  await writer.abort(new Error("input truncated"));
  const playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.ok(playlist.ended);
  assert.deepEqual(playlist.segments.map((s) => s.duration), [2, 1]);
});

Deno.test("rules: a second track configured within a second of the first frames joins from the start", async () => {
  const frames = [
    videoConfig(),
    ...videoFrames(1, 25).slice(0, 12), // 0.44 s of video before the audio config
    audioConfig(),
    ...videoFrames(3, 25).slice(12).flatMap((f) => [f, audio(f.dts)]),
  ];
  const { storage, playlist, packager } = await run(frames, {
    segmentType: "fmp4",
    playlistType: "vod",
  });
  assert.deepEqual(playlist.segments.map((s) => [s.map, s.discontinuity]), [["init0.mp4", false], [
    "init0.mp4",
    false,
  ]]);
  assert.equal(storage.read("init1.mp4"), undefined);
  assert.equal(packager.stats.dropped, 0);
  assert.match(text(storage, "index.m3u8"), /CODECS="avc1.42c01e,mp4a.40.2"/);
});

Deno.test("rules: a new packager continues a finished playlist after a discontinuity", async () => {
  const storage = new MemoryStorage();
  const options = { storage, segmentType: "fmp4", windowSize: 4, targetDuration: 1 } as const;
  const first = new HlsPackager(options);
  await ReadableStream.from([videoConfig(), ...videoFrames(3, 25, 5_000_000)]).pipeTo(first);
  assert.ok(parsePlaylist(text(storage, "stream.m3u8")).ended);

  assert.throws(() => new HlsPackager({ ...options, continueFrom: new HlsPackager(options) }), {
    name: "TypeError",
    message: /not finished/,
  });
  const second = new HlsPackager({ ...options, continueFrom: first });
  const writer = second.getWriter();
  await writer.write(videoConfig());
  for (const f of videoFrames(2, 25)) await writer.write(f); // timestamps start again at 0
  await writer.write(video(50 * 3600, true));
  let playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.ok(!playlist.ended);
  assert.equal(playlist.tags.get("EXT-X-MEDIA-SEQUENCE"), "1");
  assert.deepEqual(playlist.segments.map((s) => [s.uri, s.discontinuity, s.map]), [
    ["seg1.m4s", false, "init0.mp4"],
    ["seg2.m4s", false, "init0.mp4"],
    ["seg3.m4s", true, "init1.mp4"],
    ["seg4.m4s", false, "init1.mp4"],
  ]);
  for (const f of videoFrames(7, 25, 51 * 3600)) await writer.write(f);
  await writer.close();
  playlist = parsePlaylist(text(storage, "stream.m3u8"));
  assert.ok(playlist.ended);
  const uris = playlist.segments.map((s) => s.uri);
  assert.deepEqual(uris, ["seg8.m4s", "seg9.m4s", "seg10.m4s", "seg11.m4s"]);
  assert.equal(playlist.tags.get("EXT-X-DISCONTINUITY-SEQUENCE"), "1");
  assert.equal(storage.read("init0.mp4"), undefined, "deleted with the first publish's segments");
  assert.equal(storage.read("seg0.m4s"), undefined);
});
