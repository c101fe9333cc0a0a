/** serveHttp's connection guard: head deadline, idle timeout, per-address limit, addresses. */

import assert from "node:assert/strict";
import { type HttpServerOptions, serveHttp } from "../../../ingest/http/server.ts";
import { within } from "../../_util/within.ts";
import { LogLines } from "../../_util/log.ts";

const encoder = new TextEncoder();

/** A server on a free loopback port; `run` gets its port and log. */
async function withServer(
  options: Partial<HttpServerOptions>,
  run: (port: number, log: LogLines) => Promise<void>,
): Promise<void> {
  const log = new LogLines();
  const server = serveHttp({
    routes: [
      (_request, url, info) =>
        url.pathname === "/peer"
          ? new Response(`${info.remoteAddr.hostname}:${info.remoteAddr.port}`)
          : undefined,
      async (request, url) =>
        url.pathname === "/echo" ? new Response(await request.text()) : undefined,
    ],
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
    ...options,
  });
  try {
    await run(server.addr.port, log);
  } finally {
    await server.close();
  }
}

/** Reads until the peer closes; resolves with everything read. */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  const chunks: string[] = [];
  const buf = new Uint8Array(4096);
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(decoder.decode(buf.subarray(0, n)));
    }
  } catch {
    // reset by the server counts as closed
  }
  return chunks.join("");
}

/** Send a byte every 50 ms (5 s at most) until the server closes; what it answered. */
async function dribbleUntilClosed(conn: Deno.Conn): Promise<string> {
  const closed = readToEnd(conn);
  let stop = false;
  const dribbling = (async () => {
    for (let i = 0; i < 100 && !stop; i++) {
      await new Promise((r) => setTimeout(r, 50));
      await conn.write(encoder.encode("X")).catch(() => (stop = true));
    }
  })();
  const answer = await within(closed, 4000, "closing the dribbling connection");
  stop = true;
  await dribbling;
  return answer;
}

Deno.test("serveHttp: a client dribbling its request head is cut off at the head deadline", async () => {
  await withServer({ requestTimeoutMs: 300 }, async (port, log) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(encoder.encode("GET /peer HTTP/1.1\r\nHost: x\r\n"));
      const answer = await dribbleUntilClosed(conn);
      assert.equal(answer, "", "no response to an incomplete head");
      await log.waitFor(/closed: first request head not complete within 300 ms/);
    } finally {
      conn.close();
    }
  });
});

Deno.test("serveHttp: a client dribbling its request body is cut off; a whole body is echoed", async () => {
  await withServer({ requestTimeoutMs: 300 }, async (port, log) => {
    const echoed = await fetch(`http://127.0.0.1:${port}/echo`, { method: "POST", body: "offer" });
    assert.equal(await echoed.text(), "offer");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(
        encoder.encode("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nv=0"),
      );
      const answer = await dribbleUntilClosed(conn);
      assert.doesNotMatch(answer, /^HTTP\/1\.1 200/);
      await log.waitFor(/closed: request body not complete within 300 ms of its head/);
    } finally {
      conn.close();
    }
  });
});

Deno.test("serveHttp: a connection that says nothing, and a keep-alive one left idle, are closed", async () => {
  await withServer({ requestTimeoutMs: 300, keepAliveTimeoutMs: 400 }, async (port, log) => {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    const idle = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await idle.write(encoder.encode("GET /peer HTTP/1.1\r\nHost: x\r\n\r\n"));
      const [nothing, answered] = await within(
        Promise.all([readToEnd(silent), readToEnd(idle)]),
        4000,
        "closing both connections",
      );
      assert.equal(nothing, "");
      assert.match(answered, /^HTTP\/1\.1 200 OK/);
      await log.waitFor(/closed: first request head not complete within 300 ms/);
      await log.waitFor(/closed: idle for 400 ms between requests/);
    } finally {
      silent.close();
      idle.close();
    }
  });
});

Deno.test("serveHttp: a slow response and a second keep-alive request are not cut off", async () => {
  const log = new LogLines();
  const server = serveHttp({
    routes: [async () => {
      await new Promise((r) => setTimeout(r, 700)); // longer than both deadlines
      return new Response("late");
    }],
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
    requestTimeoutMs: 300,
    keepAliveTimeoutMs: 300,
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    assert.equal(await (await fetch(`${base}/a`)).text(), "late");
    assert.equal(await (await fetch(`${base}/b`)).text(), "late"); // same pooled connection
    assert.deepEqual(log.lines.filter((l) => / closed: /.test(l)), []);
  } finally {
    await server.close();
  }
});

Deno.test("serveHttp: connections over the per-address limit get 503 and one warning", async () => {
  await withServer({ maxConnectionsPerIp: 2 }, async (port, log) => {
    const held = [
      await Deno.connect({ hostname: "127.0.0.1", port }),
      await Deno.connect({ hostname: "127.0.0.1", port }),
    ];
    try {
      for (let i = 0; i < 3; i++) {
        const extra = await Deno.connect({ hostname: "127.0.0.1", port });
        const answer = await within(readToEnd(extra), 4000, "refusing a connection");
        extra.close();
        assert.match(answer, /^HTTP\/1\.1 503 /);
      }
      const warnings = log.lines.filter((l) => /refusing connections from 127\.0\.0\.1/.test(l));
      assert.equal(warnings.length, 1, log.lines.join("\n"));
      assert.match(warnings[0], /2 open, the limit per address is 2/);
      held.pop()!.close();
      await log.waitFor(/refused 3 connections from 127\.0\.0\.1/);
      const response = await fetch(`http://127.0.0.1:${port}/peer`);
      assert.equal(response.status, 200);
      await response.body?.cancel();
    } finally {
      for (const conn of held) conn.close();
    }
  });
});

Deno.test("serveHttp: routes see the client's own address", async () => {
  await withServer({}, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(
        encoder.encode("GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
      );
      const answer = await within(readToEnd(conn), 4000, "the answer");
      assert.match(answer, new RegExp(`\r\n\r\n127\\.0\\.0\\.1:${conn.localAddr.port}$`));
    } finally {
      conn.close();
    }
  });
});
