import assert from "node:assert/strict";
import { type AuthRequest, Registry } from "../../../mod.ts";
import { type HttpRoute, withAccessControl } from "../../../ingest/http/mod.ts";
import { prng, randomText } from "../../_util/fuzz.ts";

const INFO = {
  remoteAddr: { transport: "tcp", hostname: "::1", port: 4000 },
  completed: Promise.resolve(),
} as unknown as Deno.ServeHandlerInfo<Deno.NetAddr>;

const PLAYLIST = [
  "#EXTM3U",
  "#EXT-X-VERSION:9",
  '#EXT-X-MAP:URI="init.mp4"',
  "#EXTINF:1.0,",
  "seg0.m4s",
  '#EXT-X-PART:DURATION=0.5,URI="seg1.0.m4s"',
  '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg1.1.m4s"',
  "https://cdn.example/absolute.m4s",
  "",
].join("\n");

/** A gate over one route that answers every path, and the requests it put to authorize. */
function gate(allow: (r: AuthRequest) => boolean) {
  const asked: AuthRequest[] = [];
  const registry = new Registry({
    authorize: (r) => {
      asked.push(r);
      return allow(r);
    },
  });
  const inner: HttpRoute = (_request, url) =>
    url.pathname.endsWith(".m3u8")
      ? new Response(PLAYLIST, { headers: { "content-type": "application/vnd.apple.mpegurl" } })
      : new Response(`inner ${url.pathname}`);
  const route = withAccessControl(registry, [inner]);
  const call = async (path: string, init?: RequestInit) => {
    const url = new URL(`http://localhost${path}`);
    const response = await route(new Request(url, init), url, INFO);
    return response && { status: response.status, text: await response.text(), response };
  };
  return { asked, call };
}

Deno.test("each kind of request is put to authorize with its action; WHIP/WHEP and OPTIONS pass", async () => {
  const { asked, call } = gate(() => true);
  const cases: [string, Partial<AuthRequest> | undefined][] = [
    ["/metrics", { action: "metrics", app: "", stream: "", protocol: "http" }],
    ["/v1/streams", { action: "api", app: "", stream: "", protocol: "http" }],
    ["/v1/streams/live/cam", { action: "api", app: "live", stream: "cam", protocol: "http" }],
    ["/live/cam/index.m3u8", { action: "read", app: "live", stream: "cam", protocol: "hls" }],
    ["/live/cam/seg3.ts?x=1", { action: "read", app: "live", stream: "cam", protocol: "hls" }],
    ["/live/cam.flv", { action: "read", app: "live", stream: "cam", protocol: "http-flv" }],
    ["/live/cam/", { action: "read", app: "live", stream: "cam", protocol: "http" }],
    ["/live/cam/publish", { action: "publish", app: "live", stream: "cam", protocol: "http" }],
    ["/live/cam/whip", undefined],
    ["/live/cam/whep/0b7c4e1a-0000-4000-8000-000000000000", undefined],
    ["/assets/hls.min.js", undefined],
    ["/", undefined],
  ];
  for (const [path, expected] of cases) {
    asked.length = 0;
    const answer = await call(path);
    assert.equal(answer?.status, 200, path);
    if (expected === undefined) {
      assert.deepEqual(asked, [], path);
      continue;
    }
    assert.equal(asked.length, 1, path);
    const { action, app, stream, protocol, peer } = asked[0];
    assert.deepEqual({ action, app, stream, protocol }, expected, path);
    assert.equal(peer, "[::1]:4000");
  }
  asked.length = 0;
  assert.equal((await call("/live/cam/index.m3u8", { method: "OPTIONS" }))?.status, 200);
  assert.deepEqual(asked, []);
});

Deno.test("credentials: Basic, Bearer and the query reach authorize", async () => {
  const { asked, call } = gate(() => true);
  await call("/live/cam.flv", { headers: { authorization: `Basic ${btoa("ann:pa:ss")}` } });
  await call("/live/cam.flv", { headers: { authorization: "Bearer t0k" } });
  await call("/live/cam.flv?token=q&x=1");
  await call("/live/cam.flv", { headers: { authorization: "Digest nope" } });
  assert.deepEqual(asked.map((r) => [r.credentials, r.query]), [
    [{ user: "ann", password: "pa:ss" }, ""],
    [{ token: "t0k" }, ""],
    [undefined, "token=q&x=1"],
    [undefined, ""],
  ]);
});

Deno.test("refusals: 401 with a challenge without credentials, 403 with; the same for every stream", async () => {
  const { call } = gate((r) => r.credentials?.token === "good");
  const anonymous = await call("/live/cam/index.m3u8");
  assert.equal(anonymous?.status, 401);
  assert.equal(anonymous?.response.headers.get("www-authenticate"), 'Basic realm="arcly-stream"');
  const wrong = await call("/live/cam/index.m3u8?token=bad");
  assert.equal(wrong?.status, 403);
  const wrongHeader = await call("/other/x.flv", { headers: { authorization: "Bearer bad" } });
  assert.equal(wrongHeader?.status, 403);
  assert.equal(wrongHeader?.text, wrong?.text);
  assert.equal((await call("/v1/streams/live/none"))?.text, anonymous?.text);
  assert.equal((await call("/metrics"))?.status, 401);
});

Deno.test("a playlist asked for with credentials in its query carries them on every relative URI", async () => {
  const { call } = gate(() => true);
  const plain = await call("/live/cam/stream.m3u8");
  assert.equal(plain?.text, PLAYLIST);
  const carried = await call("/live/cam/stream.m3u8?token=a%26b&_HLS_msn=3&jwt=j");
  const suffix = "token=a%26b&jwt=j";
  assert.equal(
    carried?.text,
    PLAYLIST
      .replace('URI="init.mp4"', `URI="init.mp4?${suffix}"`)
      .replace("seg0.m4s", `seg0.m4s?${suffix}`)
      .replace('URI="seg1.0.m4s"', `URI="seg1.0.m4s?${suffix}"`)
      .replace('URI="seg1.1.m4s"', `URI="seg1.1.m4s?${suffix}"`),
  );
  assert.equal(carried?.response.headers.get("content-length"), null);
});

Deno.test("fuzz: random Authorization headers and paths never throw, and refuse when refused", async () => {
  const { call } = gate(() => false);
  const rand = prng(0xa17);
  const alphabet = "BasicBearer :=/+%.?&-_~\u00e9\u0000";
  const pick = (n: number) => randomText(rand, alphabet, n);
  let answered = 0;
  for (let i = 0; i < 500; i++) {
    const header = (rand() < 0.5 ? "Basic " : "Bearer ") +
      (rand() < 0.5 ? btoa(pick(10)) : pick(12));
    const path = `/live/${encodeURIComponent(pick(6)) || "x"}/${rand() < 0.5 ? "index.m3u8" : ""}`;
    let answer;
    try {
      answer = await call(path, { headers: { authorization: header.replaceAll("\u0000", "") } });
    } catch (error) {
      if (error instanceof TypeError) continue; // a header value Request itself refuses
      throw error;
    }
    assert.ok(answer?.status === 401 || answer?.status === 403, path);
    answered++;
  }
  assert.ok(answered > 400, `${answered} of 500 reached the gate`);
});
