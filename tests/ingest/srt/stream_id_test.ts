import assert from "node:assert/strict";
import { parseStreamId, RejectReason, SrtError } from "../../../ingest/srt/mod.ts";
import { prng } from "../../_util/fuzz.ts";

Deno.test("publish: and read: forms, with a query", () => {
  assert.deepEqual(parseStreamId("publish:live/cam"), {
    action: "publish",
    app: "live",
    stream: "cam",
    query: "",
  });
  assert.deepEqual(parseStreamId("read:live/cam?token=abc&x=1"), {
    action: "read",
    app: "live",
    stream: "cam",
    query: "token=abc&x=1",
  });
});

Deno.test("access control form: r, m, u, s; other keys ignored", () => {
  assert.deepEqual(parseStreamId("#!::r=live/cam,m=publish,u=alice,s=sess-1,h=example.com"), {
    action: "publish",
    app: "live",
    stream: "cam",
    query: "",
    user: "alice",
    session: "sess-1",
  });
  assert.deepEqual(parseStreamId("#!::r=live/cam?k=v"), {
    action: "read",
    app: "live",
    stream: "cam",
    query: "k=v",
  });
  assert.equal(parseStreamId("#!::m=request,r=live/b,t=stream,x=y").action, "read");
});

Deno.test("refusals carry the rejection reason", () => {
  const cases: [string, number][] = [
    ["", RejectReason.BAD_REQUEST],
    ["live/cam", RejectReason.BAD_REQUEST],
    ["play:live/cam", RejectReason.BAD_REQUEST],
    ["publish:cam", RejectReason.BAD_REQUEST],
    ["publish:live/", RejectReason.BAD_REQUEST],
    ["publish:/cam", RejectReason.BAD_REQUEST],
    ["publish:live/a/b", RejectReason.BAD_REQUEST],
    ["publish:live/..", RejectReason.BAD_REQUEST],
    ["publish:live/a b", RejectReason.BAD_REQUEST],
    ["publish:live/" + "x".repeat(201), RejectReason.BAD_REQUEST],
    ["#!::m=publish", RejectReason.BAD_REQUEST],
    ["#!::r=live/cam,junk", RejectReason.BAD_REQUEST],
    ["#!::r=live/cam,m=bidirectional", RejectReason.BAD_MODE],
    ["#!::r=live/cam,t=file", RejectReason.NOTSUP_MEDIA],
  ];
  for (const [id, reason] of cases) {
    assert.throws(
      () => parseStreamId(id),
      (e) => e instanceof SrtError && e.reason === reason && e.message.length > 0,
      JSON.stringify(id),
    );
  }
});

Deno.test("fuzz: parseStreamId returns a valid request or throws SrtError with a reason", () => {
  const rand = prng(0x51d);
  const alphabet = "#!:=,/?&rmustpublishreadlive \u0000é";
  for (let i = 0; i < 3000; i++) {
    let id = i % 3 === 0 ? "#!::" : i % 3 === 1 ? "publish:" : "";
    const n = Math.floor(rand() * 40);
    for (let k = 0; k < n; k++) id += alphabet[Math.floor(rand() * alphabet.length)];
    try {
      const request = parseStreamId(id);
      assert.ok(request.app.length > 0 && !request.app.includes("/"), id);
      assert.ok(request.stream.length > 0 && !request.stream.includes("/"), id);
    } catch (error) {
      assert.ok(error instanceof SrtError && typeof error.reason === "number", `${id}: ${error}`);
    }
  }
});

Deno.test("credentials: publish:APP/NAME:USER:PASS, with a query and colons in the password", () => {
  assert.deepEqual(parseStreamId("publish:live/cam:ann:s3:cr:et"), {
    action: "publish",
    app: "live",
    stream: "cam",
    query: "",
    user: "ann",
    password: "s3:cr:et",
  });
  assert.deepEqual(parseStreamId("read:live/cam?x=1:bob:pw"), {
    action: "read",
    app: "live",
    stream: "cam",
    query: "x=1",
    user: "bob",
    password: "pw",
  });
  assert.throws(
    () => parseStreamId("read:live/cam:bob"),
    (e) => e instanceof SrtError && e.reason === RejectReason.BAD_REQUEST,
  );
});
