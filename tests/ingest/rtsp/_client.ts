/** A minimal scripted RTSP client for server tests: raw requests, responses, interleaved frames. */

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A parsed response. */
export interface Reply {
  status: number;
  reason: string;
  headers: Headers;
  body: string;
}

/** One TCP connection to the server. */
export class RtspClient {
  readonly conn: Deno.Conn;
  /** Interleaved frames received, by channel. */
  readonly frames: { channel: number; data: Uint8Array }[] = [];
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<void>;
  #buf = new Uint8Array(0);
  #replies: Reply[] = [];
  #wake: (() => void) | undefined;
  #done = false;
  #cseq = 0;
  #paused: PromiseWithResolvers<void> | undefined;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.closed = this.#read();
  }

  static async open(port: number): Promise<RtspClient> {
    return new RtspClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Connect over TLS, trusting `caCert` (PEM) for `localhost`. */
  static async openTls(port: number, caCert: string): Promise<RtspClient> {
    return new RtspClient(
      await Deno.connectTls({ hostname: "localhost", port, caCerts: [caCert] }),
    );
  }

  async #read(): Promise<void> {
    const chunk = new Uint8Array(65536);
    try {
      for (;;) {
        await this.#paused?.promise;
        const n = await this.conn.read(chunk);
        if (n === null) break;
        const joined = new Uint8Array(this.#buf.length + n);
        joined.set(this.#buf);
        joined.set(chunk.subarray(0, n), this.#buf.length);
        this.#buf = joined;
        this.#parse();
        this.#wake?.();
      }
    } catch {
      // reset
    } finally {
      this.#done = true;
      this.#wake?.();
    }
  }

  #parse(): void {
    for (;;) {
      const b = this.#buf;
      if (b.length >= 4 && b[0] === 0x24) {
        const len = (b[2] << 8) | b[3];
        if (b.length < 4 + len) return;
        this.frames.push({ channel: b[1], data: b.slice(4, 4 + len) });
        this.#buf = b.subarray(4 + len);
        continue;
      }
      const text = dec.decode(b);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const lines = text.slice(0, end).split("\r\n");
      const m = /^RTSP\/1\.0 (\d{3}) ?(.*)$/.exec(lines[0]);
      if (!m) throw new Error(`bad status line ${lines[0]}`);
      const headers = new Headers();
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
      }
      const headBytes = enc.encode(text.slice(0, end + 4)).length;
      const length = Number(headers.get("content-length") ?? 0);
      if (b.length < headBytes + length) return;
      this.#replies.push({
        status: Number(m[1]),
        reason: m[2],
        headers,
        body: dec.decode(b.subarray(headBytes, headBytes + length)),
      });
      this.#buf = b.subarray(headBytes + length);
    }
  }

  /** Send raw bytes. */
  async send(bytes: Uint8Array | string): Promise<void> {
    const data = typeof bytes === "string" ? enc.encode(bytes) : bytes;
    for (let o = 0; o < data.length;) o += await this.conn.write(data.subarray(o));
  }

  /** Send an interleaved frame. */
  interleave(channel: number, data: Uint8Array): Promise<void> {
    const out = new Uint8Array(4 + data.length);
    out.set([0x24, channel, data.length >> 8, data.length & 0xff]);
    out.set(data, 4);
    return this.send(out);
  }

  /** Send a request (CSeq added unless `cseq: false`) and wait for the next reply. */
  async request(
    method: string,
    uri: string,
    headers: Record<string, string> = {},
    body = "",
    options: { cseq?: boolean } = {},
  ): Promise<Reply> {
    let head = `${method} ${uri} RTSP/1.0\r\n`;
    if (options.cseq !== false) head += `CSeq: ${++this.#cseq}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (body) head += `Content-Length: ${enc.encode(body).length}\r\n`;
    await this.send(head + "\r\n" + body);
    return await this.reply();
  }

  /** The next reply (fails after `ms`, or when the server closed without one). */
  async reply(ms = 5000): Promise<Reply> {
    const until = Date.now() + ms;
    for (;;) {
      const r = this.#replies.shift();
      if (r) return r;
      if (this.#done) throw new Error("connection closed without a reply");
      if (Date.now() > until) throw new Error(`no reply within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Wait until `test` holds for the frames received (fails after `ms`). */
  async waitFrames(test: (frames: RtspClient["frames"]) => boolean, ms = 5000): Promise<void> {
    const until = Date.now() + ms;
    while (!test(this.frames)) {
      if (Date.now() > until) throw new Error(`frames condition not met within ${ms} ms`);
      if (this.#done) throw new Error("connection closed");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Stop reading from the socket (the server's writes back up). */
  pause(): void {
    this.#paused ??= Promise.withResolvers();
  }

  /** Read again. */
  resume(): void {
    this.#paused?.resolve();
    this.#paused = undefined;
  }

  /** Close from our side. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}
