/**
 * HTTP-FLV answered by the connection guard itself, on the client's socket: chunked bodies
 * over HTTP/1.1 with keep-alive before and after, close-delimited over HTTP/1.0, HEAD, the
 * guard's deadlines and refusals on the heads it reads, a client leaving a silent stream.
 */

import assert from "node:assert/strict";
import { Registry } from "../../../mod.ts";
import { httpFlv, serveHttp } from "../../../ingest/http/mod.ts";
import { parseRequestHead } from "../../../ingest/http/_request_head.ts";
import { concat } from "../../_util/bytes.ts";
import { videoFrame } from "../../_util/frames.ts";
import { fuzzParser } from "../../_util/fuzz.ts";
import { LogLines } from "../../_util/log.ts";
import { within } from "../../_util/within.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");

/** A video frame at `ms` of `size` bytes. */
const video = (ms: number, key: boolean, size: number) => videoFrame(ms * 90, key, size);

/** A connection that reads into one growing buffer; `until` waits for a condition on it. */
class Client {
  readonly conn: Deno.Conn;
  bytes = new Uint8Array(0);
  closed = false;
  readonly #reading: Promise<void>;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.#reading = (async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (let n; (n = await conn.read(buf)) !== null;) {
          this.bytes = concat([this.bytes, buf.subarray(0, n)]);
        }
      } catch {
        // reset counts as closed
      }
      this.closed = true;
    })();
  }

  static async open(port: number): Promise<Client> {
    return new Client(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  send(text: string): Promise<number> {
    return this.conn.write(encoder.encode(text));
  }

  get text(): string {
    return decoder.decode(this.bytes);
  }

  async until(what: string, test: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${this.text}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#reading;
  }
}

/** The body of a chunked message starting at `from`, and the index after its last chunk. */
function dechunk(bytes: Uint8Array, from: number): { body: Uint8Array; end: number } | undefined {
  const parts: Uint8Array[] = [];
  for (let o = from;;) {
    const line = decoder.decode(bytes.subarray(o, o + 16)).indexOf("\r\n");
    if (line < 0) return undefined;
    const size = parseInt(decoder.decode(bytes.subarray(o, o + line)), 16);
    o += line + 2;
    if (size === 0) return bytes.length >= o + 2 ? { body: concat(parts), end: o + 2 } : undefined;
    if (bytes.length < o + size + 2) return undefined;
    parts.push(bytes.subarray(o, o + size));
    o += size + 2;
  }
}

/** Where the head that starts at `from` ends (after CRLF CRLF), or -1. */
function headEndAt(text: string, from: number): number {
  const at = text.indexOf("\r\n\r\n", from);
  return at < 0 ? -1 : at + 4;
}

async function withFlvServer(
  run: (port: number, registry: Registry, log: LogLines) => Promise<void>,
  requestTimeoutMs = 10_000,
): Promise<void> {
  const registry = new Registry();
  const log = new LogLines();
  const server = serveHttp({
    routes: [
      httpFlv(registry),
      (_request, url) => url.pathname === "/hello" ? new Response("hi") : undefined,
    ],
    hostname: "127.0.0.1",
    port: 0,
    logger: log,
    requestTimeoutMs,
  });
  try {
    await run(server.addr.port, registry, log);
  } finally {
    await server.close();
  }
}

Deno.test("http-flv direct: keep-alive before and after a chunked FLV body on one connection", async () => {
  await withFlvServer(async (port, registry) => {
    const handle = registry.startPublish("live", "ka", { protocol: "test" });
    const client = await Client.open(port);
    try {
      await client.send("GET /hello HTTP/1.1\r\nhost: x\r\n\r\n");
      await client.until("the first answer", () => client.text.endsWith("hi"));
      const second = client.bytes.length;
      await client.send("GET /live/ka.flv HTTP/1.1\r\nhost: x\r\n\r\n");
      await client.until("a subscriber", () => handle.subscriberCount === 1);
      const frames = [video(0, true, 3000), video(40, false, 200), video(80, false, 100)];
      for (const frame of frames) {
        handle.publish(frame);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      registry.endPublish(handle, "ended");
      const bodyAt = () => headEndAt(client.text, second);
      await client.until("the last chunk", () => bodyAt() > 0 && !!dechunk(client.bytes, bodyAt()));
      const head = client.text.slice(second, bodyAt());
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(head, /\r\ncontent-type: video\/x-flv\r\n/);
      assert.match(head, /\r\naccess-control-allow-origin: \*\r\n/);
      assert.match(head, /\r\ntransfer-encoding: chunked\r\n/);
      assert.doesNotMatch(head, /connection: close/);
      const { body, end } = dechunk(client.bytes, bodyAt())!;
      // FLV header (9 + 4), then each frame as a tag: 11 + 5 + data + 4 (PreviousTagSize)
      assert.equal(body.length, 13 + frames.reduce((n, f) => n + 11 + 5 + f.data.length + 4, 0));
      assert.equal(decoder.decode(body.subarray(0, 3)), "FLV");
      assert.equal(end, client.bytes.length, "nothing after the last chunk");
      // The connection goes on: the next request is answered on it.
      await client.send("GET /hello HTTP/1.1\r\nhost: x\r\n\r\n");
      await client.until("the answer after the stream", () => client.text.endsWith("hi"));
      assert.equal(client.closed, false);
    } finally {
      await client.close();
    }
  });
});

Deno.test("http-flv direct: HTTP/1.0 gets a close-delimited body; HEAD gets the head alone", async () => {
  await withFlvServer(async (port, registry) => {
    const handle = registry.startPublish("live", "old", { protocol: "test" });
    const head = await Client.open(port);
    const old = await Client.open(port);
    try {
      await head.send("HEAD /live/old.flv HTTP/1.1\r\nhost: x\r\n\r\n");
      await head.until("the HEAD answer", () => headEndAt(head.text, 0) > 0);
      assert.match(head.text, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(head.text, /\r\ncontent-type: video\/x-flv\r\n/);
      assert.equal(headEndAt(head.text, 0), head.bytes.length, "no body");
      assert.equal(handle.subscriberCount, 0, "a HEAD starts no play");
      await old.send("GET /live/old.flv HTTP/1.0\r\n\r\n");
      await old.until("a subscriber", () => handle.subscriberCount === 1);
      handle.publish(video(0, true, 500));
      registry.endPublish(handle, "ended");
      await old.until("the close", () => old.closed);
      const at = headEndAt(old.text, 0);
      assert.match(old.text.slice(0, at), /\r\nconnection: close\r\n/);
      assert.doesNotMatch(old.text.slice(0, at), /transfer-encoding/);
      assert.equal(old.bytes.length - at, 13 + 11 + 5 + 500 + 4);
      // The HEAD's connection is still open for another request.
      await head.send("GET /hello HTTP/1.1\r\nhost: x\r\n\r\n");
      await head.until("the answer after HEAD", () => head.text.endsWith("hi"));
    } finally {
      await head.close();
      await old.close();
    }
  });
});

Deno.test("http-flv direct: a client leaving a silent stream ends its play", async () => {
  await withFlvServer(async (port, registry) => {
    const handle = registry.startPublish("live", "quiet", { protocol: "test" });
    const client = await Client.open(port);
    await client.send("GET /live/quiet.flv HTTP/1.1\r\nhost: x\r\n\r\n");
    await client.until("a subscriber", () => handle.subscriberCount === 1);
    await client.close();
    await client.until("the play to end", () => handle.subscriberCount === 0);
    registry.endPublish(handle, "ended");
  });
});

Deno.test("http-flv direct: a dribbled .flv head is cut at the deadline; bad heads are refused", async () => {
  await withFlvServer(async (port, _registry, log) => {
    const slow = await Client.open(port);
    const big = await Client.open(port);
    const bad = await Client.open(port);
    try {
      await slow.send("GET /live/x.flv HTTP/1.1\r\n");
      const dribbling = (async () => {
        for (let i = 0; i < 60 && !slow.closed; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          await slow.send("X").catch(() => {});
        }
      })();
      await big.send(`GET /live/x.flv HTTP/1.1\r\nx-big: ${"a".repeat(40_000)}\r\n\r\n`);
      await bad.send("GET /live/x.flv HTTP/1.1\r\nno colon here\r\n\r\n");
      await within(slow.until("the close", () => slow.closed), 3000, "the dribbler's close");
      await dribbling;
      await big.until("the close", () => big.closed);
      await bad.until("the close", () => bad.closed);
      assert.match(big.text, /^HTTP\/1\.1 431 /);
      assert.match(bad.text, /^HTTP\/1\.1 400 /);
      await log.waitFor(/request head not complete within 300 ms/);
    } finally {
      await Promise.all([slow.close(), big.close(), bad.close()]);
    }
  }, 300);
});

Deno.test("http-flv direct: the request head parser takes any bytes without throwing", () => {
  const seed = encoder.encode(
    "GET /live/a.flv?token=x HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
  );
  const parsed = parseRequestHead(seed)!;
  assert.equal(parsed.target, "/live/a.flv?token=x");
  assert.equal(parsed.headers.get("host"), "h:1");
  fuzzParser("request head", (data) => parseRequestHead(data), seed);
});
