import assert from "node:assert/strict";
import { Registry } from "../../../mod.ts";
import { serveRtmp } from "../../../ingest/rtmp/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { within } from "../../_util/within.ts";
import { statusCode, TestClient } from "./_client.ts";

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

Deno.test("rtmp names: a stream name with control characters is refused with BadName; log lines stay one line each", async () => {
  const registry = new Registry();
  const log = new LogLines();
  const server = serveRtmp({ hostname: "127.0.0.1", port: 0, logger: log, registry });
  const port = server.addr.port;
  const forged = "cam\n2026-12-01T00:00:00.000Z INFO publish live/forged\x00\x1b[2J";
  try {
    const publisher = await TestClient.open(port);
    await publisher.handshake();
    assert.equal(
      await publisher.publish(await publisher.connect(), forged),
      "NetStream.Publish.BadName",
    );
    await within(publisher.closed, 3000, "refused publisher disconnect");
    assert.equal(registry.list().length, 0);

    const player = await TestClient.open(port);
    await player.handshake();
    await player.command(await player.connect(), "play", 3, null, forged);
    assert.equal(
      statusCode(await player.nextCommand(["onStatus"])),
      "NetStream.Play.StreamNotFound",
    );
    await within(player.closed, 3000, "refused player disconnect");

    const refused = await log.waitFor(/publish live\/cam.*refused/);
    assert.match(
      refused,
      /live\/cam\\n2026-12-01T00:00:00\.000Z INFO publish live\/forged\\x00\\x1b\[2J/,
    );
    await log.waitFor(/play live\/cam.*stream not found/);
    for (const line of log.lines) assert.doesNotMatch(line, CONTROL, JSON.stringify(line));
  } finally {
    await server.close();
  }
});
