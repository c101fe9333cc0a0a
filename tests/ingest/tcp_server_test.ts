import assert from "node:assert/strict";
import { serveTcp, type TcpConnectionRunner } from "../../ingest/_tcp_server.ts";
import type { TlsListenOptions } from "../../ingest/tls.ts";
import { serveTcpTls } from "../../ingest/_tls_server.ts";
import { LogLines } from "../_util/log.ts";
import { makeCert } from "../_util/tls.ts";
import { resetBurst } from "../_util/reset.ts";
import { within } from "../_util/within.ts";

/** A runner that greets its peer with one byte and then echoes what it sends. */
class Greeter implements TcpConnectionRunner {
  #conn: Deno.Conn;
  #closed = false;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async run(): Promise<void> {
    try {
      await this.#conn.write(new Uint8Array([42]));
      const buf = new Uint8Array(16);
      for (let n; (n = await this.#conn.read(buf)) !== null;) {
        await this.#conn.write(buf.subarray(0, n));
      }
    } catch {
      // closed
    }
  }
  checkTimeouts(): void {}
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }
}

function greeterServer(log: LogLines, maxConnectionsPerIp?: number) {
  return serveTcp({
    protocol: "test",
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
    sweepEveryMs: 1000,
    maxConnectionsPerIp,
    accept: (conn) => new Greeter(conn),
  });
}

/** The greeter behind TLS; every connection's `remoteAddr` lands in `peers`. */
function tlsGreeterServer(log: LogLines, tls: TlsListenOptions, peers: Deno.NetAddr[] = []) {
  return serveTcpTls({
    protocol: "tests",
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
    sweepEveryMs: 1000,
    tls,
    accept: (conn) => {
      peers.push(conn.remoteAddr);
      return new Greeter(conn);
    },
  });
}

/** Connect and read the first byte, or null when the server closes at once. */
async function greeting(conn: Deno.Conn): Promise<number | null> {
  const buf = new Uint8Array(1);
  const n = await within(conn.read(buf), 5000, "the greeting or a close");
  return n === null ? null : buf[0];
}

Deno.test("tcp server: connections reset before accept never pause the listener", async () => {
  const log = new LogLines();
  const server = greeterServer(log);
  try {
    await resetBurst(server.addr.port, 300);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    try {
      assert.equal(await greeting(conn), 42, "a good client after the burst is served");
    } finally {
      conn.close();
    }
    assert.ok(server.acceptStats.abortedBeforeAccept > 0, "the burst reproduced failed accepts");
    assert.equal(server.acceptStats.backoffs, 0, "accepting never paused");
    assert.deepEqual(log.lines.filter((l) => /accept failed/.test(l)), []);
  } finally {
    await server.close();
  }
});

Deno.test("tcp server: connections over maxConnectionsPerIp are closed with one log line", async () => {
  const log = new LogLines();
  const server = greeterServer(log, 2);
  const port = server.addr.port;
  const open: Deno.TcpConn[] = [];
  const connect = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    open.push(conn);
    return conn;
  };
  try {
    assert.equal(await greeting(await connect()), 42);
    const second = await connect();
    assert.equal(await greeting(second), 42);
    for (let i = 0; i < 5; i++) assert.equal(await greeting(await connect()), null, `extra ${i}`);
    assert.equal(server.acceptStats.refusedPerIp, 5);
    const lines = log.lines.filter((l) => /refused a connection/.test(l));
    assert.deepEqual(lines, [
      'warn test: refused a connection from "127.0.0.1": 2 connections from that address already (limit 2)',
    ]);
    second.close();
    open.splice(open.indexOf(second), 1);
    // The slot frees once the server sees the close; a new connection is then served.
    await within(
      (async () => {
        while (server.connections.size > 1) await new Promise((r) => setTimeout(r, 10));
      })(),
      5000,
      "the server noticing the close",
    );
    assert.equal(await greeting(await connect()), 42);
  } finally {
    for (const conn of open) conn.close();
    await server.close();
  }
});

Deno.test("tcp server over TLS: a renewed certificate serves new connections, open ones go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-tls-" });
  const log = new LogLines();
  const first = await makeCert(dir, "first");
  const second = await makeCert(dir, "second");
  const peers: Deno.NetAddr[] = [];
  const server = tlsGreeterServer(log, { port: 0, ...first }, peers);
  const port = server.addr.port;
  const connect = (cert: string) =>
    Deno.connectTls({ hostname: "localhost", port, caCerts: [cert] });
  const open: Deno.Conn[] = [];
  try {
    const before = await connect(first.cert);
    open.push(before);
    assert.equal(await greeting(before), 42);
    assert.deepEqual(peers, [before.localAddr], "the protocol sees the client, not the relay");
    await Deno.copyFile(second.certFile, first.certFile);
    await Deno.copyFile(second.keyFile, first.keyFile);
    await log.waitFor(/reloaded the TLS certificate/, 10_000);
    const after = await connect(second.cert);
    open.push(after);
    assert.equal(await greeting(after), 42, "a new connection is served with the new pair");
    await before.write(new Uint8Array([7]));
    assert.equal(await greeting(before), 7, "the connection from before the reload still echoes");
    await assert.rejects(async () => {
      const stale = await connect(first.cert);
      open.push(stale);
      await stale.handshake();
    }, "the old certificate is no longer served");
  } finally {
    for (const conn of open) conn.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tcp server over TLS: a client that stalls in the handshake is closed after handshakeTimeoutMs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-tls-" });
  const log = new LogLines();
  const { certFile, keyFile } = await makeCert(dir, "stall");
  const server = tlsGreeterServer(log, { port: 0, certFile, keyFile, handshakeTimeoutMs: 300 });
  try {
    // Nothing at all, and the first 5 bytes of a ClientHello record.
    for (const sent of [[], [0x16, 0x03, 0x01, 0x02, 0x00]]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
      try {
        await conn.write(Uint8Array.from(sent));
        assert.equal(await greeting(conn), null, `closed after ${sent.length} bytes`);
      } finally {
        conn.close();
      }
    }
    assert.equal(server.acceptStats.stalledTlsHandshakes, 2);
    await within(
      (async () => {
        while (server.connections.size > 0) await new Promise((r) => setTimeout(r, 10));
      })(),
      5000,
      "the internal side of the stalled connections ending too",
    );
    await log.waitFor(/closed: TLS handshake not completed within 300 ms/);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tcp server over TLS: a missing file or a key of another certificate is a clear error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "arcly-tls-" });
  const a = await makeCert(dir, "a");
  const b = await makeCert(dir, "b");
  const serve = (certFile: string, keyFile: string) =>
    tlsGreeterServer(new LogLines(), { port: 0, certFile, keyFile });
  try {
    assert.throws(
      () => serve(a.certFile, b.keyFile),
      /TLS certificate ".*a\.crt" and key ".*b\.key" do not match/,
    );
    assert.throws(
      () => serve(`${dir}/none.crt`, a.keyFile),
      /TLS certificate file ".*none\.crt" cannot be read/,
    );
    assert.throws(
      () => serve(a.keyFile, a.keyFile),
      /TLS certificate ".*" and key ".*" cannot be used/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
