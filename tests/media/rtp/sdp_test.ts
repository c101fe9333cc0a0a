import assert from "node:assert/strict";
import {
  fmtpParameters,
  formatSdp,
  parseSdp,
  rtpMap,
  sdpAttribute,
  SdpError,
} from "../../../media/rtp/mod.ts";
import { prng } from "../../_util/fuzz.ts";
import { FFMPEG_ANNOUNCE, mutatedAnnounce } from "./_util.ts";

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
});

Deno.test("sdp: bounded fuzz: parse and read rtpmap and fmtp, SdpError only", () => {
  const rand = prng(8866);
  for (let i = 0; i < 3000; i++) {
    try {
      for (const m of parseSdp(mutatedAnnounce(rand)).media) {
        rtpMap(m);
        fmtpParameters(m);
        sdpAttribute(m.attributes, "control");
      }
    } catch (error) {
      assert.ok(error instanceof SdpError, `case ${i}: ${error}`);
    }
  }
});
