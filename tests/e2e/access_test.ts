/**
 * Access control with real clients: one AccessPolicy as the registry's authorize hook,
 * ffmpeg publishing and playing over RTMP, RTSP (Digest) and SRT with right, wrong and
 * missing credentials while an admitted stream keeps playing; hls.js in Chromium playing
 * a stream guarded by a JWT from a JWKS the test serves; Chromium publishing over WHIP with
 * a Bearer token from a grant; an HTTP auth hook deciding an RTMP publish.
 */

import assert from "node:assert/strict";
import { Registry } from "../../mod.ts";
import { serveRtmp } from "../../ingest/rtmp/mod.ts";
import { serveRtsp } from "../../ingest/rtsp/mod.ts";
import { serveSrt } from "../../ingest/srt/mod.ts";
import {
  LiveHls,
  Metrics,
  metricsRoute,
  serveHttp,
  streamsApi,
  withAccessControl,
} from "../../ingest/http/mod.ts";
import { WebRtcServer } from "../../ingest/webrtc/mod.ts";
import { type AccessConfig, AccessPolicy, hashSecret, rtspAuth } from "../../server/access/mod.ts";
import { Procs, publishLive, sine, testsrc } from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { waitFor } from "../_util/serve.ts";
import { PLAYBACK_EVENT, watchWithHlsJs } from "../_util/hlsjs.ts";
import { openInChromium } from "../_util/browser.ts";
import { freeUdpPair } from "../ingest/rtsp/_util.ts";
import { keyPair, signJwt, tamper } from "../server/access/_sign.ts";

/** Publishers hold hashed secrets; the RTSP users plain text, which Digest needs. */
async function grants(): Promise<AccessConfig["grants"]> {
  return [
    {
      user: "cam",
      secret: await hashSecret("cam-pw", 10_000),
      permissions: [{ action: "publish", path: "live/*" }],
    },
    { user: "viewer", secret: "view-pw", permissions: [{ action: "read", path: "live/*" }] },
    { user: "rtsp-cam", secret: "rtsp-pw", permissions: [{ action: "publish", path: "live/*" }] },
  ];
}

/** ffmpeg publishing 8 s of live H.264 + AAC with `output` (format and URL). */
function publish(procs: Procs, level: string, output: string[]) {
  return procs.run("ffmpeg", [
    ...["-v", level, "-re", ...testsrc({ duration: 8 }), ...sine({ duration: 8 })],
    ...["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p"],
    ...["-c:a", "aac", ...output],
  ], 30_000);
}

/** ffmpeg reading `seconds` of `url` to nowhere. */
function play(procs: Procs, url: string, seconds: number, input: string[] = []) {
  return procs.run(
    "ffmpeg",
    ["-v", "warning", ...input, "-i", url, "-t", String(seconds), "-f", "null", "-"],
    30_000,
  );
}

/** An RTMP server whose registry asks a policy made of `config`, for the length of `run`. */
async function withRtmp(
  config: AccessConfig,
  run: (server: {
    policy: AccessPolicy;
    registry: Registry;
    base: string;
    log: LogLines;
    procs: Procs;
    port: number;
  }) => Promise<void>,
): Promise<void> {
  const log = new LogLines();
  const policy = new AccessPolicy(config, { logger: log });
  const registry = new Registry({ authorize: policy.authorize });
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, logger: log });
  const procs = new Procs();
  try {
    const port = rtmp.addr.port;
    await run({ policy, registry, base: `rtmp://127.0.0.1:${port}/live`, log, procs, port });
  } finally {
    procs.killAll();
    await rtmp.close();
    registry.closeAll();
  }
}

Deno.test("RTMP: ?user=&pass= on the stream key admits; wrong or missing credentials are refused; the admitted stream plays on", async () => {
  await withRtmp({ grants: await grants() }, async ({ registry, base, log, procs, port }) => {
    const publisher = publishLive(procs, `${base}/a?user=cam&pass=cam-pw`, 8);
    await waitFor("the publish", () => registry.get("live", "a"));
    const viewer = play(procs, `${base}/a?user=viewer&pass=view-pw`, 4);
    await waitFor("the player", () => registry.get("live", "a")!.readerCount > 0 || undefined);
    const refused = await Promise.all([
      publishLive(procs, `${base}/b`, 2),
      publishLive(procs, `${base}/b?user=cam&pass=nope`, 2),
      publishLive(procs, `${base}/a?user=viewer&pass=view-pw`, 2),
      play(procs, `${base}/a`, 2),
      play(procs, `${base}/a?user=viewer&pass=wrong`, 2),
      play(procs, `${base}/missing?user=viewer&pass=wrong`, 2),
    ]);
    for (const r of refused) assert.notEqual(r.code, 0, r.stderr);
    assert.equal(registry.get("live", "b"), undefined);
    // credentials on the app (tcUrl) instead of the stream key
    const onApp = await procs.run("ffmpeg", [
      ...["-v", "error", ...testsrc({ duration: 1 }), "-c:v", "libx264", "-f", "flv"],
      ...["-rtmp_app", "live?user=cam&pass=cam-pw", "-rtmp_playpath", "z"],
      `rtmp://127.0.0.1:${port}`,
    ], 30_000);
    assert.equal(onApp.code, 0, onApp.stderr);
    await log.waitFor(/publish live\/z\b/);
    const watched = await viewer;
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(watched.stderr, "");
    assert.ok(registry.get("live", "a"), "the admitted publish went on");
    const published = await publisher;
    assert.equal(published.code, 0, published.stderr);
    await log.waitFor(
      /access: refused publish "live\/b" via rtmp from "127\.0\.0\.1:\d+": .*no user/,
    );
    await log.waitFor(/wrong password for user "cam"/);
    await log.waitFor(/refused publish "live\/a" .*user "viewer" may not publish/);
    await log.waitFor(/refused read "live\/missing"/);
    // a refused player learns nothing of which streams exist: the same refusal either way
    const same = (text: string) =>
      text.replace(/\/(a|missing)\b/g, "/X").replace(/0x[0-9a-f]+/g, "");
    assert.equal(same(refused[4].stderr), same(refused[5].stderr));
  });
});

Deno.test("RTSP: ffmpeg publishes and plays with Digest credentials; wrong or missing ones get 401", async () => {
  const log = new LogLines();
  // Digest needs plain-text secrets: the users with hashed ones are left out here
  const plain = (await grants())!.filter((g) => !g.secret?.startsWith("pbkdf2-"));
  const policy = new AccessPolicy({ grants: plain }, { logger: log });
  assert.deepEqual(rtspAuth(policy).schemes, ["digest", "basic"]);
  const registry = new Registry({ authorize: policy.authorize });
  const digestLookups: string[] = [];
  const rtsp = serveRtsp({
    registry,
    hostname: "127.0.0.1",
    port: 0,
    rtpPort: await freeUdpPair(),
    logger: log,
    auth: {
      ...rtspAuth(policy),
      password: (user) => {
        digestLookups.push(user);
        return policy.plainPassword(user);
      },
    },
  });
  await rtsp.ready;
  const url = (auth: string, name: string) =>
    `rtsp://${auth}127.0.0.1:${rtsp.addr.port}/live/${name}`;
  const procs = new Procs();
  try {
    const publisher = publish(procs, "warning", [
      ...["-f", "rtsp", "-rtsp_transport", "tcp", url("rtsp-cam:rtsp-pw@", "c")],
    ]);
    await waitFor("the publish", () => registry.get("live", "c"));
    const tcp = ["-rtsp_transport", "tcp"];
    const viewer = play(procs, url("viewer:view-pw@", "c"), 3, tcp);
    const refused = await Promise.all([
      play(procs, url("", "c"), 1, tcp),
      play(procs, url("viewer:nope@", "c"), 1, tcp),
      play(procs, url("viewer:nope@", "missing"), 1, tcp),
      procs.run("ffmpeg", [
        ...["-v", "warning", ...testsrc({ duration: 1 }), "-c:v", "libx264", "-f", "rtsp"],
        ...["-rtsp_transport", "tcp", url("viewer:view-pw@", "d")],
      ], 30_000),
    ]);
    for (const r of refused) {
      assert.notEqual(r.code, 0, r.stderr);
      assert.match(r.stderr, /401|Unauthorized|authoriz/i);
    }
    const watched = await viewer;
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(watched.stderr, "");
    assert.ok(digestLookups.includes("viewer") && digestLookups.includes("rtsp-cam"), "Digest");
    assert.equal(registry.get("live", "d"), undefined);
    const published = await publisher;
    assert.equal(published.code, 0, published.stderr);
  } finally {
    procs.killAll();
    await rtsp.close();
    registry.closeAll();
  }
});

Deno.test("SRT: publish:live/NAME:USER:PASS and #!::u=,s= admit; wrong ones are rejected (1403)", async () => {
  const log = new LogLines();
  const policy = new AccessPolicy({ grants: await grants() }, { logger: log });
  const registry = new Registry({ authorize: policy.authorize });
  const srt = await serveSrt({ registry, hostname: "127.0.0.1", port: 0, logger: log });
  const url = (id: string) => `srt://127.0.0.1:${srt.addr.port}?streamid=${id}&latency=1000000`;
  const procs = new Procs();
  try {
    // errors only, as tests/e2e/srt_test.ts publishes over SRT
    const publisher = publish(procs, "error", [
      ...["-f", "mpegts", `${url("publish:live/e:cam:cam-pw")}&pkt_size=1316`],
    ]);
    await waitFor("the publish", () => registry.get("live", "e"));
    const viewer = play(procs, url("#!::r=live/e,m=request,u=viewer,s=view-pw"), 1.5);
    const refused = await Promise.all([
      play(procs, url("read:live/e"), 1),
      play(procs, url("read:live/e:viewer:wrong"), 1),
      play(procs, url("#!::r=live/e,u=viewer,s=wrong"), 1),
      procs.run("ffmpeg", [
        ...["-v", "warning", ...testsrc({ duration: 1 }), "-c:v", "libx264", "-f", "mpegts"],
        url("publish:live/f:viewer:view-pw"),
      ], 30_000),
    ]);
    for (const r of refused) assert.notEqual(r.code, 0, r.stderr);
    const watched = await viewer;
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(registry.get("live", "f"), undefined);
    await log.waitFor(/srt .*rejected \(1403\)|not authorized/);
    await log.waitFor(/access: refused read "live\/e" via srt/);
    const published = await publisher;
    assert.equal(published.code, 0, published.stderr);
  } finally {
    procs.killAll();
    await srt.close();
    registry.closeAll();
  }
});

Deno.test("HLS: hls.js plays with ?token= (a JWT from a JWKS the test serves); the API and metrics have their own action", async () => {
  const { privateKey, jwk } = await keyPair("RS256", "test-key");
  const jwks = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ keys: [jwk] }),
  );
  const log = new LogLines();
  const policy = new AccessPolicy({
    grants: [...(await grants())!, { ips: ["127.0.0.1/32"], permissions: [{ action: "metrics" }] }],
    jwt: { jwksUrl: `http://127.0.0.1:${jwks.addr.port}/jwks.json` },
  }, { logger: log });
  const registry = new Registry({
    authorize: policy.authorize,
    observer: { onPublish: (key) => hls.start(key) }, // called once hls exists
  });
  const hls = new LiveHls({ registry, targetDuration: 1 });
  const metrics = new Metrics();
  const rtmp = serveRtmp({ registry, hostname: "127.0.0.1", port: 0, logger: log });
  const http = serveHttp({
    routes: [
      withAccessControl(registry, [
        streamsApi(registry),
        metricsRoute(metrics, registry),
        hls.route,
      ]),
    ],
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
  });
  const base = `http://127.0.0.1:${http.addr.port}`;
  const exp = Math.floor(Date.now() / 1000) + 300;
  const token = await signJwt(
    { exp, arcly: [{ action: "read", path: "live/h" }, { action: "api" }] },
    privateKey,
    "RS256",
    "test-key",
  );
  const procs = new Procs();
  try {
    const publisher = publishLive(
      procs,
      `rtmp://127.0.0.1:${rtmp.addr.port}/live/h?user=cam&pass=cam-pw`,
      12,
    );
    const get = async (path: string, headers: HeadersInit = {}) => {
      const response = await fetch(`${base}${path}`, { headers });
      return { status: response.status, text: await response.text(), headers: response.headers };
    };
    const listed = await waitFor("a segment in the playlist", async () => {
      const answer = await get(`/live/h/stream.m3u8?token=${token}`);
      return answer.status === 200 && answer.text.includes("#EXTINF") ? answer : undefined;
    });
    // refusals look the same whether the stream exists or not
    const none = await get("/live/h/index.m3u8");
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Basic realm=/);
    assert.deepEqual(await get("/live/nope/index.m3u8").then((r) => [r.status, r.text]), [
      401,
      none.text,
    ]);
    const forged = await get(`/live/h/index.m3u8?token=${tamper(token)}`);
    assert.equal(forged.status, 403);
    assert.deepEqual(
      await get(`/live/nope/index.m3u8?token=${tamper(token)}`).then((r) => [r.status, r.text]),
      [403, forged.text],
    );
    assert.equal((await get(`/live/other/index.m3u8?token=${token}`)).status, 403);
    // the playlist's URIs carry the token
    for (const line of listed.text.split("\n").filter((l) => l && !l.startsWith("#"))) {
      assert.ok(line.endsWith(`?token=${token}`), line);
    }
    // Basic credentials of a user work too
    assert.equal(
      (await get("/live/h/index.m3u8", { authorization: `Basic ${btoa("viewer:view-pw")}` }))
        .status,
      200,
    );
    // the API and metrics
    assert.equal((await get("/v1/streams")).status, 401);
    assert.equal((await get("/v1/streams", { authorization: `Bearer ${token}` })).status, 200);
    assert.equal((await get("/metrics")).status, 200, "127.0.0.1 may read the metrics");
    const report = await watchWithHlsJs(`${base}/live/h/index.m3u8?token=${token}`, { seconds: 2 });
    assert.deepEqual(report.errors.filter((e) => !PLAYBACK_EVENT.test(e)), []);
    assert.ok(report.fragments > 0, JSON.stringify(report));
    const ended = report.ranges.at(-1)![1] - report.ranges[0][0];
    assert.ok(ended >= 2, JSON.stringify(report));
    assert.ok(registry.get("live", "h"), "the publish is untouched");
    procs.killAll();
    await publisher;
  } finally {
    procs.killAll();
    await rtmp.close();
    registry.closeAll();
    await hls.close();
    await http.close();
    await jwks.shutdown();
  }
});

Deno.test("WHIP: Chromium publishes its camera through the publish page with a Bearer token from a grant", async () => {
  const log = new LogLines();
  const policy = new AccessPolicy({
    grants: [{
      token: await hashSecret("whip-token", 10_000),
      permissions: [{ action: "publish", path: "live/w" }],
    }],
  }, { logger: log });
  const registry = new Registry({ authorize: policy.authorize });
  const webrtc = new WebRtcServer({ registry, logger: log });
  const http = serveHttp({
    routes: [withAccessControl(registry, [webrtc.route])],
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
  });
  const base = `http://127.0.0.1:${http.addr.port}`;
  const status = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${base}${path}`, init);
    await response.body?.cancel();
    return response.status;
  };
  let browser: { close(): Promise<void> } | undefined;
  try {
    assert.equal(await status("/live/w/publish"), 401);
    assert.equal(await status("/live/w/publish?token=nope"), 403);
    assert.equal(await status("/live/other/publish?token=whip-token"), 403);
    const offer = {
      method: "POST",
      body: "v=0\r\n",
      headers: { "content-type": "application/sdp" },
    };
    assert.equal(await status("/live/w/whip", offer), 401);
    assert.equal(
      await status("/live/w/whip", {
        ...offer,
        headers: { ...offer.headers, authorization: "Bearer nope" },
      }),
      403,
    );
    browser = await openInChromium(`${base}/live/w/publish?token=whip-token`, [
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
    ]);
    const handle = await waitFor("the WHIP publish", () => registry.get("live", "w"), 40_000);
    const reader = handle.subscribe({ replay: true }).getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    await reader.cancel();
    await log.waitFor(/access: refused publish "live\/w" via whip .*(wrong token|no token given)/);
  } finally {
    await browser?.close();
    await webrtc.close();
    registry.closeAll();
    await http.close();
  }
});

Deno.test("HTTP hook: it gets the documented JSON for an RTMP publish, and its answer decides", async () => {
  const asked: unknown[] = [];
  const hook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const body = await request.json() as { token: string };
    asked.push(body);
    return new Response(null, { status: body.token === "good" ? 200 : 403 });
  });
  const url = `http://127.0.0.1:${hook.addr.port}/auth`;
  try {
    await withRtmp({ hook: { url, timeoutMs: 5000 } }, async ({ base, log, procs }) => {
      const [good, bad] = await Promise.all([
        publishLive(procs, `${base}/k?token=good`, 2),
        publishLive(procs, `${base}/k2?token=bad`, 2),
      ]);
      assert.equal(good.code, 0, good.stderr);
      assert.notEqual(bad.code, 0, bad.stderr);
      const question = (name: string, token: string) => ({
        action: "publish",
        path: `live/${name}`,
        protocol: "rtmp",
        user: "",
        password: "",
        token,
        ip: "127.0.0.1",
        query: `token=${token}`,
        id: "",
      });
      assert.deepEqual(
        new Set(asked.map((a) => JSON.stringify(a))),
        new Set([question("k", "good"), question("k2", "bad")].map((q) => JSON.stringify(q))),
      );
      await log.waitFor(/refused publish "live\/k2" via rtmp .*the auth hook answered 403/);
    });
  } finally {
    await hook.shutdown();
  }
});

Deno.test("policy update revoking read: the admitted publisher and player go on, the next player is refused", async () => {
  const config = { grants: await grants() };
  await withRtmp(config, async ({ policy, registry, base, log, procs }) => {
    const publisher = publishLive(procs, `${base}/r?user=cam&pass=cam-pw`, 8);
    await waitFor("the publish", () => registry.get("live", "r"));
    const viewer = play(procs, `${base}/r?user=viewer&pass=view-pw`, 4);
    await waitFor("the player", () => registry.get("live", "r")!.readerCount > 0 || undefined);
    policy.update({ grants: config.grants!.filter((g) => g.user !== "viewer") });
    const late = await play(procs, `${base}/r?user=viewer&pass=view-pw`, 1);
    assert.notEqual(late.code, 0, late.stderr);
    await log.waitFor(/refused read "live\/r"/);
    const watched = await viewer;
    assert.equal(watched.code, 0, watched.stderr);
    assert.equal(watched.stderr, "");
    const published = await publisher;
    assert.equal(published.code, 0, published.stderr);
  });
});
