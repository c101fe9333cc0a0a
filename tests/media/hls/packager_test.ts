import assert from "node:assert/strict";
import {
  DirectoryStorage,
  type HlsPackagerOptions,
  type HlsSegmentType,
} from "../../../media/hls/mod.ts";
import { FrameFlags } from "../../../mod.ts";
import { decodeCheck, ffmpeg } from "../../_util/ffmpeg.ts";
import { mp4Frames } from "../fmp4/_frames.ts";
import {
  assertPlays,
  assertSegmentStarts,
  countFrames,
  countPackets,
  h264Aac,
  h265Aac,
  packageFrames,
  parsePlaylist,
  twoEncodings,
  withDir,
} from "./_hls.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({
  ffmpeg: ["ffmpeg", "ffprobe"],
  x265: ["ffmpeg", "ffprobe", "ffmpeg:libx265"],
});

/** Moves the fixtures' first video dts (B-frames: -2 frames) to 0, as an FLV source has it. */
const FLV_LIKE = 6000;

async function vodRoundTrip(source: string, segmentType: HlsSegmentType, codec: RegExp) {
  const { configs, frames } = await mp4Frames(source, FLV_LIKE);
  await withDir(async (dir) => {
    const packager = await packageFrames([...configs, ...frames], {
      storage: new DirectoryStorage(dir),
      segmentType,
      playlistType: "vod",
      targetDuration: 1.5, // not a multiple of the GOP: cuts must wait for keyframes
    });
    await assertPlays(dir);
    assert.deepEqual(await countPackets(`${dir}/index.m3u8`), countFrames(frames));
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    assert.ok(playlist.ended);
    assert.equal(playlist.tags.get("EXT-X-PLAYLIST-TYPE"), "VOD");
    assert.equal(playlist.tags.get("EXT-X-VERSION"), segmentType === "fmp4" ? "7" : "3");
    assert.equal(playlist.segments.length, packager.stats.segments);
    assert.ok(playlist.segments.length >= 2);
    const total = playlist.segments.reduce((sum, s) => sum + s.duration, 0);
    const video = frames.filter((f) => f.kind === "video");
    const frameTime = (video[1].dts - video[0].dts) / 90000;
    assert.ok(Math.abs(total - video.length * frameTime) < 0.002, `total EXTINF ${total}`);
    for (const s of playlist.segments.slice(0, -1)) assert.ok(s.duration >= 1.5);
    assert.equal(playlist.tags.get("EXT-X-TARGETDURATION"), "2");
    if (segmentType === "fmp4") {
      assert.ok(playlist.segments.every((s) => s.map === "init0.mp4"));
    }
    await assertSegmentStarts(dir, playlist);
    const master = await Deno.readTextFile(`${dir}/index.m3u8`);
    const inf = /#EXT-X-STREAM-INF:(.*)\nstream\.m3u8\n/.exec(master)?.[1] ?? "";
    assert.match(inf, /BANDWIDTH=\d+/);
    assert.match(inf, /RESOLUTION=320x240/);
    const codecs = /CODECS="([^"]+)"/.exec(inf)![1].split(",");
    assert.equal(codecs.length, 2);
    assert.match(codecs[0], codec);
    assert.equal(codecs[1], "mp4a.40.2");
  });
}

for (const segmentType of ["ts", "fmp4"] as const) {
  test.ffmpeg(`packager: H.264 (B-frames) + AAC to VOD ${segmentType}, played by ffmpeg`, async () => {
    await vodRoundTrip(await h264Aac(), segmentType, /^avc1\.64[0-9a-f]{4}$/);
  });

  test.x265({
    name: `packager: H.265 (B-frames) + AAC to VOD ${segmentType}, played by ffmpeg`,
    fn: async () => {
      await vodRoundTrip(await h265Aac(), segmentType, /^hvc1\.1\.6\.L\d+\.[0-9A-F]+/);
    },
  });
}

test.ffmpeg("packager: fMP4 from negative decode times (an MP4 edit list) still plays", async () => {
  const { configs, frames } = await mp4Frames(await h264Aac());
  assert.ok(frames[0].dts < 0);
  await withDir(async (dir) => {
    await packageFrames([...configs, ...frames], {
      storage: new DirectoryStorage(dir),
      segmentType: "fmp4",
      playlistType: "vod",
    });
    await assertPlays(dir);
    assert.deepEqual(await countPackets(`${dir}/index.m3u8`), countFrames(frames));
  });
});

test.ffmpeg("packager: live window keeps the last segments, deletes old ones, ends with ENDLIST", async () => {
  const { configs, frames } = await mp4Frames(await h264Aac(), FLV_LIKE);
  await withDir(async (dir) => {
    const listed: string[][] = [];
    const options: HlsPackagerOptions = {
      storage: new DirectoryStorage(dir),
      targetDuration: 1,
      windowSize: 2,
      onSegment: () => {
        const playlist = parsePlaylist(Deno.readTextFileSync(`${dir}/stream.m3u8`));
        assert.ok(!playlist.ended);
        assert.equal(playlist.tags.get("EXT-X-PLAYLIST-TYPE"), undefined);
        listed.push(playlist.segments.map((s) => s.uri));
      },
    };
    const packager = await packageFrames([...configs, ...frames], options);
    assert.equal(packager.stats.segments, 6);
    assert.deepEqual(listed, [
      ["seg0.ts"],
      ["seg0.ts", "seg1.ts"],
      ["seg1.ts", "seg2.ts"],
      ["seg2.ts", "seg3.ts"],
      ["seg3.ts", "seg4.ts"],
      ["seg4.ts", "seg5.ts"],
    ]);
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    assert.ok(playlist.ended);
    assert.equal(playlist.tags.get("EXT-X-MEDIA-SEQUENCE"), "4");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    // seg0 was removed when seg3 was listed... kept while a client may still read it (window + 1)
    assert.deepEqual(names, [
      "index.m3u8",
      "seg1.ts",
      "seg2.ts",
      "seg3.ts",
      "seg4.ts",
      "seg5.ts",
      "stream.m3u8",
    ]);
    await assertPlays(dir);
    assert.equal((await countPackets(`${dir}/index.m3u8`)).video, 60);
  });
});

test.ffmpeg("packager: EVENT playlist grows and keeps every segment", async () => {
  const { configs, frames } = await mp4Frames(await h264Aac(), FLV_LIKE);
  await withDir(async (dir) => {
    const counts: number[] = [];
    await packageFrames([...configs, ...frames], {
      storage: new DirectoryStorage(dir),
      segmentType: "fmp4",
      playlistType: "event",
      onSegment: () => {
        const playlist = parsePlaylist(Deno.readTextFileSync(`${dir}/stream.m3u8`));
        assert.equal(playlist.tags.get("EXT-X-PLAYLIST-TYPE"), "EVENT");
        assert.ok(!playlist.ended);
        counts.push(playlist.segments.length);
      },
    });
    assert.deepEqual(counts, [1, 2, 3]);
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    assert.ok(playlist.ended);
    await assertPlays(dir);
    assert.deepEqual(await countPackets(`${dir}/index.m3u8`), countFrames(frames));
  });
});

test.ffmpeg("packager: a discontinuity with new configs in TS plays through in ffmpeg", async () => {
  const { a, b } = await twoEncodings();
  await withDir(async (dir) => {
    await packageFrames([...a, ...b], {
      storage: new DirectoryStorage(dir),
      playlistType: "vod",
    });
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    assert.deepEqual(playlist.segments.map((s) => s.discontinuity), [
      false,
      false,
      false,
      true,
      false,
    ]);
    await assertPlays(dir);
    await assertSegmentStarts(dir, playlist);
    assert.deepEqual(
      await countPackets(`${dir}/index.m3u8`),
      countFrames([...a, ...b].filter((f) => !(f.flags & FrameFlags.CONFIG))),
    );
  });
});

test.ffmpeg("packager: new configs in fMP4 give a new init segment after EXT-X-DISCONTINUITY", async () => {
  const { a, b } = await twoEncodings();
  await withDir(async (dir) => {
    await packageFrames([...a, ...b], {
      storage: new DirectoryStorage(dir),
      segmentType: "fmp4",
      playlistType: "vod",
    });
    const playlist = parsePlaylist(await Deno.readTextFile(`${dir}/stream.m3u8`));
    assert.deepEqual(
      playlist.segments.map((s) => [s.discontinuity, s.map]),
      [
        [false, "init0.mp4"],
        [false, "init0.mp4"],
        [false, "init0.mp4"],
        [true, "init1.mp4"],
        [false, "init1.mp4"],
      ],
    );
    // ffmpeg's HLS reader does not switch init segments: check each part on its own
    await assertSegmentStarts(dir, playlist);
    for (
      const [map, segments, size] of [["init0.mp4", [0, 1, 2], "320x240"], [
        "init1.mp4",
        [3, 4],
        "160x120",
      ]] as const
    ) {
      const parts = [await Deno.readFile(`${dir}/${map}`)];
      for (const n of segments) parts.push(await Deno.readFile(`${dir}/seg${n}.m4s`));
      const joined = `${dir}/part.mp4`;
      await Deno.writeFile(joined, new Uint8Array(parts.flatMap((p) => [...p])));
      const decoded = await decodeCheck(joined);
      assert.equal(decoded.stderr, "");
      assert.equal(decoded.code, 0);
      const probe = await ffmpeg(["-i", joined]);
      assert.match(probe.stderr, new RegExp(`, ${size}`));
    }
  });
});
