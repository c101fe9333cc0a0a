import assert from "node:assert/strict";
import { renderMasterPlaylist, renderMediaPlaylist } from "../../../media/hls/mod.ts";

const seg = (sequence: number, duration: number, discontinuity = false, map?: string) => ({
  uri: `seg${sequence}.m4s`,
  sequence,
  duration,
  discontinuity,
  map,
  bytes: 100,
});

Deno.test("renderMediaPlaylist: VOD with EXT-X-MAP changes and a discontinuity", () => {
  const text = renderMediaPlaylist({
    version: 7,
    targetDuration: 3,
    type: "VOD",
    mediaSequence: 0,
    discontinuitySequence: 0,
    ended: true,
    segments: [
      seg(0, 2.0021, false, "init0.mp4"),
      seg(1, 2.5, false, "init0.mp4"),
      seg(2, 1, true, "init1.mp4"),
    ],
  });
  assert.equal(
    text,
    [
      "#EXTM3U",
      "#EXT-X-VERSION:7",
      "#EXT-X-TARGETDURATION:3",
      "#EXT-X-MEDIA-SEQUENCE:0",
      "#EXT-X-PLAYLIST-TYPE:VOD",
      "#EXT-X-INDEPENDENT-SEGMENTS",
      '#EXT-X-MAP:URI="init0.mp4"',
      "#EXTINF:2.002,",
      "seg0.m4s",
      "#EXTINF:2.500,",
      "seg1.m4s",
      "#EXT-X-DISCONTINUITY",
      '#EXT-X-MAP:URI="init1.mp4"',
      "#EXTINF:1.000,",
      "seg2.m4s",
      "#EXT-X-ENDLIST",
      "",
    ].join("\n"),
  );
});

Deno.test("renderMediaPlaylist: live window repeats the map of its first segment", () => {
  const text = renderMediaPlaylist({
    version: 7,
    targetDuration: 2,
    mediaSequence: 41,
    discontinuitySequence: 2,
    ended: false,
    segments: [seg(41, 2, true, "init1.mp4"), seg(42, 2, false, "init1.mp4")],
  });
  assert.equal(
    text,
    [
      "#EXTM3U",
      "#EXT-X-VERSION:7",
      "#EXT-X-TARGETDURATION:2",
      "#EXT-X-MEDIA-SEQUENCE:41",
      "#EXT-X-DISCONTINUITY-SEQUENCE:2",
      "#EXT-X-INDEPENDENT-SEGMENTS",
      '#EXT-X-MAP:URI="init1.mp4"',
      "#EXTINF:2.000,",
      "seg41.m4s",
      "#EXTINF:2.000,",
      "seg42.m4s",
      "",
    ].join("\n"),
  );
});

Deno.test("renderMasterPlaylist: BANDWIDTH, AVERAGE-BANDWIDTH, CODECS, RESOLUTION", () => {
  assert.equal(
    renderMasterPlaylist([
      {
        uri: "stream.m3u8",
        bandwidth: 1_000_000.4,
        averageBandwidth: 800_000,
        codecs: ["avc1.64001f", "mp4a.40.2"],
        resolution: { width: 1280, height: 720 },
      },
      { uri: "audio.m3u8", bandwidth: 64_000, codecs: ["opus"] },
    ]),
    [
      "#EXTM3U",
      "#EXT-X-INDEPENDENT-SEGMENTS",
      '#EXT-X-STREAM-INF:BANDWIDTH=1000001,AVERAGE-BANDWIDTH=800000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720',
      "stream.m3u8",
      '#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="opus"',
      "audio.m3u8",
      "",
    ].join("\n"),
  );
});
