/**
 * RTMP memory under the amplification attack: after `connect`, each connection starts a
 * message announced 8 MiB long on 63 chunk streams and sends one 64 KiB chunk of each
 * (about 4 MiB in all), then stalls. Prints the process's RSS and the bytes allocated for
 * ArrayBuffers (V8's `external`: allocated, even where untouched pages are not resident yet)
 * before and after, and how long a good client's `connect` takes meanwhile.
 *
 * ```sh
 * deno run -A bench/rtmp_memory.ts [--connections 3] [--sent 66560]
 * ```
 *
 * The server runs in this process with its defaults (so the cap is 16 MiB per connection).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Registry } from "../mod.ts";
import { commandMessage, serveRtmp } from "../ingest/rtmp/mod.ts";
import { TestClient } from "../tests/ingest/rtmp/_client.ts";
import { concat, unhex } from "../tests/_util/bytes.ts";

const args = parseArgs({
  options: {
    connections: { type: "string", default: "3" },
    sent: { type: "string", default: "66560" },
  },
});
const connections = Number(args.values.connections);
const sent = Number(args.values.sent);

const server = serveRtmp({ registry: new Registry(), hostname: "127.0.0.1", port: 0 });
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const before = Deno.memoryUsage();

const size = new Uint8Array(4);
new DataView(size.buffer).setUint32(0, sent);
const parts = [unhex("02 000000 000004 01 00000000"), size];
for (let csid = 3; csid < 66; csid++) {
  const basic = Uint8Array.from(csid < 64 ? [csid] : [0, csid - 64]);
  parts.push(basic, unhex("000000 7fffff 09 01000000"), new Uint8Array(sent).fill(csid));
}
const attack = concat(parts);

const clients: TestClient[] = [];
const started = performance.now();
for (let i = 0; i < connections; i++) {
  const c = await TestClient.open(server.addr.port);
  clients.push(c);
  await c.handshake();
  await c.connect();
  await c.write(attack).catch(() => {});
}
// A good client meanwhile: how long does connect take?
const good = await TestClient.open(server.addr.port);
const t0 = performance.now();
await good.handshake();
await good.send(commandMessage(3, 0, "connect", 1, { app: "live" }));
await good.nextCommand(["_result"]);
const goodMs = performance.now() - t0;
await new Promise((r) => setTimeout(r, 500));
const after = Deno.memoryUsage();
const open = clients.filter((c) => c.conn).length;
console.log(
  `${connections} connections × 63 chunk streams × 8 MiB announced, ${
    mib(attack.length)
  } sent each: ` +
    `RSS ${mib(before.rss)} → ${mib(after.rss)}, ` +
    `ArrayBuffers (external) ${mib(before.external)} → ${mib(after.external)}, ` +
    `good client connect ${goodMs.toFixed(0)} ms, attack sent in ${
      (performance.now() - started).toFixed(0)
    } ms (${open} clients)`,
);
good.close();
for (const c of clients) c.close();
await server.close();
