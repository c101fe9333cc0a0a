/**
 * A `redis-server` for tests: on a free loopback port, nothing saved to disk, stopped and
 * started again on the same port to play an outage.
 */

import { freeTcpPort } from "./ports.ts";

/** A running (or stopped) test Redis. */
export interface TestRedis {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Kill it (SIGKILL: as a crash); resolves once it has exited. */
  stop(): Promise<void>;
  /** Start it again on the same port (empty), once it answers. */
  start(): Promise<void>;
}

/** Start `redis-server` on a free port; resolves once it answers PING. */
export async function startRedis(): Promise<TestRedis> {
  const port = freeTcpPort();
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command("redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await answersPing(port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${port} in 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (!child) return;
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      child = undefined;
    },
    start,
  };
}

/** Whether a Redis on `port` answers `PING` with `+PONG` (within 1 s). */
async function answersPing(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  const timer = setTimeout(() => conn?.close(), 1000);
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(16);
    const n = await conn.read(buffer);
    return n !== null && new TextDecoder().decode(buffer.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed by the timer */ }
  }
}
