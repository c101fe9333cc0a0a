import assert from "node:assert/strict";
import { type AuthRequest, Registry } from "../../../mod.ts";
import {
  AccessConfigError,
  AccessPolicy,
  hashSecret,
  OPEN_ACCESS,
  rtspAuth,
} from "../../../server/access/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { keyPair, signJwt, tamper } from "./_sign.ts";

const request = (over: Partial<AuthRequest> = {}): AuthRequest => ({
  action: "read",
  app: "live",
  stream: "cam",
  query: "",
  protocol: "rtmp",
  peer: "192.0.2.10:5000",
  ...over,
});

Deno.test("grants: users with hashed or plain secrets, per action and path", async () => {
  const policy = new AccessPolicy({
    grants: [
      {
        user: "cam",
        secret: await hashSecret("s3cret", 10_000),
        permissions: [{ action: "publish", path: "live/*" }],
      },
      {
        user: "viewer",
        secret: "plain pw",
        permissions: [{ action: "read", path: "~live/cam[0-9]*" }],
      },
      { permissions: [{ action: "read", path: "public/*" }] },
    ],
  });
  const publish = (credentials: AuthRequest["credentials"], stream = "a") =>
    policy.decide(request({ action: "publish", stream, credentials }));
  assert.equal((await publish({ user: "cam", password: "s3cret" })).allowed, true);
  assert.equal((await publish({ user: "cam", password: "wrong" })).allowed, false);
  assert.match((await publish({ user: "cam", password: "wrong" })).reason, /wrong password/);
  assert.equal((await publish(undefined)).allowed, false);
  assert.equal((await publish({ user: "viewer", password: "plain pw" })).allowed, false);
  const other = await policy.decide(
    request({ action: "publish", app: "other", credentials: { user: "cam", password: "s3cret" } }),
  );
  assert.equal(other.allowed, false);
  // credentials in the query, as RTMP and SRT carry them
  assert.equal(
    (await policy.decide(request({ query: "user=viewer&pass=plain%20pw" }))).allowed,
    true,
  );
  assert.equal(
    (await policy.decide(request({ stream: "cam12", query: "user=viewer&password=plain+pw" })))
      .allowed,
    true,
  );
  assert.equal(
    (await policy.decide(request({ stream: "x", query: "user=viewer&pass=plain+pw" })))
      .allowed,
    false,
  );
  assert.equal((await policy.decide(request({ app: "public", stream: "x" }))).allowed, true);
  assert.equal(policy.plainPassword("viewer"), "plain pw");
  assert.equal(policy.plainPassword("cam"), undefined, "hashed: Digest cannot use it");
  assert.equal(policy.digestReady, false);
  assert.deepEqual(rtspAuth(policy).schemes, ["basic"]);
  const plain = new AccessPolicy({
    grants: [{ user: "viewer", secret: "pw", permissions: [{ action: "read" }] }],
  });
  assert.equal(plain.digestReady, true);
  assert.deepEqual(rtspAuth(plain).schemes, ["digest", "basic"]);
  assert.equal(new AccessPolicy(OPEN_ACCESS).digestReady, false, "no users at all");
});

Deno.test("grants: IP ranges, IPv4 and IPv6, and static tokens", async () => {
  const policy = new AccessPolicy({
    grants: [
      { ips: ["10.0.0.0/8", "2001:db8::/32"], permissions: [{ action: ["read", "api"] }] },
      { token: await hashSecret("tok-1", 10_000), permissions: [{ action: "publish" }] },
      { ips: ["127.0.0.1"], permissions: [{ action: "metrics" }] },
    ],
  });
  const allowed = async (over: Partial<AuthRequest>) =>
    (await policy.decide(request(over))).allowed;
  assert.equal(await allowed({ peer: "10.2.3.4:1" }), true);
  assert.equal(await allowed({ peer: "[::ffff:10.2.3.4]:1" }), true);
  assert.equal(await allowed({ peer: "[2001:db8::9]:1" }), true);
  assert.equal(await allowed({ peer: "11.2.3.4:1" }), false);
  assert.equal(await allowed({ peer: undefined }), false);
  assert.equal(await allowed({ action: "api", app: "", stream: "", peer: "10.0.0.1:1" }), true);
  assert.equal(
    await allowed({ action: "metrics", app: "", stream: "", peer: "127.0.0.1:9" }),
    true,
  );
  assert.equal(
    await allowed({ action: "metrics", app: "", stream: "", peer: "10.0.0.1:9" }),
    false,
  );
  assert.equal(await allowed({ action: "publish", credentials: { token: "tok-1" } }), true);
  assert.equal(await allowed({ action: "publish", query: "token=tok-1" }), true);
  assert.equal(await allowed({ action: "publish", query: "token=tok-2" }), false);
});

Deno.test("JWT: the claim's permissions decide; tampered, expired and foreign tokens are refused", async () => {
  const { privateKey, jwk } = await keyPair("ES256", "k1");
  const policy = new AccessPolicy({ jwt: { key: jwk } });
  const exp = Math.floor(Date.now() / 1000) + 60;
  const token = await signJwt(
    { exp, arcly: [{ action: "read", path: "live/*" }, { action: "api" }] },
    privateKey,
    "ES256",
  );
  const decide = (over: Partial<AuthRequest>) => policy.decide(request(over));
  assert.equal((await decide({ credentials: { token } })).allowed, true);
  assert.equal((await decide({ query: `jwt=${token}` })).allowed, true);
  assert.equal(
    (await decide({ action: "api", app: "", stream: "", query: `token=${token}` })).allowed,
    true,
  );
  assert.match(
    (await decide({ action: "publish", credentials: { token } })).reason,
    /does not allow/,
  );
  assert.match((await decide({ credentials: { token: tamper(token) } })).reason, /signature|JSON/);
  const expired = await signJwt(
    { exp: exp - 3600, arcly: [{ action: "read" }] },
    privateKey,
    "ES256",
  );
  assert.match((await decide({ credentials: { token: expired } })).reason, /expired/);
  const junk = await signJwt({ arcly: [{ action: "fly" }] }, privateKey, "ES256");
  assert.match((await decide({ credentials: { token: junk } })).reason, /not one of/);
  const named = new AccessPolicy({ jwt: { key: jwk, claim: "permissions" } });
  const other = await signJwt({ permissions: [{ action: "read" }] }, privateKey, "ES256");
  assert.equal((await named.decide(request({ credentials: { token: other } }))).allowed, true);
});

Deno.test("update swaps the rules at once; a broken config throws and keeps the old ones", async () => {
  const lines = new LogLines();
  const policy = new AccessPolicy(OPEN_ACCESS, { logger: lines });
  const registry = new Registry({ authorize: policy.authorize });
  assert.equal(await registry.authorize(request()), true);
  policy.update({ grants: [{ permissions: [{ action: "publish" }] }] });
  assert.equal(await registry.authorize(request()), false);
  await lines.waitFor(/warn access: refused read "live\/cam" via rtmp from "192.0.2.10:5000"/);
  const broken = [
    [{ grants: [{ permissions: [{ action: "fly" }] }] }, "grants[0].permissions[0].action"],
    [{ grants: [{ ips: ["10/8"], permissions: [] }] }, "grants[0].ips[0]"],
    [{ grants: [{ user: "a", permissions: [] }] }, "grants[0]"],
    [
      { grants: [{ user: "a", secret: "pbkdf2-sha256$1$a$b", permissions: [] }] },
      "grants[0].secret",
    ],
    [
      { grants: [{ permissions: [{ action: "read", path: "~(" }] }] },
      "grants[0].permissions[0].path",
    ],
    [{ hook: { url: "ftp://x" } }, "hook.url"],
    [{ jwt: {} }, "jwt"],
  ] as const;
  for (const [config, key] of broken) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => policy.update(config as any),
      (e) => e instanceof AccessConfigError && e.key === key,
      key,
    );
  }
  assert.equal(await registry.authorize(request({ action: "publish" })), true, "the old rules");
});

Deno.test("the log line escapes what the peer sent", async () => {
  const lines = new LogLines();
  const policy = new AccessPolicy({}, { logger: lines });
  await policy.authorize(request({ stream: 'x"\n\u001b[31m', peer: "1.2.3.4:5" }));
  assert.equal(lines.lines.length, 1);
  assert.ok(!lines.lines[0].includes("\n") && !lines.lines[0].includes("\u001b"), lines.lines[0]);
  assert.match(lines.lines[0], /nothing allows read/);
});
