import assert from "node:assert/strict";
import { serveTcp, type TcpConnectionRunner } from "../../ingest/_tcp_server.ts";
import { LogLines } from "../_util/log.ts";
import { resetBurst } from "../_util/reset.ts";
import { within } from "../_util/within.ts";

/** A runner that greets its peer with one byte and then waits for the peer to leave. */
class Greeter implements TcpConnectionRunner {
  #conn: Deno.TcpConn;
  #closed = false;
  constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }
  async run(): Promise<void> {
    try {
      await this.#conn.write(new Uint8Array([42]));
      while (await this.#conn.read(new Uint8Array(16)) !== null);
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

/** Connect and read the first byte, or null when the server closes at once. */
async function greeting(conn: Deno.TcpConn): Promise<number | null> {
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
