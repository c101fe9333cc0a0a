import assert from "node:assert/strict";
import {
  parsePlaylist,
  renderMasterPlaylist,
  renderMediaPlaylist,
} from "../../../media/hls/mod.ts";
import { prng, randomText, returnsOrRangeError } from "../../_util/fuzz.ts";

Deno.test("parsePlaylist reads back what renderMediaPlaylist writes (live, discontinuity, map)", () => {
  const text = renderMediaPlaylist({
    version: 7,
    targetDuration: 2,
    mediaSequence: 41,
    discontinuitySequence: 1,
    ended: false,
    segments: [
      { uri: "s41.m4s", sequence: 41, duration: 2, discontinuity: false, map: "i0.mp4", bytes: 1 },
      { uri: "s42.m4s", sequence: 42, duration: 1.5, discontinuity: true, map: "i1.mp4", bytes: 1 },
    ],
  });
  const parsed = parsePlaylist(text);
  assert.equal(parsed.kind, "media");
  if (parsed.kind !== "media") return;
  assert.equal(parsed.targetDuration, 2);
  assert.equal(parsed.mediaSequence, 41);
  assert.equal(parsed.ended, false);
  assert.deepEqual(
    parsed.segments.map((s) => [s.uri, s.sequence, s.duration, s.discontinuity, s.map?.uri]),
    [["s41.m4s", 41, 2, false, "i0.mp4"], ["s42.m4s", 42, 1.5, true, "i1.mp4"]],
  );
});

Deno.test("parsePlaylist reads a multivariant playlist's variants", () => {
  const variants = [
    { uri: "low.m3u8", bandwidth: 500_000, codecs: ["avc1.42c01e", "mp4a.40.2"] },
    {
      uri: "high.m3u8",
      bandwidth: 2_000_000,
      averageBandwidth: 1_500_000,
      codecs: ["avc1.64001f", "mp4a.40.2"],
      resolution: { width: 1280, height: 720 },
    },
  ];
  const parsed = parsePlaylist(renderMasterPlaylist(variants));
  assert.deepEqual(parsed, { kind: "multivariant", audioRenditions: [], variants });
});

Deno.test("parsePlaylist tells a variant whose audio is a rendition of its own", () => {
  const parsed = parsePlaylist([
    "#EXTM3U",
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio.m3u8"',
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="muxed",NAME="en",DEFAULT=YES',
    '#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.64001f",AUDIO="aud"',
    "video.m3u8",
    '#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64001f,mp4a.40.2",AUDIO="muxed"',
    "av.m3u8",
  ].join("\n"));
  assert.equal(parsed.kind, "multivariant");
  if (parsed.kind !== "multivariant") return;
  assert.deepEqual(parsed.audioRenditions, [{
    groupId: "aud",
    uri: "audio.m3u8",
    isDefault: true,
  }]);
  assert.deepEqual(parsed.variants.map((v) => [v.uri, v.audioGroup]), [
    ["video.m3u8", "aud"],
    ["av.m3u8", "muxed"],
  ]);
});

Deno.test("parsePlaylist: byte ranges, gaps, keys, CRLF, ENDLIST and refusals", () => {
  const parsed = parsePlaylist(
    [
      "#EXTM3U",
      "#EXT-X-TARGETDURATION:4",
      "#EXT-X-PLAYLIST-TYPE:VOD",
      '#EXT-X-MAP:URI="all.mp4",BYTERANGE="700@0"',
      "#EXT-X-BYTERANGE:1000@700",
      "#EXTINF:4.000,title, with comma",
      "all.mp4",
      "#EXT-X-BYTERANGE:500",
      "#EXT-X-GAP",
      "#EXTINF:4,",
      "all.mp4",
      '#EXT-X-KEY:METHOD=AES-128,URI="k"',
      "#EXTINF:3.5,",
      "enc.ts",
      "#EXT-X-ENDLIST",
    ].join("\r\n"),
  );
  assert.equal(parsed.kind, "media");
  if (parsed.kind !== "media") return;
  assert.equal(parsed.type, "VOD");
  assert.equal(parsed.ended, true);
  assert.deepEqual(parsed.segments[0].map, {
    uri: "all.mp4",
    byteRange: { offset: 0, length: 700 },
  });
  assert.deepEqual(parsed.segments[0].byteRange, { offset: 700, length: 1000 });
  assert.deepEqual(parsed.segments[1].byteRange, { offset: 1700, length: 500 });
  assert.deepEqual(parsed.segments.map((s) => [s.gap, s.encrypted]), [
    [false, false],
    [true, false],
    [false, true],
  ]);
  assert.throws(() => parsePlaylist("<html>"), /EXTM3U/);
  assert.throws(() => parsePlaylist("#EXTM3U\n#EXTINF:2,\nx.ts\n"), /TARGETDURATION/);
  assert.throws(
    () => parsePlaylist("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\nx.ts"),
    RangeError,
  );
  assert.throws(() => parsePlaylist("#EXTM3U\n#EXT-X-TARGETDURATION:2\nx.ts"), /without EXTINF/);
  assert.throws(() => parsePlaylist('#EXTM3U\n#EXT-X-STREAM-INF:CODECS="a"\nv.m3u8'), /BANDWIDTH/);
});

Deno.test("parsePlaylist fuzz: random lines of tags and values only ever throw RangeError", () => {
  const rand = prng(17);
  const tags = [
    "#EXTINF:",
    "#EXT-X-TARGETDURATION:",
    "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-BYTERANGE:",
    "#EXT-X-MAP:",
    "#EXT-X-STREAM-INF:",
    "#EXT-X-KEY:",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-GAP",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE:",
    "",
  ];
  const alphabet = '0123456789.,@="xURIBANDWIDTHCODECSRESOLUTIONMETHOD-\r\n \u2028\0';
  for (let i = 0; i < 3000; i++) {
    const lines = ["#EXTM3U"];
    const n = Math.floor(rand() * 12);
    for (let j = 0; j < n; j++) {
      lines.push(tags[Math.floor(rand() * tags.length)] + randomText(rand, alphabet, 24));
    }
    const text = lines.join("\n");
    returnsOrRangeError(() => parsePlaylist(text), `random playlist #${i}`);
  }
  // A playlist of many entries is bounded by its text, and refused past 100,000 entries.
  const many = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n" + "#EXTINF:1,\ns.ts\n".repeat(100_001);
  assert.throws(() => parsePlaylist(many), /more than 100000/);
});
