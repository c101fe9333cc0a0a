/**
 * `cli.ts serve --config FILE` hot reload, end to end with ffmpeg: an edit that opens a new
 * app applies at once (a publish there, refused before, now works); a broken edit is refused
 * with its file, line and reason while the old config keeps running; SIGHUP rereads the file;
 * and through all of it a publisher that was live keeps publishing and its HTTP-FLV player
 * keeps receiving, without a gap.
 */

import assert from "node:assert/strict";
import { probePackets, Procs, publishLive } from "../_util/ffmpeg.ts";
import { testsWith } from "../_util/tools.ts";
import { startServe, waitFor } from "../_util/serve.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });
const procs = new Procs();

test.ffmpeg("config reload: a new app applies, a broken edit is refused, live streams go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-reload-" });
  const file = `${dir}/arcly.yml`;
  const config = (apps: string) =>
    `# test config\napps: ${apps}\npaths:\n  live/*:\n    gopCache: 512\n`;
  await Deno.writeTextFile(file, config("[live]"));
  const server = await startServe(["rtmp", "http"], ["--config", file]);
  const rtmp = `rtmp://127.0.0.1:${server.ports.rtmp}`;
  const http = `http://127.0.0.1:${server.ports.http}`;
  const logged = (re: RegExp, from = 0) =>
    waitFor(`a log line matching ${re}`, () => server.log.slice(from).find((l) => re.test(l)));
  try {
    const publisher = publishLive(procs, `${rtmp}/live/a`, 9);
    await waitFor("live/a", async () => {
      const response = await fetch(`${http}/v1/streams/live/a`);
      await response.body?.cancel();
      return response.ok || undefined;
    });
    const player = procs.run("ffmpeg", [
      ...["-v", "warning", "-i", `${http}/live/a.flv`],
      ...["-c", "copy", "-f", "flv", "-y", `${dir}/player.flv`],
    ], 60_000);

    const refused = await publishLive(procs, `${rtmp}/cams/x`, 1);
    assert.notEqual(refused.code, 0, "no app cams yet");

    let mark = server.log.length;
    await Deno.writeTextFile(file, config("[live, cams]"));
    await logged(/config .*arcly\.yml reloaded on change: applied apps$/, mark);
    const opened = await publishLive(procs, `${rtmp}/cams/x`, 1);
    assert.equal(opened.code, 0, `cams/x may publish after the reload: ${opened.stderr}`);

    mark = server.log.length;
    await Deno.writeTextFile(file, config("[live"));
    const error = await logged(/ERROR config not reloaded, the running one stays: /, mark);
    assert.match(error, /arcly\.yml:\d+:\d+: /, "the error says where");
    const still = await publishLive(procs, `${rtmp}/cams/y`, 1);
    assert.equal(still.code, 0, `the old config still runs: ${still.stderr}`);

    mark = server.log.length;
    await Deno.writeTextFile(file, config("[live, cams]"));
    await logged(/reloaded on change: no change to apply$/, mark);
    mark = server.log.length;
    server.signal("SIGHUP");
    await logged(/reloaded on SIGHUP: no change to apply$/, mark);

    const published = await publisher;
    assert.equal(published.code, 0, published.stderr);
    const played = await player;
    assert.equal(played.code, 0, played.stderr);
    assert.equal(played.stderr, "", "no warnings from the player");
    const video = (await probePackets(`${dir}/player.flv`)).find((s) => s.codecType === "video")!;
    const [num, den] = video.timeBase;
    const seconds = video.packets.map((p) => p.dts! * num / den);
    const gaps = seconds.slice(1).map((t, i) => t - seconds[i]);
    assert.ok(seconds.at(-1)! - seconds[0] > 4, `the player got ${seconds.at(-1)! - seconds[0]} s`);
    assert.ok(Math.max(...gaps) < 0.2, `no gap in what the player got: ${Math.max(...gaps)} s`);
  } finally {
    procs.killAll();
    const code = await server.stop();
    await Deno.remove(dir, { recursive: true });
    assert.equal(code, 0, `serve exits 0 on SIGTERM:\n${server.log.join("\n")}`);
  }
});
