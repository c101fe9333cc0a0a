/**
 * What serveHttp's connection guard costs and bounds, on loopback:
 * - how long a slowloris client (a header byte every 200 ms) lasts,
 * - response throughput through the guard against `Deno.serve` alone,
 * - time per small request (a response written in two parts) on one keep-alive connection,
 * - memory per connection waiting in a request head (client sockets of this process
 *   included).
 *
 * `deno run -A --v8-flags=--expose-gc bench/http_guard.ts [--mib 512] [--idle 500]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { serveHttp } from "../ingest/http/server.ts";

const { values } = parseArgs({
  options: { mib: { type: "string", default: "512" }, idle: { type: "string", default: "500" } },
});
const mib = Number(values.mib);
const idleCount = Number(values.idle);
const body = new Uint8Array(1024 * 1024);

/** A small response written in two parts (head and body apart, as live routes do). */
function small(): Response {
  const part = new Uint8Array(3000);
  let parts = 2;
  return new Response(
    new ReadableStream({
      async pull(controller) {
        if (parts-- === 0) return controller.close();
        controller.enqueue(part);
        await new Promise((r) => setTimeout(r, 1));
      },
    }),
  );
}

/** Mean milliseconds per small request, 100 in a row. */
async function smallRequests(port: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < 100; i++) await (await fetch(`http://127.0.0.1:${port}/small`)).arrayBuffer();
  return (performance.now() - start) / 100;
}

/** A response of `mib` MiB, sent 1 MiB at a time. */
function big(): Response {
  let left = mib;
  return new Response(
    new ReadableStream({
      pull(controller) {
        if (left-- > 0) controller.enqueue(body);
        else controller.close();
      },
    }),
  );
}

async function download(port: number): Promise<number> {
  const start = performance.now();
  const response = await fetch(`http://127.0.0.1:${port}/`);
  let bytes = 0;
  for await (const chunk of response.body!) bytes += chunk.length;
  const seconds = (performance.now() - start) / 1000;
  return bytes / 1024 / 1024 / seconds;
}

async function slowloris(port: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const start = performance.now();
  await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n"));
  let open = true;
  const closed = conn.read(new Uint8Array(64)).catch(() => null).then(() => (open = false));
  while (open && performance.now() - start < 60_000) {
    await new Promise((r) => setTimeout(r, 200));
    await conn.write(new TextEncoder().encode("X")).catch(() => (open = false));
  }
  await closed;
  conn.close();
  return performance.now() - start;
}

function rss(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Deno.memoryUsage().rss;
}

const route = (url: string) => new URL(url).pathname === "/small" ? small() : big();
const guarded = serveHttp({
  routes: [(r) => route(r.url)],
  hostname: "127.0.0.1",
  port: 0,
  maxConnectionsPerIp: 0, // the idle connections all come from loopback
});
const plain = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (r) => route(r.url));

const before = rss();
const idle: Deno.Conn[] = [];
for (let i = 0; i < idleCount; i++) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: guarded.addr.port });
  await conn.write(new TextEncoder().encode("GET /x HTTP/1.1\r\nHost: x\r\n"));
  idle.push(conn);
}
await new Promise((r) => setTimeout(r, 500));
const per = (rss() - before) / idleCount;
console.log(`${idleCount} connections waiting in a head: ${(per / 1024).toFixed(1)} KiB each`);
for (const conn of idle) conn.close();
await new Promise((r) => setTimeout(r, 200));
console.log(`slowloris cut off after ${(await slowloris(guarded.addr.port)).toFixed(0)} ms`);
for (let run = 0; run < 3; run++) {
  const through = await download(guarded.addr.port);
  const direct = await download(plain.addr.port);
  console.log(
    `${mib} MiB response: guard ${through.toFixed(0)} MiB/s, Deno.serve ${direct.toFixed(0)} MiB/s`,
  );
}

for (let run = 0; run < 2; run++) {
  const through = await smallRequests(guarded.addr.port);
  const direct = await smallRequests(plain.addr.port);
  console.log(
    `small request: guard ${through.toFixed(2)} ms, Deno.serve ${direct.toFixed(2)} ms`,
  );
}

await guarded.close();
await plain.shutdown();
