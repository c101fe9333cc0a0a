import assert from "node:assert/strict";
import { JwtError, JwtVerifier, looksLikeJwt } from "../../../server/access/mod.ts";
import { prng } from "../../_util/fuzz.ts";
import { keyPair, signJwt, tamper } from "./_sign.ts";

const now = () => Math.floor(Date.now() / 1000);

async function rejects(verifier: JwtVerifier, token: string, why: RegExp) {
  await assert.rejects(verifier.verify(token), (e) => e instanceof JwtError && why.test(e.message));
}

Deno.test("each algorithm: a signed token verifies, a tampered one does not", async () => {
  for (const alg of ["RS256", "ES256", "EdDSA"] as const) {
    const { privateKey, jwk } = await keyPair(alg, `k-${alg}`);
    const verifier = new JwtVerifier({ key: jwk });
    const token = await signJwt({ sub: "ann", exp: now() + 60 }, privateKey, alg);
    assert.equal((await verifier.verify(token)).sub, "ann", alg);
    await rejects(verifier, tamper(token), /signature|JSON/);
  }
  const secret = "a shared secret of reasonable length";
  const hmac = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const token = await signJwt({ sub: "bob" }, hmac, "HS256");
  assert.equal((await new JwtVerifier({ key: secret }).verify(token)).sub, "bob");
  await rejects(new JwtVerifier({ key: "another secret" }), token, /signature/);
});

Deno.test("exp, nbf, iss, aud, alg none and a key of the wrong type are refused", async () => {
  const { privateKey, jwk } = await keyPair("ES256", "k1");
  const verifier = new JwtVerifier({ key: jwk, issuer: "me", audience: "arcly", leewaySeconds: 5 });
  const sign = (claims: Record<string, unknown>) => signJwt(claims, privateKey, "ES256");
  const ok = { iss: "me", aud: "arcly" };
  assert.equal((await verifier.verify(await sign({ ...ok, exp: now() + 60 }))).iss, "me");
  assert.ok(await verifier.verify(await sign({ ...ok, aud: ["x", "arcly"] })));
  await rejects(verifier, await sign({ ...ok, exp: now() - 60 }), /expired/);
  await rejects(verifier, await sign({ ...ok, exp: "soon" }), /expired/);
  await rejects(verifier, await sign({ ...ok, nbf: now() + 60 }), /not valid yet/);
  await rejects(verifier, await sign({ ...ok, iss: "them" }), /issuer/);
  await rejects(verifier, await sign({ ...ok, aud: "other" }), /audience/);
  const [, payload] = (await sign(ok)).split(".");
  const none = `${btoa('{"alg":"none"}').replace(/=+$/, "")}.${payload}.`;
  await rejects(verifier, none, /algorithm/);
  const { privateKey: rsa } = await keyPair("RS256", "r");
  await rejects(verifier, await signJwt(ok, rsa, "RS256"), /does not fit/);
});

Deno.test("JWKS: fetched once, refetched for an unknown kid at most once per refresh interval", async () => {
  const first = await keyPair("RS256", "one");
  const second = await keyPair("EdDSA", "two");
  let keys = [first.jwk];
  let fetches = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    fetches++;
    return Response.json({ keys });
  });
  try {
    const verifier = new JwtVerifier({
      jwksUrl: `http://127.0.0.1:${server.addr.port}/jwks.json`,
      jwksRefreshMs: 60_000,
    });
    const a = await signJwt({ n: 1 }, first.privateKey, "RS256", "one");
    assert.equal((await verifier.verify(a)).n, 1);
    assert.equal((await verifier.verify(a)).n, 1);
    assert.equal(fetches, 1);
    // a new key appears; the first unknown kid is within the refresh interval of the
    // first fetch, so it is refused without a fetch
    keys = [first.jwk, second.jwk];
    const b = await signJwt({ n: 2 }, second.privateKey, "EdDSA", "two");
    await rejects(verifier, b, /no JWKS key/);
    assert.equal(fetches, 1);
    const eager = new JwtVerifier({
      jwksUrl: `http://127.0.0.1:${server.addr.port}/jwks.json`,
      jwksRefreshMs: 0,
    });
    assert.equal((await eager.verify(b)).n, 2);
    await rejects(eager, await signJwt({}, first.privateKey, "RS256", "gone"), /no JWKS key/);
    await rejects(eager, tamper(b), /signature|JSON/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("JWKS: an unreachable or broken key set refuses with the reason", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (r) =>
      new URL(r.url).pathname === "/500" ? new Response("x", { status: 500 }) : new Response("{"),
  );
  try {
    const { privateKey } = await keyPair("ES256", "k");
    const token = await signJwt({}, privateKey, "ES256", "k");
    const base = `http://127.0.0.1:${server.addr.port}`;
    await rejects(new JwtVerifier({ jwksUrl: `${base}/500` }), token, /fetched: status 500/);
    await rejects(new JwtVerifier({ jwksUrl: `${base}/bad` }), token, /not JSON/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("fuzz: verify refuses mangled tokens with a JwtError and never throws anything else", async () => {
  const { privateKey, jwk } = await keyPair("ES256", "k");
  const verifier = new JwtVerifier({ key: jwk });
  const good = await signJwt({ sub: "x", arcly: [{ action: "read" }] }, privateKey, "ES256");
  const rand = prng(0x1a7);
  const alphabet = "eyJAaZz09-_.=+/ ";
  for (let i = 0; i < 1500; i++) {
    const chars = [...good];
    const edits = 1 + Math.floor(rand() * 3);
    for (let e = 0; e < edits; e++) {
      chars[Math.floor(rand() * chars.length)] = alphabet[Math.floor(rand() * alphabet.length)];
    }
    const token = rand() < 0.2
      ? chars.slice(0, Math.floor(rand() * chars.length)).join("")
      : chars.join("");
    if (token === good) continue;
    try {
      await verifier.verify(token);
      // a change in the signature's last base64url character can leave its bytes intact
      assert.equal(token.slice(0, token.lastIndexOf(".")), good.slice(0, good.lastIndexOf(".")));
    } catch (error) {
      assert.ok(error instanceof JwtError, `${token}: ${error}`);
    }
    looksLikeJwt(token);
  }
});

Deno.test("a verified token is remembered, but exp is checked on every use and a changed token verifies anew", async () => {
  const { privateKey, jwk } = await keyPair("ES256", "k");
  const verifier = new JwtVerifier({ key: jwk, leewaySeconds: 0 });
  const exp = now() + 60;
  const token = await signJwt({ exp }, privateKey, "ES256");
  assert.equal((await verifier.verify(token)).exp, exp);
  assert.equal((await verifier.verify(token)).exp, exp, "from the cache");
  await assert.rejects(verifier.verify(token, (exp + 1) * 1000), /expired/);
  await rejects(verifier, tamper(token), /signature|JSON/);
});
