import assert from "node:assert/strict";
import { serveHttp } from "../../../ingest/http/mod.ts";
import { LogLines } from "../../_util/log.ts";
import { makeCert } from "../../_util/tls.ts";
import { within } from "../../_util/within.ts";

/** One HTTP/1.1 GET over `conn`; the whole response as text (the server closes after it). */
async function get(conn: Deno.Conn, path: string): Promise<string> {
  await conn.write(
    new TextEncoder().encode(
      `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    ),
  );
  return await new Response(conn.readable).text();
}

Deno.test("https: the routes answer over TLS beside plain HTTP, seeing the client's own address", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-https-" });
  const { certFile, keyFile, cert } = await makeCert(dir, "https");
  const log = new LogLines();
  const server = serveHttp({
    routes: [
      (_request, url, info) =>
        url.pathname === "/peer" ? new Response(`${info.remoteAddr.port}`) : undefined,
    ],
    hostname: "127.0.0.1",
    port: 0,
    tls: { port: 0, certFile, keyFile },
    logger: log,
  });
  try {
    const secure = await Deno.connectTls({
      hostname: "localhost",
      port: server.tlsAddr!.port,
      caCerts: [cert],
    });
    const port = secure.localAddr.port;
    const answer = await get(secure, "/peer");
    assert.match(answer, /^HTTP\/1\.1 200/);
    assert.ok(answer.endsWith(`\r\n\r\n${port}`), `the route saw port ${port}:\n${answer}`);
    const plain = await fetch(`http://127.0.0.1:${server.addr.port}/peer`);
    assert.equal(plain.status, 200);
    await plain.body?.cancel();
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("https only: no plain port, and a stalled TLS handshake is closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-https-" });
  const { certFile, keyFile, cert } = await makeCert(dir, "https");
  const server = serveHttp({
    routes: [() => new Response("ok")],
    hostname: "127.0.0.1",
    port: null,
    tls: { port: 0, certFile, keyFile, handshakeTimeoutMs: 300 },
  });
  const client = Deno.createHttpClient({ caCerts: [cert] });
  try {
    assert.equal(server.addr.port, server.tlsAddr!.port);
    const response = await fetch(`https://localhost:${server.tlsAddr!.port}/`, { client });
    assert.equal(await response.text(), "ok");
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.tlsAddr!.port });
    const read = await within(stalled.read(new Uint8Array(1)).catch(() => null), 5000, "close");
    assert.equal(read, null, "the server closed the stalled connection");
    stalled.close();
  } finally {
    client.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("https: a renewed certificate answers new connections; a response under way goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-https-" });
  const first = await makeCert(dir, "first");
  const second = await makeCert(dir, "second");
  const log = new LogLines();
  const release = Promise.withResolvers<void>();
  const server = serveHttp({
    routes: [(_request, url) => {
      if (url.pathname !== "/slow") return new Response("fast");
      // A body that ends only when the test says so, as a live HTTP-FLV response would.
      const body = new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode("begun "));
          await release.promise;
          controller.enqueue(new TextEncoder().encode("done"));
          controller.close();
        },
      });
      return new Response(body);
    }],
    hostname: "127.0.0.1",
    port: null,
    tls: { port: 0, certFile: first.certFile, keyFile: first.keyFile },
    logger: log,
  });
  const port = server.tlsAddr!.port;
  const oldClient = Deno.createHttpClient({ caCerts: [first.cert] });
  const newClient = Deno.createHttpClient({ caCerts: [second.cert] });
  try {
    const slow = await fetch(`https://localhost:${port}/slow`, { client: oldClient });
    const reader = slow.body!.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value, "begun ");
    await Deno.copyFile(second.certFile, first.certFile);
    await Deno.copyFile(second.keyFile, first.keyFile);
    await log.waitFor(/https: reloaded the TLS certificate/, 10_000);
    const fresh = await fetch(`https://localhost:${port}/`, { client: newClient });
    assert.equal(await fresh.text(), "fast", "a new connection is served with the new pair");
    release.resolve();
    let rest = "";
    for (let r; !(r = await reader.read()).done;) rest += r.value;
    assert.equal(rest, "done", "the response from before the reload completed");
  } finally {
    release.resolve();
    oldClient.close();
    newClient.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
