/**
 * SRT encryption from the config, with ffmpeg: `srt.passphrase` for every stream, a path's
 * `srtPassphrase` of its own (or `false`: in clear), and a reload that changes a path's
 * passphrase for the next caller.
 */

import assert from "node:assert/strict";
import { Procs, sine, testsrc, x264 } from "../_util/ffmpeg.ts";
import { startServer } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg"] });
const procs = new Procs();

const GLOBAL = "global-secret-0123";
const OWN = "own-secret-456789";

test.ffmpeg("srt config: a passphrase for all, one per path, clear by path, changed by reload", async () => {
  const server = await startServer(["srt"], {
    srt: { passphrase: GLOBAL },
    paths: { "live/own": { srtPassphrase: OWN }, "live/open": { srtPassphrase: false } },
  });
  /** ffmpeg publishing 1 s to `key` with `passphrase` (none when undefined); its exit code. */
  const publish = async (key: string, passphrase?: string) => {
    const secret = passphrase === undefined ? "" : `&passphrase=${passphrase}`;
    const result = await procs.run("ffmpeg", [
      ...["-v", "error", "-re", ...testsrc({ duration: 1 }), ...sine({ duration: 1 })],
      ...x264({ gop: 25 }),
      ...["-c:a", "aac", "-f", "mpegts"],
      `srt://127.0.0.1:${server.ports.srt}?streamid=publish:${key}&pkt_size=1316${secret}`,
    ], 30_000);
    return result.code;
  };
  try {
    assert.equal(await publish("live/a", GLOBAL), 0, "srt.passphrase admits");
    assert.notEqual(await publish("live/b"), 0, "no passphrase is refused");
    assert.notEqual(await publish("live/c", OWN), 0, "another stream's passphrase is refused");
    assert.equal(await publish("live/own", OWN), 0, "the path's own passphrase admits");
    assert.notEqual(await publish("live/own", GLOBAL), 0, "srt.passphrase does not, there");
    assert.equal(await publish("live/open"), 0, "srtPassphrase false: in clear");

    const result = await server.server.reload({
      ...server.config,
      paths: { "live/own": { srtPassphrase: "changed-secret-00" } },
    });
    assert.deepEqual(result.applied, ["paths"]);
    assert.notEqual(await publish("live/own", OWN), 0, "the old passphrase no longer admits");
    assert.equal(await publish("live/own", "changed-secret-00"), 0, "the new one does");
    assert.notEqual(await publish("live/open"), 0, "live/open now takes srt.passphrase");
    await server.log.waitFor(/wrong passphrase for live\/own/);
  } finally {
    procs.killAll();
    await server.stop();
  }
});
