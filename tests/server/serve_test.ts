/**
 * `serve()` in process: bound addresses with port 0, a config that cannot run starts
 * nothing, a listener that cannot bind rejects `ready` and closes the rest, and `reload()`
 * applies apps, paths and recording to what comes next without touching a live stream.
 */

import assert from "node:assert/strict";
import { ConfigError, serve, type ServerConfig } from "../../server/mod.ts";
import { freeUdpPair } from "../ingest/rtsp/_util.ts";
import { LogLines } from "../_util/log.ts";
import { videoFrame } from "../_util/frames.ts";
import { makeCert } from "../_util/tls.ts";

const LOOPBACK = "127.0.0.1:0";

Deno.test("serve() binds every listener on port 0 and tells the bound addresses", async () => {
  const rtpPort = await freeUdpPair();
  const log = new LogLines();
  const server = serve({
    rtmp: { listen: LOOPBACK },
    rtsp: { listen: LOOPBACK, rtpPort },
    srt: { listen: LOOPBACK },
    http: { listen: LOOPBACK },
  }, { logger: log });
  await server.ready;
  try {
    const { rtmp, rtsp, rtspUdp, srt, http } = server.addresses;
    for (const addr of [rtmp, rtsp, srt, http]) {
      assert.ok(addr && addr.hostname === "127.0.0.1" && addr.port > 0, JSON.stringify(addr));
    }
    assert.deepEqual(rtspUdp, { rtpPort, rtcpPort: rtpPort + 1 });
    const response = await fetch(`http://127.0.0.1:${http!.port}/v1/streams`);
    assert.deepEqual(await response.json(), []);
    // Something listens on the RTMP and RTSP ports.
    for (const port of [rtmp!.port, rtsp!.port]) (await Deno.connect({ port })).close();
    await log.waitFor(new RegExp(`rtmp listening on 127\\.0\\.0\\.1:${rtmp!.port}$`));
  } finally {
    await server.close();
  }
  await assert.rejects(Deno.connect({ port: server.addresses.rtmp!.port }), "closed");
});

Deno.test("protocol options reach the protocols: rtsp.udp false binds no UDP ports", async () => {
  const server = serve({
    rtmp: { listen: "off" },
    rtsp: { listen: LOOPBACK, udp: false },
    srt: { listen: "off" },
    http: { listen: "off" },
  });
  await server.ready;
  try {
    assert.ok(server.addresses.rtsp);
    assert.equal(server.addresses.rtspUdp, undefined);
  } finally {
    await server.close();
  }
});

Deno.test("a config that cannot run throws at once and starts nothing", () => {
  assert.throws(
    () => serve({ rtmp: { listen: "nope" }, http: { listen: LOOPBACK } }),
    (error) => error instanceof ConfigError && error.problems[0].path.join(".") === "rtmp.listen",
  );
});

Deno.test("a listener that cannot bind rejects ready and closes what had started", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = serve({
    rtmp: { listen: LOOPBACK },
    rtsp: { listen: "off" },
    srt: { listen: "off" },
    http: { listen: `127.0.0.1:${taken.addr.port}` },
  });
  try {
    await assert.rejects(server.ready, Deno.errors.AddrInUse);
    await assert.rejects(Deno.connect({ port: server.addresses.rtmp!.port }), "rtmp closed");
    await server.close(); // harmless after a failed start
  } finally {
    taken.close();
  }
});

Deno.test("reload applies apps, paths and recording to what comes next; live streams go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-reload-" });
  const log = new LogLines();
  const base = {
    rtmp: { listen: LOOPBACK },
    rtsp: { listen: "off" },
    srt: { listen: "off" },
    http: { listen: "off" },
    record: { dir },
  } as const;
  const server = serve({ ...base, paths: { "live/*": { record: false } } }, { logger: log });
  await server.ready;
  const { registry } = server;
  try {
    const live = registry.startPublish("live", "a", { protocol: "test" });
    const player = live.subscribe().getReader();
    assert.throws(() => registry.startPublish("cams", "x"), { name: "PublishError" });

    const result = await server.reload({
      ...base,
      rtmp: { listen: "127.0.0.1:1", idleTimeoutMs: 1000 },
      apps: ["live", "cams"],
      paths: { "cams/big": { gopCache: 4096 }, "cams/*": { record: true } },
    });
    assert.deepEqual(result, {
      applied: ["apps", "paths"],
      restartNeeded: ["rtmp.listen", "rtmp.idleTimeoutMs"],
    });
    assert.equal(server.addresses.rtmp!.port > 1, true, "the listener stays where it was");

    // The stream published before the reload goes on, and so does its player.
    assert.equal(registry.get("live", "a"), live);
    live.publish(videoFrame(0, true));
    assert.equal((await player.read()).value?.pts, 0);

    const big = registry.startPublish("cams", "big");
    assert.equal(big.gopCapacity, 4096, "the path's GOP cache");
    assert.equal(registry.startPublish("cams", "small").gopCapacity, 1024);
    registry.endPublish(big);
    await log.waitFor(/record cams\/small to /);
    assert.ok(!log.lines.some((l) => / record live\/a /.test(l)), "live/* is not recorded");

    // A reload that cannot run changes nothing.
    await assert.rejects(server.reload({ ...base, apps: ["bad/app"] }), {
      name: "ConfigError",
      message:
        'apps.0: "bad/app" is not an app name: letters, digits and _ . ~ -, not starting with a dot',
    });
    assert.equal(registry.startPublish("cams", "later").closed, false, "cams still open");
    assert.equal(live.closed, false);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("access rules guard every listener: RTSP challenges, HTTP asks, a reload opens up", async () => {
  const config: ServerConfig = {
    rtmp: { listen: "off" },
    rtsp: { listen: LOOPBACK, rtpPort: await freeUdpPair() },
    srt: { listen: "off" },
    http: { listen: LOOPBACK },
  };
  const server = serve({
    ...config,
    access: { grants: [{ user: "u", secret: "pw", permissions: [{ action: ["read", "api"] }] }] },
  });
  await server.ready;
  try {
    const conn = await Deno.connect({ port: server.addresses.rtsp!.port });
    await conn.write(new TextEncoder().encode(
      `DESCRIBE rtsp://127.0.0.1/live/a RTSP/1.0\r\nCSeq: 1\r\n\r\n`,
    ));
    const buffer = new Uint8Array(4096);
    const answer = new TextDecoder().decode(buffer.subarray(0, (await conn.read(buffer)) ?? 0));
    conn.close();
    assert.match(answer, /^RTSP\/1\.0 401 /);
    assert.match(answer, /WWW-Authenticate: Digest /i, "plain secrets: Digest offered");

    const api = `http://127.0.0.1:${server.addresses.http!.port}/v1/streams`;
    const refused = await fetch(api);
    await refused.body?.cancel();
    assert.equal(refused.status, 401);
    const allowed = await fetch(api, { headers: { authorization: `Basic ${btoa("u:pw")}` } });
    assert.deepEqual(await allowed.json(), []);
    assert.deepEqual((await server.reload(config)).applied, ["access"]);
    const open = await fetch(api);
    assert.deepEqual(await open.json(), [], "no access rules: open again");
  } finally {
    await server.close();
  }
});

Deno.test("TLS listeners from the config: rtmps and https bound beside plain rtmp, https answers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-serve-tls-" });
  const { certFile, keyFile, cert } = await makeCert(dir, "server");
  const server = serve({
    rtmp: { listen: LOOPBACK },
    rtmps: { listen: LOOPBACK },
    rtsp: { listen: "off" },
    srt: { listen: "off" },
    http: { listen: "off" },
    https: { listen: LOOPBACK },
    tls: { cert: certFile, key: keyFile },
  });
  const client = Deno.createHttpClient({ caCerts: [cert] });
  try {
    await server.ready;
    const { rtmp, rtmps, http, https } = server.addresses;
    assert.ok(rtmp && rtmps && rtmp.port !== rtmps.port, JSON.stringify(server.addresses));
    assert.equal(http, undefined, "no plain HTTP");
    const response = await fetch(`https://localhost:${https!.port}/v1/streams`, { client });
    assert.deepEqual(await response.json(), []);
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
