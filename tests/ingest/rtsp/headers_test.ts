import assert from "node:assert/strict";
import { parseTransport, RtspAuthenticator, RtspError } from "../../../ingest/rtsp/mod.ts";
import { parseTarget } from "../../../ingest/rtsp/_target.ts";
import { prng, randomText } from "../../_util/fuzz.ts";

Deno.test("transport: what ffmpeg, VLC and GStreamer send", () => {
  assert.deepEqual(parseTransport("RTP/AVP/TCP;unicast;interleaved=0-1;mode=record"), [
    { lower: "tcp", multicast: false, interleaved: [0, 1], mode: "record" },
  ]);
  assert.deepEqual(parseTransport('RTP/AVP/UDP;unicast;client_port=5000-5001;mode="RECORD"'), [
    { lower: "udp", multicast: false, clientPort: [5000, 5001], mode: "record" },
  ]);
  assert.deepEqual(parseTransport("RTP/AVP;unicast;client_port=6970"), [
    { lower: "udp", multicast: false, clientPort: [6970, 6971] },
  ]);
  assert.deepEqual(
    parseTransport(
      "RTP/AVP;multicast;port=5000-5001, RTP/SAVP;unicast;client_port=1-2, rtp/avp/tcp;interleaved=4-5",
    ),
    [
      { lower: "udp", multicast: true },
      { lower: "tcp", multicast: false, interleaved: [4, 5] },
    ],
  );
  // What servers answer a client's SETUP with (GStreamer, MediaMTX, ours).
  assert.deepEqual(
    parseTransport("RTP/AVP;unicast;client_port=20000-20001;server_port=8000-8001;ssrc=1A2b3C4d"),
    [{
      lower: "udp",
      multicast: false,
      clientPort: [20000, 20001],
      serverPort: [8000, 8001],
      ssrc: 0x1a2b3c4d,
    }],
  );
  assert.deepEqual(parseTransport("RTP/AVP;unicast;server_port=8000-70000"), []);
  assert.deepEqual(parseTransport("RTP/AVP/TCP;interleaved=0-1;ssrc=xyz"), [
    { lower: "tcp", multicast: false, interleaved: [0, 1] },
  ]);
  assert.deepEqual(parseTransport("RTP/AVP;client_port=99999-100000"), []);
  assert.deepEqual(parseTransport("RTP/AVP/TCP;interleaved=300-301"), []);
  assert.deepEqual(parseTransport("garbage"), []);
});

Deno.test("transport: bounded fuzz: never throws, every port and channel in range", () => {
  const rand = prng(2326_12);
  const alphabet =
    'RTP/AVP/TCP;unicast;multicast,client_port=server_port=interleaved=ssrc=0123456789-aF" ';
  for (let i = 0; i < 5000; i++) {
    for (const spec of parseTransport(randomText(rand, alphabet, 120))) {
      for (const [a, b] of [spec.clientPort, spec.serverPort].filter((p) => p !== undefined)) {
        assert.ok(a >= 0 && a <= 65535 && b >= 0 && b <= 65535);
      }
      if (spec.interleaved) assert.ok(spec.interleaved.every((c) => c >= 0 && c <= 255));
      if (spec.ssrc !== undefined) assert.ok(spec.ssrc >= 0 && spec.ssrc <= 0xffffffff);
    }
  }
});

Deno.test("target: request URIs", () => {
  const t = (uri: string) => {
    const { app, stream, query, control, base } = parseTarget(uri);
    return [app, stream, query, control, base];
  };
  assert.deepEqual(t("rtsp://127.0.0.1:8554/live/x"), [
    "live",
    "x",
    "",
    "",
    "rtsp://127.0.0.1:8554/live/x/",
  ]);
  assert.deepEqual(t("rtsp://h/live/x/"), ["live", "x", "", "", "rtsp://h/live/x/"]);
  assert.deepEqual(t("rtsp://h/live/x/trackID=1"), [
    "live",
    "x",
    "",
    "trackID=1",
    "rtsp://h/live/x/",
  ]);
  assert.deepEqual(t("rtsp://h/live/x/streamid=0"), [
    "live",
    "x",
    "",
    "streamid=0",
    "rtsp://h/live/x/",
  ]);
  assert.deepEqual(t("rtsp://h/live/x?token=a%20b"), [
    "live",
    "x",
    "token=a%20b",
    "",
    "rtsp://h/live/x?token=a%20b/",
  ]);
  assert.deepEqual(t("rtsp://h/live/x?token=1/trackID=0"), [
    "live",
    "x",
    "token=1",
    "trackID=0",
    "rtsp://h/live/x?token=1/",
  ]);
  assert.deepEqual(t("/live/my%20cam"), ["live", "my cam", "", "", "/live/my%20cam/"]);
  for (
    const [uri, status] of [["rtsp://h/live", 404], ["*", 404], ["rtsp://h/%zz/x", 400], [
      "rtsp://[bad/x/y",
      400,
    ]] as const
  ) {
    assert.throws(
      () => parseTarget(uri),
      (e) => e instanceof RtspError && e.status === status,
      uri,
    );
  }
});

Deno.test("auth: Basic credentials are passed on", async () => {
  const auth = new RtspAuthenticator({});
  assert.deepEqual(auth.challenges("n"), ['Basic realm="arcly-stream"']);
  assert.deepEqual(await auth.check("DESCRIBE", `Basic ${btoa("ann:s3:cret")}`, "n"), {
    ok: true,
    credentials: { user: "ann", password: "s3:cret" },
  });
  assert.equal((await auth.check("DESCRIBE", "Basic !!!", "n")).ok, false);
  assert.equal((await auth.check("DESCRIBE", `Basic ${btoa("nocolon")}`, "n")).ok, false);
  assert.equal((await auth.check("DESCRIBE", 'Digest username="a"', "n")).ok, false); // not offered
  assert.throws(() => new RtspAuthenticator({ schemes: ["digest"] }), TypeError);
});

// RFC 2617 3.5: the worked example (qop=auth), and the RFC 2069 form without qop.
Deno.test("auth: Digest responses are checked against the password", async () => {
  const auth = new RtspAuthenticator({
    realm: "testrealm@host.com",
    password: (user) => (user === "Mufasa" ? "Circle Of Life" : undefined),
  });
  const nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
  assert.deepEqual(auth.challenges(nonce), [
    `Digest realm="testrealm@host.com", nonce="${nonce}", algorithm="MD5"`,
    'Basic realm="testrealm@host.com"',
  ]);
  const header = (response: string, extra = 'qop=auth, nc=00000001, cnonce="0a4f113b", ') =>
    `Digest username="Mufasa", realm="testrealm@host.com", nonce="${nonce}", ` +
    `uri="/dir/index.html", ${extra}response="${response}", opaque="5ccc069c403ebaf9f0171e9517f40e41"`;
  assert.deepEqual(await auth.check("GET", header("6629fae49393a05397450978507c4ef1"), nonce), {
    ok: true,
    credentials: { user: "Mufasa", password: "Circle Of Life" },
  });
  // RFC 2069 form (no qop): MD5(HA1:nonce:HA2), value computed independently with Python hashlib
  assert.equal(
    (await auth.check("GET", header("670fd8c2df070c60b045671b8b24ff02", ""), nonce)).ok,
    true,
  );
  const refused = [
    await auth.check("GET", header("6629fae49393a05397450978507c4ef0"), nonce), // wrong response
    await auth.check("PLAY", header("6629fae49393a05397450978507c4ef1"), nonce), // other method
    await auth.check("GET", header("6629fae49393a05397450978507c4ef1"), "other"), // other nonce
    await auth.check("GET", header("x").replace("Mufasa", "Scar"), nonce), // unknown user
    await auth.check("GET", 'Digest username="Mufasa"', nonce), // incomplete
  ];
  assert.deepEqual(refused.map((r) => r.ok), [false, false, false, false, false]);
});
