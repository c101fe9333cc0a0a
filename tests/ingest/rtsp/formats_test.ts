import assert from "node:assert/strict";
import { parseSdp, SdpError } from "../../../media/rtp/mod.ts";
import { trackFormat } from "../../../ingest/rtsp/_formats.ts";
import { prng } from "../../_util/fuzz.ts";
import { FFMPEG_ANNOUNCE, mutatedAnnounce } from "../../media/rtp/_util.ts";

Deno.test("formats: the tracks ffmpeg announces", () => {
  const [video, audio] = parseSdp(FFMPEG_ANNOUNCE).media;
  const v = trackFormat(video);
  const a = trackFormat(audio);
  assert.ok(typeof v !== "string" && typeof a !== "string");
  assert.deepEqual([v.kind, v.codec, v.clockRate, v.config?.length], ["video", "h264", 90000, 23]);
  assert.deepEqual([a.kind, a.codec, a.clockRate, a.samplesPerFrame], [
    "audio",
    "aac",
    48000,
    1024,
  ]);
});

Deno.test("formats: tracks the server cannot carry say why", () => {
  const media = (rtpmap: string, fmtp = "") => ({
    type: "audio",
    port: 0,
    protocol: "RTP/AVP",
    formats: [rtpmap.split(" ")[0]],
    attributes: [
      { name: "rtpmap", value: rtpmap },
      ...(fmtp ? [{ name: "fmtp", value: `${rtpmap.split(" ")[0]} ${fmtp}` }] : []),
    ],
  });
  assert.match(trackFormat(media("0 PCMU/8000")) as string, /PCMU is not supported/);
  assert.match(
    trackFormat({ ...media("0 PCMU/8000"), attributes: [] }) as string,
    /static payload type 0/,
  );
  assert.match(trackFormat({ ...media("96 X/1"), attributes: [] }) as string, /96 has no rtpmap/);
  assert.match(trackFormat(media("97 mpeg4-generic/44100/2", "mode=AAC-hbr")) as string, /AAC-hbr/);
  assert.match(
    trackFormat(media("97 mpeg4-generic/44100/2", "sizelength=13; config=0000")) as string,
    /bad config/,
  );
  assert.match(trackFormat(media("96 H264/90000", "packetization-mode=2")) as string, /mode 2/);
  assert.match(trackFormat(media("111 opus/16000/2")) as string, /16000/);
  const opus = trackFormat(media("111 OPUS/48000/2", "sprop-stereo=0"));
  assert.ok(typeof opus !== "string" && opus.codec === "opus" && opus.config![9] === 1);
});

Deno.test("formats: a malformed rtpmap is an SdpError", () => {
  const bad = parseSdp("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264\r\n");
  assert.throws(() => trackFormat(bad.media[0]), SdpError);
});

Deno.test("formats: bounded fuzz: parse and read tracks, SdpError only", () => {
  const rand = prng(8866);
  for (let i = 0; i < 3000; i++) {
    try {
      for (const m of parseSdp(mutatedAnnounce(rand)).media) trackFormat(m);
    } catch (error) {
      assert.ok(error instanceof SdpError, `case ${i}: ${error}`);
    }
  }
});
