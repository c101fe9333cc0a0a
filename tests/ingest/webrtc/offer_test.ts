import assert from "node:assert/strict";
import { inspectOffer } from "../../../ingest/webrtc/_offer.ts";
import { WebRtcError } from "../../../ingest/webrtc/mod.ts";
import { H264, H264_MODE0, makeOffer, OPUS, PCMU, VP8 } from "./_offers.ts";

function refusal(sdp: string): WebRtcError {
  try {
    inspectOffer(sdp);
  } catch (error) {
    assert.ok(error instanceof WebRtcError, `a WebRtcError, not ${error}`);
    return error;
  }
  assert.fail("the offer was accepted");
}

Deno.test("inspectOffer: what a browser offers", () => {
  assert.deepEqual(inspectOffer(makeOffer()), { h264: true, opus: true, video: true, audio: true });
  assert.deepEqual(inspectOffer(makeOffer({ video: [VP8, H264], audio: null })), {
    h264: true,
    opus: false,
    video: true,
    audio: false,
  });
  assert.deepEqual(inspectOffer(makeOffer({ video: [VP8], audio: [PCMU, OPUS] })), {
    h264: false,
    opus: true,
    video: true,
    audio: true,
  });
});

Deno.test("inspectOffer: malformed SDP is a 400 with the reason", () => {
  const cases: [string, RegExp][] = [
    ["hello", /malformed SDP/],
    ["", /malformed SDP|no audio or video/],
    [makeOffer().replace("UDP/TLS/RTP/SAVPF", "RTP/AVP"), /not UDP\/TLS\/RTP\/SAVPF/],
    [makeOffer().replaceAll(/a=ice-pwd:.*\r\n/g, ""), /no a=ice-pwd/],
    [makeOffer().replaceAll(/a=fingerprint:.*\r\n/g, ""), /no a=fingerprint/],
    [makeOffer().replace("a=rtpmap:102 H264/90000", "a=rtpmap:102 H264"), /rtpmap/],
    [makeOffer({ video: null, audio: null }), /no audio or video/],
    [makeOffer() + makeOffer().slice(makeOffer().indexOf("m=video")), /more than one/],
  ];
  for (const [sdp, reason] of cases) {
    const error = refusal(sdp);
    assert.equal(error.status, 400, `${reason}: ${error.message}`);
    assert.match(error.message, reason);
  }
});

Deno.test("inspectOffer: no codec we take is a 406", () => {
  for (
    const sdp of [
      makeOffer({ video: [VP8], audio: [PCMU] }),
      makeOffer({ video: [H264_MODE0], audio: null }),
    ]
  ) {
    const error = refusal(sdp);
    assert.equal(error.status, 406);
    assert.match(error.message, /H\.264 \(packetization-mode=1\) video or Opus audio/);
  }
});

Deno.test("inspectOffer fuzz: mutated offers are accepted or refused with a 4xx, never crash", () => {
  let seed = 0x9e3779b9;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const base = new TextEncoder().encode(makeOffer());
  for (let i = 0; i < 3000; i++) {
    const bytes = base.slice(0, Math.floor(random() * base.length * 1.1));
    for (let n = Math.floor(random() * 8); n > 0; n--) {
      bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
    }
    const text = new TextDecoder().decode(bytes);
    try {
      inspectOffer(text);
    } catch (error) {
      assert.ok(error instanceof WebRtcError, `iteration ${i}: ${error}`);
      assert.ok(error.status === 400 || error.status === 406);
    }
  }
});
