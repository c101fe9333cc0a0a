/**
 * RTMP and HTTP-FLV players of `cli.ts serve` decode without a warning: ffmpeg
 * `-v warning -xerror` decodes what a late joiner gets (the replayed GOP, then live frames).
 */

import assert from "node:assert/strict";
import { Procs, publishLive } from "../_util/ffmpeg.ts";
import { startServe, waitFor } from "../_util/serve.ts";

const procs = new Procs();

Deno.test("play decode: ffmpeg -xerror decodes RTMP and HTTP-FLV play silently", async () => {
  const server = await startServe(["rtmp", "http"]);
  const rtmp = `rtmp://127.0.0.1:${server.ports.rtmp}/live/d`;
  const http = `http://127.0.0.1:${server.ports.http}`;
  try {
    const publisher = publishLive(procs, rtmp, 6);
    await waitFor("live/d", async () => {
      const response = await fetch(`${http}/v1/streams/live/d`);
      await response.body?.cancel();
      return response.ok || undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 1500)); // join mid-GOP
    const decode = (url: string) =>
      procs.run("ffmpeg", ["-v", "warning", "-xerror", "-i", url, "-f", "null", "-"], 60_000);
    const players = await Promise.all([decode(rtmp), decode(`${http}/live/d.flv`)]);
    for (const player of players) {
      assert.equal(player.code, 0, player.stderr);
      assert.equal(player.stderr, "", "no warnings from the player");
    }
    assert.equal((await publisher).code, 0);
  } finally {
    procs.killAll();
    await server.stop();
  }
});
