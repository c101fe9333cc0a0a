/**
 * The RTSP pull client on the wire, against a scripted server: what it sends (Digest and
 * Basic answers, no credentials in request lines, control URLs from Content-Base and
 * Content-Location, keep-alives, receiver reports, TEARDOWN), hostile answers (late,
 * oversized, garbage), RTSPS with our own server, and bounded fuzzing of what it parses
 * (the response reader's is in message_test.ts).
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import {
  formatResponse,
  pullRtsp,
  RtspAuthenticator,
  RtspReader,
  type RtspRequest,
} from "../../../ingest/rtsp/mod.ts";
import { parseRtcp, RtcpType } from "../../../media/rtp/rtcp.ts";
import { parseChallenges } from "../../../ingest/rtsp/_client_auth.ts";
import { controlUrl, describeBase } from "../../../ingest/rtsp/_control_url.ts";
import { prng, randomText } from "../../_util/fuzz.ts";
import { LogLines } from "../../_util/log.ts";
import { within } from "../../_util/within.ts";
import { makeCert } from "../../_util/tls.ts";
import { Procs, publishLive } from "../../_util/ffmpeg.ts";
import { startServer, waitFor } from "../../_util/serve.ts";
import { testsWith } from "../../_util/tools.ts";
import { assertDecodes, checkFrames } from "./_pull.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg"] });
const enc = new TextEncoder();

/** An H.264 track whose SDP carries parameter sets (a 64x64 baseline SPS). */
const SDP = [
  "v=0",
  "o=- 0 0 IN IP4 127.0.0.1",
  "s=scripted",
  "t=0 0",
  "a=control:*",
  "m=video 0 RTP/AVP 96",
  "a=rtpmap:96 H264/90000",
  "a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z0LAHtkBAgOwEQAAAwABAAADADIPFi5I,aMuMsg==",
  "a=control:trackID=0",
  "",
].join("\r\n");

type Script = (req: RtspRequest, conn: Deno.Conn) => Uint8Array | null | Promise<Uint8Array | null>;

/** A scripted RTSP server on a free loopback port: each request gets what `script` returns. */
function scripted(script: Script) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: RtspRequest[] = [];
  const interleaved: { channel: number; data: Uint8Array }[] = [];
  const conns = new Set<Deno.Conn>();
  const done = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      void (async () => {
        const reader = new RtspReader((channel, data) => {
          interleaved.push({ channel, data: data.slice() });
        });
        const buf = new Uint8Array(65536);
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            for (const req of reader.push(buf.subarray(0, n))) {
              requests.push(req);
              const out = await script(req, conn);
              if (out) await conn.write(out);
            }
          }
        } catch {
          // closed
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed
          }
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    interleaved,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await done;
    },
  };
}

const ok = (req: RtspRequest, headers: [string, string][] = [], body = "") =>
  formatResponse(200, [["CSeq", req.headers.get("cseq")!], ...headers], body);

/** Answers a whole play: OPTIONS, DESCRIBE (`describe` headers), SETUP (TCP), PLAY, TEARDOWN. */
function player(
  describe: [string, string][] = [],
  publicMethods = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER",
): Script {
  return (req) => {
    switch (req.method) {
      case "OPTIONS":
        return ok(req, [["Public", publicMethods]]);
      case "DESCRIBE":
        return ok(req, [["Content-Type", "application/sdp"], ...describe], SDP);
      case "SETUP":
        return ok(req, [["Session", "s1;timeout=2"], ["Transport", req.headers.get("transport")!]]);
      default:
        return ok(req, [["Session", "s1"]]);
    }
  };
}

/** One RTP packet: a single NAL unit (an IDR slice) at `seq`. */
function rtpIdr(seq: number, ts: number): Uint8Array {
  const packet = new Uint8Array(12 + 3 + 4);
  packet.set([
    0x80,
    0xe0,
    seq >> 8,
    seq & 0xff,
    ts >>> 24,
    (ts >> 16) & 0xff,
    (ts >> 8) & 0xff,
    ts & 0xff,
    0,
    0,
    0,
    1,
  ]);
  packet.set([0x65, 0x88, 0x84, 0, 0, 3, 0], 12);
  const out = new Uint8Array(4 + packet.length);
  out.set([0x24, 0, 0, packet.length]);
  out.set(packet, 4);
  return out;
}

Deno.test("rtsp pull wire: Digest with qop=auth and without qop, and Basic, answer the 401 as the server checks them; no credentials in request lines or logs", async () => {
  for (const challenge of ["qop", "legacy", "basic"] as const) {
    const auth = new RtspAuthenticator({
      realm: "cams",
      password: (user) => (user === "ann" ? "s3cr:t@" : undefined),
      schemes: challenge === "basic" ? ["basic"] : ["digest"],
    });
    const nonce = "n0nce";
    const verdicts: string[] = [];
    const server = scripted(async (req) => {
      const header = req.headers.get("authorization");
      const check = header ? await auth.check(req.method, header, nonce) : undefined;
      const passes = check?.ok && check.credentials?.password === "s3cr:t@";
      verdicts.push(`${req.method} ${passes ? "ok" : "no"}`);
      if (!passes) {
        const www = challenge === "qop"
          ? `Digest realm="cams", nonce="${nonce}", qop="auth", opaque="op"`
          : auth.challenges(nonce)[0];
        return formatResponse(401, [["CSeq", req.headers.get("cseq")!], ["WWW-Authenticate", www]]);
      }
      return req.method === "DESCRIBE"
        ? formatResponse(404, [["CSeq", req.headers.get("cseq")!]])
        : ok(req, [["Public", "OPTIONS, DESCRIBE"]]);
    });
    const log = new LogLines();
    try {
      const url = `rtsp://ann:${encodeURIComponent("s3cr:t@")}@127.0.0.1:${server.port}/cam`;
      const error = await within(
        pullRtsp(new URL(url), { onFrame() {}, logger: log, transport: "tcp" }).then(
          () => undefined,
          (e) => e,
        ),
        5000,
        "the pull",
      );
      assert.match(String(error), /DESCRIBE refused: 404/, challenge);
      assert.deepEqual(verdicts, ["OPTIONS no", "OPTIONS ok", "DESCRIBE ok"], challenge);
      const digest = server.requests[2].headers.get("authorization")!;
      if (challenge === "qop") {
        assert.match(digest, /qop=auth, nc=00000002, cnonce="[0-9a-f]{16}", opaque="op"/);
      }
      if (challenge === "legacy") assert.doesNotMatch(digest, /qop/);
      for (const req of server.requests) {
        assert.equal(req.uri, `rtsp://127.0.0.1:${server.port}/cam`);
      }
      assert.equal(log.lines.some((l) => l.includes("s3cr")), false);
      assert.equal(String(error).includes("s3cr"), false);
    } finally {
      await server.close();
    }
  }
});

Deno.test("rtsp pull wire: SETUP goes to the control URL against Content-Base, else Content-Location, else the request URL", async () => {
  const cases: [[string, string][], string][] = [
    [[["Content-Base", "rtsp://127.0.0.1:PORT/base/"]], "rtsp://127.0.0.1:PORT/base/trackID=0"],
    [[["Content-Location", "/loc/cam"]], "rtsp://127.0.0.1:PORT/loc/cam/trackID=0"],
    [[], "rtsp://127.0.0.1:PORT/cam?x=1/trackID=0"],
  ];
  for (const [headers, expected] of cases) {
    let port = 0;
    const fill = (v: string) => v.replace("PORT", String(port));
    const script = player([]);
    const server = scripted((req, conn) => {
      if (req.method !== "DESCRIBE") return script(req, conn);
      return ok(req, [
        ["Content-Type", "application/sdp"],
        ...headers.map(([n, v]) => [n, fill(v)] as [string, string]),
      ], SDP);
    });
    port = server.port;
    try {
      const stop = new AbortController();
      const pulled = pullRtsp(new URL(`rtsp://127.0.0.1:${port}/cam?x=1`), {
        onFrame() {},
        transport: "tcp",
        signal: stop.signal,
      });
      await waitFor("the PLAY", () => server.requests.find((r) => r.method === "PLAY"));
      stop.abort();
      await within(pulled, 3000, "the pull's end after abort");
      const setup = server.requests.find((r) => r.method === "SETUP")!;
      assert.equal(setup.uri, fill(expected));
      assert.match(setup.headers.get("transport")!, /^RTP\/AVP\/TCP;unicast;interleaved=0-1$/);
      const teardown = server.requests.find((r) => r.method === "TEARDOWN");
      assert.ok(teardown, "TEARDOWN after abort");
      assert.equal(teardown.headers.get("session"), "s1");
    } finally {
      await server.close();
    }
  }
});

Deno.test("rtsp pull wire: frames from interleaved RTP start with the SDP's CONFIG; keep-alives follow the session timeout; receiver reports; silence rejects", async () => {
  const script = player();
  let playing: Deno.Conn | undefined;
  const server = scripted((req, conn) => {
    if (req.method === "PLAY") playing = conn;
    return script(req, conn);
  });
  const frames: { flags: number; pts: number }[] = [];
  try {
    const pulled = pullRtsp(new URL(`rtsp://127.0.0.1:${server.port}/cam`), {
      onFrame: (f) => frames.push({ flags: f.flags, pts: f.pts }),
      transport: "tcp",
      timeoutMs: 2500,
    }).then(() => undefined, (e: Error) => e);
    await waitFor("the PLAY", () => playing);
    for (let i = 0; i < 30; i++) {
      await playing!.write(rtpIdr(i, 3000 * i));
      await new Promise((r) => setTimeout(r, 50));
    }
    const error = await within(pulled, 6000, "the silent source's rejection");
    assert.match(String(error), /no RTP packet from the source for 2500 ms/);
    assert.equal(frames[0].flags, 2, "CONFIG first");
    assert.equal(frames[1].flags, 1, "then the keyframe");
    assert.ok(frames.length >= 25, `${frames.length} frames`);
    // Session timeout 2 s: keep-alives each second, with GET_PARAMETER as Public lists it.
    const keepAlives = server.requests.filter((r) => r.method === "GET_PARAMETER");
    assert.ok(keepAlives.length >= 1, "a keep-alive");
    assert.equal(keepAlives[0].headers.get("session"), "s1");
    // A receiver report on the RTCP channel about SSRC 1: 30 packets, none lost.
    const reports = server.interleaved.filter((f) => f.channel === 1).flatMap((f) =>
      parseRtcp(f.data)
    );
    assert.ok(reports.length >= 1, "a receiver report");
    const rr = reports[0].bytes;
    assert.equal(reports[0].type, RtcpType.RR);
    assert.equal(reports[0].count, 1);
    const view = new DataView(rr.buffer, rr.byteOffset, rr.byteLength);
    assert.equal(view.getUint32(8), 1, "reports on SSRC 1");
    assert.equal(view.getUint32(12) & 0xffffff, 0, "none lost");
    assert.ok(view.getUint32(16) >= 15 && view.getUint32(16) <= 29, "the highest sequence number");
  } finally {
    await server.close();
  }
});

Deno.test("rtsp pull wire: automatic starts over with TCP when no RTP arrives over UDP; the UDP session is torn down", async () => {
  const script = player();
  const server = scripted(async (req, conn) => {
    const answer = await script(req, conn);
    if (
      req.method === "PLAY" &&
      /TCP/.test(server.requests.findLast((r) => r.method === "SETUP")!.headers.get("transport")!)
    ) {
      await conn.write(answer!);
      for (let i = 0; i < 5; i++) await conn.write(rtpIdr(i, 3000 * i));
      return null;
    }
    return answer;
  });
  const log = new LogLines();
  const frames: number[] = [];
  try {
    const stop = new AbortController();
    const pulled = pullRtsp(new URL(`rtsp://127.0.0.1:${server.port}/cam`), {
      onFrame: (f) => frames.push(f.flags),
      udpFallbackMs: 300,
      logger: log,
      signal: stop.signal,
    });
    await waitFor("frames over TCP", () => frames.length >= 3 || undefined);
    stop.abort();
    await within(pulled, 3000, "the pull's end after abort");
    const methods = server.requests.map((r) => r.method);
    assert.deepEqual(methods.slice(0, 5), ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"]);
    assert.match(
      server.requests[2].headers.get("transport")!,
      /^RTP\/AVP;unicast;client_port=(\d+)-(\d+)$/,
    );
    const [, rtp, rtcp] = /client_port=(\d+)-(\d+)/.exec(
      server.requests[2].headers.get("transport")!,
    )!;
    assert.equal(Number(rtp) % 2, 0, "an even RTP port");
    assert.equal(Number(rtcp), Number(rtp) + 1, "RTCP on the next one");
    assert.deepEqual(methods.slice(5, 9), ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]);
    assert.match(server.requests[7].headers.get("transport")!, /^RTP\/AVP\/TCP;/);
    await log.waitFor(/no RTP over UDP within 300 ms; trying TCP/, 0);
    assert.deepEqual(frames.slice(0, 2), [2, 1], "CONFIG, then the keyframe");
  } finally {
    await server.close();
  }
});

Deno.test("rtsp pull wire: an onFrame that throws ends the pull with its error, over TCP and UDP", async () => {
  for (const transport of ["tcp", "udp"] as const) {
    const script = player();
    const udp = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", resolve));
    const server = scripted(async (req, conn) => {
      const answer = await script(req, conn);
      if (req.method !== "PLAY") return answer;
      await conn.write(answer!);
      const setup = server.requests.find((r) => r.method === "SETUP")!;
      const port = /client_port=(\d+)/.exec(setup.headers.get("transport")!)?.[1];
      for (let i = 0; i < 3; i++) {
        const packet = rtpIdr(i, 3000 * i);
        if (port) udp.send(packet.subarray(4), Number(port), "127.0.0.1");
        else await conn.write(packet);
      }
      return null;
    });
    try {
      const error = await within(
        pullRtsp(new URL(`rtsp://127.0.0.1:${server.port}/cam`), {
          onFrame() {
            throw new Error("the consumer broke");
          },
          transport,
        }).then(() => undefined, (e) => e),
        5000,
        `the ${transport} pull`,
      );
      assert.match(String(error), /the consumer broke/, transport);
      assert.ok(server.requests.some((r) => r.method === "TEARDOWN"), `${transport}: TEARDOWN`);
    } finally {
      udp.close();
      await server.close();
    }
  }
});

Deno.test("rtsp pull wire: hostile servers: no answer, an oversized head, garbage, an SDP without tracks; each rejects within the timeout", async () => {
  const answers: Record<string, Script> = {
    silent: () => null,
    oversized: () => enc.encode(`RTSP/1.0 200 OK\r\nX: ${"a".repeat(20_000)}\r\n\r\n`),
    garbage: () => enc.encode("HTTP/1.1 200 OK\r\n\r\n"),
    "no tracks": (req) =>
      req.method === "DESCRIBE"
        ? ok(
          req,
          [["Content-Type", "application/sdp"]],
          "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
        )
        : ok(req),
  };
  const expected: Record<string, RegExp> = {
    silent: /OPTIONS: no answer within 1000 ms/,
    oversized: /head longer than 8192 bytes/,
    garbage: /malformed status line/,
    "no tracks": /no track that can be carried/,
  };
  for (const [name, script] of Object.entries(answers)) {
    const server = scripted(script);
    try {
      const error = await within(
        pullRtsp(new URL(`rtsp://127.0.0.1:${server.port}/cam`), { onFrame() {}, timeoutMs: 1000 })
          .then(() => undefined, (e) => e),
        5000,
        name,
      );
      assert.match(String(error), expected[name], name);
    } finally {
      await server.close();
    }
  }
  // Nobody listening: the connect fails.
  const closed = scripted(() => null);
  const port = closed.port;
  await closed.close();
  await assert.rejects(
    pullRtsp(new URL(`rtsp://127.0.0.1:${port}/cam`), { onFrame() {} }),
    /connect to 127\.0\.0\.1/,
  );
  await assert.rejects(pullRtsp(new URL("http://127.0.0.1/cam"), { onFrame() {} }), TypeError);
});

test.ffmpeg("rtsp pull wire: rtsps:// with caCerts from our server's RTSPS listener; frames decode", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-rtsp-pull-" });
  const { certFile, keyFile, cert } = await makeCert(dir, "server");
  const s = await startServer(["rtmp"], {
    rtsps: { listen: "127.0.0.1:0" },
    tls: { cert: certFile, key: keyFile },
  });
  const procs = new Procs();
  try {
    const published = publishLive(procs, `rtmp://127.0.0.1:${s.ports.rtmp}/live/sec`, 6);
    await waitFor("the publish", () => s.server.registry.get("live", "sec"));
    const port = s.server.addresses.rtsps!.port;
    const frames: Parameters<Parameters<typeof pullRtsp>[1]["onFrame"]>[0][] = [];
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 2500);
    await within(
      pullRtsp(new URL(`rtsps://localhost:${port}/live/sec`), {
        onFrame: (f) => frames.push(f),
        caCerts: [cert],
        signal: stop.signal,
      }),
      15_000,
      "the RTSPS pull",
    );
    checkFrames(frames, "h264", "aac");
    await assertDecodes(frames, "pull-rtsps.ts");
    const untrusted = await pullRtsp(new URL(`rtsps://localhost:${port}/live/sec`), {
      onFrame() {},
    })
      .then(() => undefined, (e) => e);
    assert.match(String(untrusted), /connect to localhost.*(certificate|Unknown|issuer)/i);
    procs.killAll();
    await published;
  } finally {
    procs.killAll();
    await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rtsp pull wire: challenges, Content-Base and control URLs: parsed as meant, and bounded fuzz never throws", () => {
  const joined = 'Digest realm="a, b", nonce="x", qop="auth,auth-int", Basic realm="c"';
  assert.deepEqual(parseChallenges(joined), [
    { scheme: "digest", params: { realm: "a, b", nonce: "x", qop: "auth,auth-int" } },
    { scheme: "basic", params: { realm: "c" } },
  ]);
  assert.equal(controlUrl("rtsp://h/cam", "rtsp://u:p@other/t1"), "rtsp://other/t1");
  assert.equal(controlUrl("rtsp://h/cam/", "*"), "rtsp://h/cam/");
  assert.equal(controlUrl("rtsp://h/cam", undefined), "rtsp://h/cam");
  assert.equal(
    describeBase("rtsp://h/cam", new Headers({ "content-base": "rtsp://user:pw@h/x/" })),
    "rtsp://h/x/",
  );
  const rand = prng(2617);
  const alphabet = 'Digest Basic realm=nonce="qop,auth \\x=,;"';
  for (let i = 0; i < 3000; i++) {
    const text = randomText(rand, alphabet, 80);
    const challenges = parseChallenges(text);
    assert.ok(challenges.length <= text.length);
    controlUrl("rtsp://h/cam", text);
    describeBase("rtsp://h/cam", new Headers({ "content-base": text.replace(/[\r\n]/g, "") }));
  }
});
