/** WHIP/WHEP over HTTP: status codes, headers, answers, session lifecycle and bad input. */

import assert from "node:assert/strict";
import { type AuthRequest, FrameFlags, type MediaFrame, Registry } from "../../../mod.ts";
import { serveHttp } from "../../../ingest/http/server.ts";
import {
  parsePortRange,
  WebRtcServer,
  type WebRtcServerOptions,
} from "../../../ingest/webrtc/mod.ts";
import { buildAvcConfig } from "../../../media/codec/h264.ts";
import { H264, makeOffer, OPUS, PCMU, VP8 } from "./_offers.ts";

const SPS = new Uint8Array([0x67, 0x42, 0xc0, 0x1e, 0xda, 0x05, 0x07, 0xe4]);
const PPS = new Uint8Array([0x68, 0xce, 0x3c, 0x80]);

function config(kind: "video" | "audio", codec: MediaFrame["codec"], data: Uint8Array): MediaFrame {
  return {
    track: kind === "video" ? 0 : 1,
    kind,
    codec,
    pts: 0,
    dts: 0,
    flags: FrameFlags.CONFIG,
    data,
  };
}

/** A server on a free port with the WebRTC route; `run` gets its base URL. */
async function withServer(
  options: Partial<WebRtcServerOptions> & { registry?: Registry },
  run: (base: string, registry: Registry, webrtc: WebRtcServer, log: string[]) => Promise<void>,
): Promise<void> {
  const registry = options.registry ?? new Registry();
  const log: string[] = [];
  const logger = {
    info: (m: string) => log.push(m),
    warn: (m: string) => log.push(m),
    error: (m: string) => log.push(m),
  };
  const webrtc = new WebRtcServer({ hosts: ["127.0.0.1"], logger, ...options, registry });
  const http = serveHttp({ routes: [webrtc.route], hostname: "127.0.0.1", port: 0 });
  try {
    await run(`http://127.0.0.1:${http.addr.port}`, registry, webrtc, log);
  } finally {
    await webrtc.close();
    await http.close();
    registry.closeAll();
  }
}

function post(
  url: string,
  body: BodyInit,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    body,
    headers: { "content-type": "application/sdp", ...headers },
  });
}

Deno.test("WHIP: 201 with Location and an ICE-lite answer; PATCH 405; DELETE ends the publish", async () => {
  await withServer({}, async (base, registry, webrtc) => {
    const res = await post(`${base}/live/cam/whip`, makeOffer());
    const answer = await res.text();
    assert.equal(res.status, 201, answer);
    assert.equal(res.headers.get("content-type"), "application/sdp");
    assert.equal(res.headers.get("access-control-expose-headers"), "Location");
    const location = res.headers.get("location")!;
    assert.match(location, /^\/live\/cam\/whip\/[0-9a-f-]{36}$/);
    assert.match(answer, /^a=ice-lite/m);
    assert.match(answer, /^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/m);
    assert.match(answer, /^a=setup:passive/m);
    assert.match(answer, /^a=recvonly/m);
    assert.match(answer, /^a=rtpmap:102 H264\/90000/m);
    assert.match(answer, /^a=rtpmap:111 opus\/48000\/2/m);
    assert.equal(registry.get("live", "cam")?.metadata().ingestProtocol, "webrtc");
    assert.equal(webrtc.sessionCount, 1);

    const second = await post(`${base}/live/cam/whip`, makeOffer());
    assert.equal(second.status, 409);
    assert.match(await second.text(), /already has a publisher/);

    const patch = await fetch(base + location, { method: "PATCH", body: "a=end-of-candidates" });
    await patch.body?.cancel();
    assert.equal(patch.status, 405);
    assert.equal(patch.headers.get("allow"), "OPTIONS, DELETE");

    const wrongKind = await fetch(base + location.replace("/whip/", "/whep/"), {
      method: "DELETE",
    });
    await wrongKind.body?.cancel();
    assert.equal(wrongKind.status, 404);

    const del = await fetch(base + location, { method: "DELETE" });
    await del.body?.cancel();
    assert.equal(del.status, 200);
    assert.equal(registry.get("live", "cam"), undefined);
    assert.equal(webrtc.sessionCount, 0);
    const again = await fetch(base + location, { method: "DELETE" });
    await again.body?.cancel();
    assert.equal(again.status, 404);
  });
});

Deno.test("WHIP/WHEP: OPTIONS answers CORS preflights; other methods get 405 with Allow", async () => {
  await withServer({ allowOrigin: "https://example.test" }, async (base) => {
    for (const kind of ["whip", "whep"]) {
      const res = await fetch(`${base}/live/cam/${kind}`, {
        method: "OPTIONS",
        headers: { origin: "https://example.test", "access-control-request-method": "POST" },
      });
      await res.body?.cancel();
      assert.equal(res.status, 204);
      assert.equal(res.headers.get("access-control-allow-origin"), "https://example.test");
      assert.match(res.headers.get("access-control-allow-methods")!, /POST/);
      assert.match(res.headers.get("access-control-allow-headers")!, /Authorization/);
      const get = await fetch(`${base}/live/cam/${kind}`);
      await get.body?.cancel();
      assert.equal(get.status, 405);
      assert.equal(get.headers.get("allow"), "OPTIONS, POST");
    }
  });
});

Deno.test("WHIP: bad input gets 4xx with the reason and leaves no stream behind", async () => {
  await withServer({ maxOfferBytes: 4096 }, async (base, registry, webrtc) => {
    const cases: [string, Response, RegExp][] = [
      ["malformed", await post(`${base}/live/cam/whip`, "hello"), /malformed SDP/],
      [
        "untyped",
        await fetch(`${base}/live/cam/whip`, { method: "POST", body: makeOffer() }),
        /application\/sdp/,
      ],
      [
        "no codec",
        await post(`${base}/live/cam/whip`, makeOffer({ video: [VP8], audio: [PCMU] })),
        /no codec/,
      ],
      [
        "too big",
        await post(`${base}/live/cam/whip`, "v=0\r\n" + "a=x\r\n".repeat(2000)),
        /larger than 4096/,
      ],
      [
        "too big, streamed",
        await post(
          `${base}/live/cam/whip`,
          ReadableStream.from([new TextEncoder().encode("v=0\r\n"), new Uint8Array(8192)]),
        ),
        /larger than 4096/,
      ],
      ["unknown app", await post(`${base}/nope/cam/whip`, makeOffer()), /not found/],
    ];
    const expected = [400, 415, 406, 413, 413, 404];
    for (const [i, [name, res, reason]] of cases.entries()) {
      assert.equal(res.status, expected[i], name);
      assert.match(await res.text(), reason, name);
    }
    assert.equal(registry.list().length, 0);
    assert.equal(webrtc.sessionCount, 0);
  });
});

Deno.test("WHIP: a session that never connects is reaped and frees the stream", async () => {
  await withServer({ connectTimeoutMs: 300 }, async (base, registry, webrtc) => {
    const res = await post(`${base}/live/cam/whip`, makeOffer());
    await res.body?.cancel();
    assert.equal(res.status, 201);
    assert.ok(registry.get("live", "cam"));
    const deadline = performance.now() + 5000;
    while (registry.get("live", "cam") && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(registry.get("live", "cam"), undefined);
    assert.equal(webrtc.sessionCount, 0);
  });
});

Deno.test("WHIP/WHEP: the Bearer token goes to authorize and guards DELETE; 401 without one, 403 when refused", async () => {
  const asked: AuthRequest[] = [];
  const registry = new Registry({
    authorize: (request) => {
      asked.push(request);
      return request.credentials?.token === "s3cret";
    },
  });
  await withServer({ registry }, async (base) => {
    const none = await post(`${base}/live/cam/whip?x=1`, makeOffer());
    await none.body?.cancel();
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), "Bearer");
    const wrong = await post(`${base}/live/cam/whip`, makeOffer(), {
      authorization: "Bearer nope",
    });
    await wrong.body?.cancel();
    assert.equal(wrong.status, 403);
    const right = await post(`${base}/live/cam/whip`, makeOffer(), {
      authorization: "Bearer s3cret",
    });
    await right.body?.cancel();
    assert.equal(right.status, 201);
    const play = await post(`${base}/live/cam/whep`, makeOffer({ direction: "recvonly" }), {
      authorization: "bearer s3cret",
    });
    await play.body?.cancel();
    assert.equal(play.status, 201);
    // Ending a session takes the token that opened it, not just its URL.
    const session = base + right.headers.get("location");
    const anonymous = await fetch(session, { method: "DELETE" });
    await anonymous.body?.cancel();
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get("www-authenticate"), "Bearer");
    const other = await fetch(session, {
      method: "DELETE",
      headers: { authorization: "Bearer s3creT" },
    });
    await other.body?.cancel();
    assert.equal(other.status, 403);
    assert.ok(registry.get("live", "cam"), "the publish goes on");
    const own = await fetch(session, {
      method: "DELETE",
      headers: { authorization: "Bearer s3cret" },
    });
    await own.body?.cancel();
    assert.equal(own.status, 200);
    assert.equal(registry.get("live", "cam"), undefined, "the publish ended");
  });
  assert.deepEqual(asked.map((r) => [r.action, r.protocol, r.query, r.credentials?.token]), [
    ["publish", "whip", "x=1", undefined],
    ["publish", "whip", "", "nope"],
    ["publish", "whip", "", "s3cret"],
    ["read", "whep", "", "s3cret"],
  ]);
});

Deno.test("WHEP: unknown streams 404; H.265 406; AAC audio is rejected in the answer, not the session", async () => {
  await withServer({}, async (base, registry, _webrtc, log) => {
    const missing = await post(`${base}/live/none/whep`, makeOffer({ direction: "recvonly" }));
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /not live/);

    const hevc = registry.startPublish("live", "hevc");
    hevc.publish(config("video", "h265", new Uint8Array([1, 2, 3])));
    const refused = await post(`${base}/live/hevc/whep`, makeOffer({ direction: "recvonly" }));
    assert.equal(refused.status, 406);
    assert.match(await refused.text(), /h265/);

    const aac = registry.startPublish("live", "aac");
    aac.publish(config("video", "h264", buildAvcConfig({ sps: [SPS], pps: [PPS] })));
    aac.publish(config("audio", "aac", new Uint8Array([0x12, 0x10])));
    const res = await post(
      `${base}/live/aac/whep`,
      makeOffer({ video: [H264], audio: [OPUS], direction: "recvonly" }),
    );
    const answer = await res.text();
    assert.equal(res.status, 201, answer);
    assert.match(answer, /^m=audio 0 /m, "the audio section is rejected");
    assert.match(answer, /^m=video [1-9]\d* /m);
    assert.match(answer, /^a=sendonly/m);
    assert.ok(log.some((l) => /audio is aac, which WebRTC cannot carry/.test(l)), log.join("\n"));

    const audioOnly = await post(
      `${base}/live/aac/whep`,
      makeOffer({ video: null, direction: "recvonly" }),
    );
    assert.equal(audioOnly.status, 406);
    assert.match(await audioOnly.text(), /nothing the offer can receive/);
  });
});

Deno.test("pages: player and publisher per stream, hls.js from the npm package", async () => {
  await withServer({}, async (base) => {
    const player = await fetch(`${base}/live/cam/`);
    assert.equal(player.headers.get("content-type"), "text/html; charset=utf-8");
    const html = await player.text();
    assert.match(html, /"\/live\/cam\/whep"/);
    assert.match(html, /"\/live\/cam\/index\.m3u8"/);
    assert.match(html, /\/assets\/hls\.min\.js/);
    const publisher = await (await fetch(`${base}/live/cam/publish`)).text();
    assert.match(publisher, /"\/live\/cam\/whip"/);
    assert.match(publisher, /getUserMedia/);
    const unknownApp = await fetch(`${base}/other/cam/`);
    await unknownApp.body?.cancel();
    assert.equal(unknownApp.status, 404);
    const hls = await fetch(`${base}/assets/hls.min.js`);
    assert.equal(hls.status, 200);
    assert.match(hls.headers.get("content-type")!, /javascript/);
    assert.match(await hls.text(), /isSupported/);
  });
});

Deno.test("parsePortRange", () => {
  assert.deepEqual(parsePortRange("8189-8289"), [8189, 8289]);
  for (const bad of ["8189", "9000-8000", "0-10", "1-70000", "a-b", "10-10"]) {
    assert.throws(() => parsePortRange(bad), RangeError, bad);
  }
});
