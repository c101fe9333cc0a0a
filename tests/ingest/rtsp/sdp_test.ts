import assert from "node:assert/strict";
import {
  fmtpParameters,
  formatSdp,
  parseSdp,
  rtpMap,
  sdpAttribute,
  SdpError,
} from "../../../ingest/rtsp/mod.ts";
import { trackFormat } from "../../../ingest/rtsp/_formats.ts";
import { prng } from "../../media/codec/_fuzz.ts";

/** What ffmpeg 5.1 announces for H.264 + AAC (`-f rtsp`). */
const FFMPEG_ANNOUNCE = [
  "v=0",
  "o=- 0 0 IN IP4 127.0.0.1",
  "s=No Name",
  "c=IN IP4 127.0.0.1",
  "t=0 0",
  "a=tool:libavformat 59.27.100",
  "m=video 0 RTP/AVP 96",
  "b=AS:200",
  "a=rtpmap:96 H264/90000",
  "a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LAHtoFB+Q=,aM48gA==; profile-level-id=42C01E",
  "a=control:streamid=0",
  "m=audio 0 RTP/AVP 97",
  "b=AS:128",
  "a=rtpmap:97 MPEG4-GENERIC/48000/2",
  "a=fmtp:97 profilelevelid=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=1190",
  "a=control:streamid=1",
  "",
].join("\r\n");

Deno.test("sdp: parse what ffmpeg announces", () => {
  const sdp = parseSdp(FFMPEG_ANNOUNCE);
  assert.equal(sdp.name, "No Name");
  assert.equal(sdp.origin, "- 0 0 IN IP4 127.0.0.1");
  assert.deepEqual(sdp.lines, ["c=IN IP4 127.0.0.1", "t=0 0"]);
  assert.equal(sdpAttribute(sdp.attributes, "tool"), "libavformat 59.27.100");
  assert.equal(sdp.media.length, 2);
  const [video, audio] = sdp.media;
  assert.deepEqual([video.type, video.port, video.protocol, video.formats], [
    "video",
    0,
    "RTP/AVP",
    ["96"],
  ]);
  assert.deepEqual(video.lines, ["b=AS:200"]);
  assert.deepEqual(rtpMap(video), { payloadType: 96, encoding: "H264", clockRate: 90000 });
  assert.deepEqual(rtpMap(audio), {
    payloadType: 97,
    encoding: "MPEG4-GENERIC",
    clockRate: 48000,
    channels: 2,
  });
  assert.deepEqual(fmtpParameters(video), {
    "packetization-mode": "1",
    "sprop-parameter-sets": "Z0LAHtoFB+Q=,aM48gA==",
    "profile-level-id": "42C01E",
  });
  assert.equal(fmtpParameters(audio).config, "1190");
  assert.equal(sdpAttribute(audio.attributes, "CONTROL"), "streamid=1");
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

Deno.test("sdp: format and parse again", () => {
  const sdp = parseSdp(FFMPEG_ANNOUNCE);
  const text = formatSdp(sdp);
  assert.ok(
    text.startsWith(
      "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
    ),
  );
  assert.deepEqual(parseSdp(text), sdp);
  assert.equal(formatSdp({ ...sdp, lines: [] }).split("\r\n")[3], "t=0 0");
});

Deno.test("sdp: tracks the server cannot carry say why", () => {
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

Deno.test("sdp: malformed descriptions are an SdpError", () => {
  for (
    const text of [
      "",
      "hello",
      "v=1\r\n",
      "s=x\r\nv=0\r\n",
      "v=0\r\nm=video\r\n",
      "v=0\r\nm=video x RTP/AVP 96\r\n",
      "v=0\r\nm=video 70000 RTP/AVP 96\r\n",
      "v=0\r\nX=upper\r\n",
      "v=0\r\n" + "m=audio 0 RTP/AVP 0\r\n".repeat(17),
      "v=0\r\n" + "a=x\r\n".repeat(2001),
    ]
  ) {
    assert.throws(() => parseSdp(text), SdpError, JSON.stringify(text.slice(0, 40)));
  }
  const bad = parseSdp("v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264\r\n");
  assert.throws(() => rtpMap(bad.media[0]), SdpError);
  assert.throws(() => trackFormat(bad.media[0]), SdpError);
});

Deno.test("sdp: bounded fuzz: parse and read tracks, SdpError only", () => {
  const rand = prng(8866);
  const chars = "v=0amsbcto:/ \r\n96H264PCMUrtpmapfmtpcontrol;-,1234567890";
  for (let i = 0; i < 3000; i++) {
    const base = FFMPEG_ANNOUNCE.split("");
    for (let k = 0; k < 1 + Math.floor(rand() * 10); k++) {
      const at = Math.floor(rand() * base.length);
      const op = rand();
      if (op < 0.4) base[at] = chars[Math.floor(rand() * chars.length)];
      else if (op < 0.7) base.splice(at, 1);
      else base.splice(at, 0, chars[Math.floor(rand() * chars.length)]);
    }
    try {
      for (const m of parseSdp(base.join("")).media) trackFormat(m);
    } catch (error) {
      assert.ok(error instanceof SdpError, `case ${i}: ${error}`);
    }
  }
});
