/**
 * What the TLS front costs: a server writes `--mib` MiB in 64 KiB writes to one client over
 * plain TCP, over Deno's TLS directly, and over the TLS front (`serveTcpTls`: a plain public
 * socket relaying to Deno's TLS on a loopback port). Prints MiB/s for each, best of
 * `--repeat`.
 *
 * ```sh
 * deno run -A bench/tls.ts [--mib 256] [--repeat 3]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { silentLogger } from "../mod.ts";
import { serveTcp, type TcpConnectionRunner } from "../ingest/_tcp_server.ts";
import { serveTcpTls } from "../ingest/_tls_server.ts";
import { makeCert } from "../tests/_util/tls.ts";

const { values } = parseArgs({
  options: { mib: { type: "string", default: "256" }, repeat: { type: "string", default: "3" } },
});
const total = Number(values.mib) * 2 ** 20;
const repeat = Number(values.repeat);
const chunk = new Uint8Array(64 * 1024).fill(7);

/** Writes `total` bytes, then closes. */
class Writer implements TcpConnectionRunner {
  #conn: Deno.Conn;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async run(): Promise<void> {
    try {
      for (let sent = 0; sent < total; sent += chunk.length) {
        for (let o = 0; o < chunk.length;) o += await this.#conn.write(chunk.subarray(o));
      }
    } catch {
      // closed
    }
    this.close();
  }
  checkTimeouts(): void {}
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // closed
    }
  }
}

async function receive(conn: Deno.Conn): Promise<number> {
  const started = performance.now();
  const buf = new Uint8Array(256 * 1024);
  let got = 0;
  for (let n; (n = await conn.read(buf)) !== null;) got += n;
  if (got !== total) throw new Error(`got ${got} of ${total}`);
  conn.close();
  return total / 2 ** 20 / ((performance.now() - started) / 1000);
}

const dir = await Deno.makeTempDir({ prefix: "arcly-bench-tls-" });
const { certFile, keyFile, cert } = await makeCert(dir, "bench");
const common = { protocol: "bench", hostname: "127.0.0.1", port: 0, logger: silentLogger };
const accept = (conn: Deno.Conn<Deno.NetAddr>) => new Writer(conn);
const plain = serveTcp({ ...common, sweepEveryMs: 1000, accept });
const front = serveTcpTls({
  ...common,
  sweepEveryMs: 1000,
  tls: { port: 0, certFile, keyFile },
  accept,
});
const direct = Deno.listenTls({
  hostname: "127.0.0.1",
  port: 0,
  cert: await Deno.readTextFile(certFile),
  key: await Deno.readTextFile(keyFile),
});
const serving = (async () => {
  for await (const conn of direct) void new Writer(conn).run();
})().catch(() => {});

const best = async (connect: () => Promise<Deno.Conn>) => {
  let top = 0;
  for (let i = 0; i < repeat; i++) top = Math.max(top, await receive(await connect()));
  return top.toFixed(0);
};
const tls = (port: number) => () =>
  Deno.connectTls({ hostname: "localhost", port, caCerts: [cert] });
console.log(`${values.mib} MiB to one client, MiB/s (best of ${repeat}):`);
console.log(
  `  plain TCP ${await best(() => Deno.connect({ hostname: "127.0.0.1", port: plain.addr.port }))}`,
);
console.log(`  Deno TLS directly ${await best(tls(direct.addr.port))}`);
console.log(`  TLS front (relay + Deno TLS) ${await best(tls(front.addr.port))}`);
direct.close();
await serving;
await Promise.all([plain.close(), front.close()]);
await Deno.remove(dir, { recursive: true });
