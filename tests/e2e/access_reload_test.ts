/**
 * Access rules from the config, through `serve()`, with ffmpeg: a publisher and a player
 * admitted by their credentials; a reload that revokes read access ends neither of them
 * and refuses the next reader, over RTMP and HTTP alike.
 */

import assert from "node:assert/strict";
import { probePackets, Procs, publishLive } from "../_util/ffmpeg.ts";
import { testsWith } from "../_util/tools.ts";
import { startServer, waitFor } from "../_util/serve.ts";
import type { AccessConfig } from "../../server/access/mod.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });
const procs = new Procs();

const publisher = { user: "cam", secret: "cam-pw", permissions: [{ action: "publish" as const }] };
const viewer = { user: "viewer", secret: "view-pw", permissions: [{ action: "read" as const }] };

test.ffmpeg("access reload: revoking read refuses the next reader, admitted ones go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-access-" });
  const access: AccessConfig = { grants: [publisher, viewer] };
  const server = await startServer(["rtmp", "http"], { access });
  const rtmp = `rtmp://127.0.0.1:${server.ports.rtmp}/live`;
  const http = `http://127.0.0.1:${server.ports.http}`;
  const asViewer = "user=viewer&pass=view-pw";
  try {
    const published = publishLive(procs, `${rtmp}/a?user=cam&pass=cam-pw`, 8);
    await waitFor("live/a", () => server.server.registry.get("live", "a"));
    assert.equal((await fetch(`${http}/live/a.flv`).then(closed)).status, 401);
    const player = procs.run("ffmpeg", [
      ...["-v", "warning", "-i", `${http}/live/a.flv?${asViewer}`],
      ...["-c", "copy", "-f", "flv", "-y", `${dir}/player.flv`],
    ], 60_000);
    // Admitted, on whichever worker took it.
    await server.log.waitFor(/http-flv \S+: play live\/a/, 20_000);
    const result = await server.server.reload({
      ...server.config,
      access: { grants: [publisher] },
    });
    assert.deepEqual(result.applied, ["access"]);
    assert.equal((await fetch(`${http}/live/a.flv?${asViewer}`).then(closed)).status, 403);
    const refused = await procs.run("ffmpeg", [
      ...["-v", "error", "-i", `${rtmp}/a?${asViewer}`, "-t", "1", "-f", "null", "-"],
    ], 30_000);
    assert.notEqual(refused.code, 0, "an RTMP reader is refused too");
    await server.log.waitFor(/access: refused read "live\/a" via rtmp/);

    const publish = await published;
    assert.equal(publish.code, 0, `the publisher went on: ${publish.stderr}`);
    const played = await player;
    assert.equal(played.code, 0, played.stderr);
    assert.equal(played.stderr, "", "no warnings from the admitted player");
    const video = (await probePackets(`${dir}/player.flv`)).find((s) => s.codecType === "video")!;
    const [num, den] = video.timeBase;
    const span = (video.packets.at(-1)!.dts! - video.packets[0].dts!) * num / den;
    assert.ok(span > 4, `the admitted player got ${span} s, past the reload`);
  } finally {
    procs.killAll();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** `response` with its body read and dropped. */
async function closed(response: Response): Promise<Response> {
  await response.body?.cancel();
  return response;
}
