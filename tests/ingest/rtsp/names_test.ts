import assert from "node:assert/strict";
import { Registry } from "../../../mod.ts";
import { serveRtsp } from "../../../ingest/rtsp/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { RtspClient } from "./_client.ts";
import { announceSdp } from "./_util.ts";

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;
const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);
const SDP = announceSdp(SPS, PPS);

Deno.test("rtsp names: ANNOUNCE of a name with control characters gets 400; DESCRIBE of one 404; log lines (also quoting SDP) stay one line each", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const server = serveRtsp({ registry, hostname: "127.0.0.1", port: 0, udp: false, logger: log });
  const url = `rtsp://127.0.0.1:${server.addr.port}/live/cam%0A2026%20INFO%20forged%00%1B[2J`;
  const client = await RtspClient.open(server.addr.port);
  try {
    const headers = { "Content-Type": "application/sdp" };
    assert.equal((await client.request("ANNOUNCE", url, headers, SDP)).status, 400);
    assert.equal(registry.list().length, 0);
    assert.equal((await client.request("DESCRIBE", url)).status, 404);
    const refused = await log.waitFor(/ANNOUNCE refused with 400/);
    assert.match(refused, /live\/cam\\n2026 INFO forged\\x00\\x1b\[2J/);
    await log.waitFor(/DESCRIBE refused with 404/);
    // A codec name quoted back from the SDP is escaped too.
    const evil = SDP.replace("H264/90000", "EVIL\x1b[2J\x00/90000");
    const announce = await client.request(
      "ANNOUNCE",
      `rtsp://127.0.0.1:${server.addr.port}/live/x`,
      headers,
      evil,
    );
    assert.equal(announce.status, 415);
    await log.waitFor(/codec EVIL\\x1b\[2J\\x00 is not supported/);
    for (const line of log.lines) assert.doesNotMatch(line, CONTROL, JSON.stringify(line));
  } finally {
    client.close();
    await server.close();
    await client.closed;
  }
});
