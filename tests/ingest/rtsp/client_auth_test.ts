import assert from "node:assert/strict";
import { ClientAuth } from "../../../ingest/rtsp/_client_auth.ts";
import { RtspAuthenticator } from "../../../ingest/rtsp/mod.ts";

Deno.test("client auth: Digest answers our server accepts; a repeated nonce means wrong credentials, a stale one is retried; Basic once", async () => {
  const server = new RtspAuthenticator({ realm: "r", password: () => "pw" });
  const client = new ClientAuth({ user: "u", password: "pw" });
  assert.equal(client.header("OPTIONS", "rtsp://h/a"), undefined, "nothing before a challenge");
  assert.equal(client.accept('Digest realm="r", nonce="n1", algorithm=MD5'), undefined);
  assert.equal(client.scheme, "digest");
  const check = await server.check("DESCRIBE", client.header("DESCRIBE", "rtsp://h/a")!, "n1");
  assert.deepEqual(check, { ok: true, credentials: { user: "u", password: "pw" } });
  assert.match(client.accept('Digest realm="r", nonce="n1"')!, /refused the credentials/);
  assert.equal(client.accept('Digest realm="r", nonce="n1", stale=TRUE'), undefined);
  assert.equal(client.accept('Digest realm="r", nonce="n2"'), undefined);
  assert.match(
    new ClientAuth({ user: "u", password: "p" }).accept(
      'Digest realm="r", nonce="x", algorithm=SHA-256',
    )!,
    /no supported authentication scheme offered \(digest\)/,
  );
  assert.match(
    new ClientAuth({ user: "u", password: "p" }).accept(
      'Digest realm="r", nonce="x", qop="auth-int"',
    )!,
    /no supported/,
  );
  const basic = new ClientAuth({ user: "ü", password: "p:w" });
  assert.equal(basic.accept('Basic realm="x"'), undefined);
  assert.equal(basic.header("PLAY", "rtsp://h/a"), `Basic ${btoa("\xc3\xbc:p:w")}`);
  assert.match(basic.accept('Basic realm="x"')!, /refused the credentials/);
});
