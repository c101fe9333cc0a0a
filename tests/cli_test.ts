/**
 * `cli.ts serve` as a process: the README's command on the embedded defaults (one warning
 * line), flags over `ARCLY_*` variables over the config file, and a config that cannot run
 * refused with exit code 2 and the file, line and key, before anything listens.
 */

import assert from "node:assert/strict";
import { startServe } from "./_util/serve.ts";
import { freeUdpPair } from "./ingest/rtsp/_util.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

Deno.test("deno task serve (cli.ts serve with its V8 flags) with no config file starts on the defaults, with one warning", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "arcly-cli-" });
  // The default ports may be taken on a shared machine: only the addresses come from the
  // environment, everything else is the embedded defaults.
  const env = {
    ARCLY_RTMP: "127.0.0.1:0",
    ARCLY_RTSP: "127.0.0.1:0",
    ARCLY_SRT: "127.0.0.1:0",
    ARCLY_HTTP: "127.0.0.1:0",
    ARCLY_RTSP_RTP_PORT: String(await freeUdpPair()),
  };
  const server = await startServe(["rtmp", "rtsp", "srt", "http"], [], { flagged: [], cwd, env });
  try {
    const streams = await fetch(`http://127.0.0.1:${server.ports.http}/v1/streams`);
    assert.deepEqual(await streams.json(), []);
  } finally {
    assert.equal(await server.stop(), 0, server.log.join("\n"));
    await Deno.remove(cwd, { recursive: true });
  }
  const warnings = server.log.filter((line) => / WARN /.test(line));
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /no config file \(arcly\.yml.*embedded defaults, open to everyone/);
});

Deno.test("ARCLY_* variables override flags, which override the config file", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "arcly-cli-" });
  await Deno.writeTextFile(
    `${cwd}/custom.yml`,
    [
      "rtmp: { listen: 127.0.0.1:0 }", // ARCLY_RTMP=off wins: off
      "http: { listen: off }", // ARCLY_HTTP wins: on
      "rtsp: { listen: off }", // --rtsp wins: on
      "srt: { listen: off }", // --srt off, then ARCLY_SRT wins: on
      "quiet: false",
    ].join("\n"),
  );
  const env = {
    ARCLY_CONFIG: "custom.yml",
    ARCLY_RTMP: "off",
    ARCLY_HTTP: "127.0.0.1:0",
    ARCLY_SRT: "127.0.0.1:0",
    ARCLY_RTSP_RTP_PORT: String(await freeUdpPair()),
  };
  const server = await startServe(["rtsp", "srt", "http"], [
    "--rtsp",
    "127.0.0.1:0",
    "--srt",
    "off",
  ], {
    flagged: [],
    cwd,
    env,
  });
  try {
    assert.equal(server.ports.rtmp, undefined, server.log.join("\n"));
  } finally {
    assert.equal(await server.stop(), 0);
    await Deno.remove(cwd, { recursive: true });
  }
  assert.ok(!server.log.some((line) => /no config file/.test(line)), "custom.yml was read");
});

Deno.test("a config that cannot run: exit 2, FILE:LINE:COL: KEY: REASON, nothing started", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "arcly-cli-" });
  await Deno.writeTextFile(
    `${cwd}/arcly.yml`,
    "rtmp:\n  listen: 127.0.0.1:0\nhls:\n  segmentType: mp4\nhttp:\n  listen: 127.0.0.1:0\n",
  );
  try {
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI, "serve", "--rtsp", "off", "--srt", "off", ...args],
        cwd,
        env,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
        signal: AbortSignal.timeout(30_000),
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const bad = await run([]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /^arcly\.yml:4:3: hls\.segmentType: must be one of ts, fmp4/m);
    assert.doesNotMatch(bad.stderr, /listening/);
    // A flag and a variable are named as such.
    const flagged = await run(["--hls-segment-type", "fmp4", "--http", "x"], {
      ARCLY_RTSP_RTP_PORT: "0",
    });
    assert.equal(flagged.code, 2, flagged.stderr);
    assert.match(flagged.stderr, /^--http: "x" is not PORT/m);
    assert.match(flagged.stderr, /^ARCLY_RTSP_RTP_PORT: must be >= 1/m);
    assert.doesNotMatch(flagged.stderr, /segmentType/, "the flag overrode the file's mistake");
    // The cluster's flags and variables are its config keys.
    const cluster = await run(["--hls-segment-type", "fmp4", "--cluster-advertise", "srt://a"], {
      ARCLY_CLUSTER_REDIS: "redis://127.0.0.1:1",
    });
    assert.equal(cluster.code, 2, cluster.stderr);
    assert.match(cluster.stderr, /^--cluster-advertise: an srt:\/\/ URL needs its port$/m);
    const missing = await run(["--config", "nope.yml"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^nope\.yml: cannot read/m);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});
