import assert from "node:assert/strict";
import { Registry } from "../../../mod.ts";
import { serveHttp } from "../../../ingest/http/server.ts";
import { WebRtcServer } from "../../../ingest/webrtc/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { H264, makeOffer } from "./_offers.ts";

Deno.test("webrtc names: WHIP and WHEP for a stream name with (escaped) control characters get 400, nothing is published, and an offer's control characters are logged escaped", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const webrtc = new WebRtcServer({ hosts: ["127.0.0.1"], logger: log, registry });
  const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${http.addr.port}/live/cam%0AINFO%20forged%00`;
  try {
    for (const endpoint of ["whip", "whep"]) {
      const response = await fetch(`${base}/${endpoint}`, {
        method: "POST",
        body: makeOffer({ video: [H264] }),
        headers: { "content-type": "application/sdp" },
      });
      assert.equal(response.status, 400, endpoint);
      assert.match(await response.text(), /stream name/);
    }
    assert.equal(registry.list().length, 0);
    // An offer quoting control characters back in its error is logged on one line.
    const hostile = makeOffer({ video: [H264] }).replace("UDP/TLS/RTP/SAVPF", "RTP/AVP\x1b[2J\x00");
    const refused = await fetch(`http://127.0.0.1:${http.addr.port}/live/cam/whip`, {
      method: "POST",
      body: hostile,
      headers: { "content-type": "application/sdp" },
    });
    await refused.body?.cancel();
    assert.equal(refused.status, 400);
    const line = await log.waitFor(/whip live\/cam from .* 400/);
    assert.match(line, /RTP\/AVP\\x1b\[2J\\x00/);
    for (const l of log.lines) assert.doesNotMatch(l, /\p{Cc}/u, JSON.stringify(l));
    // Other paths with such names are not the WebRTC route's.
    const page = await fetch(`${base}/`);
    await page.body?.cancel();
    assert.equal(page.status, 404);
  } finally {
    await webrtc.close();
    await http.close();
  }
});
