/**
 * The TLS front's relay: the public port accepts plain TCP and relays each connection's
 * bytes, still encrypted, to the TLS listener on an internal loopback port.
 *
 * Why: Deno cannot close a server-side TLS connection whose handshake has not completed
 * (`TlsConn.close()` leaves the socket open, Deno 2.x), so a client that stalls in the
 * handshake would hold its socket for ever. The relay holds the client's plain socket,
 * which it can always close; it also sees when the handshake is over (the client's first
 * application-data record) and so bounds it. The internal listener can change port when the
 * certificate is renewed, so new connections get the new pair and none is dropped.
 */

import type { Logger } from "../mod.ts";
import type { TcpConnectionRunner } from "./_tcp_server.ts";

/** The TLS record type of application data: after the handshake (a TLS 1.3 client's Finished too). */
const APPLICATION_DATA = 23;
const RECORD_HEADER = 5;
/** How long an internal connection waits for its relay to say whose it is. */
const PEER_NOTE_WAIT_MS = 200;

/**
 * The real peers of the internal loopback connections, by the relay's local port, so that
 * what runs behind the TLS listener sees and logs the client, not the relay.
 */
export class PeerBook {
  #peers = new Map<number, Deno.NetAddr>();
  #waiting = new Map<number, () => void>();

  /** Note that the relay's loopback connection from `port` carries `peer`. */
  set(port: number, peer: Deno.NetAddr): void {
    this.#peers.set(port, peer);
    this.#waiting.get(port)?.();
  }

  /**
   * `conn` with its real peer as `remoteAddr`. The internal listener may accept a relay's
   * connection before the relay has noted it, so this waits a little for the note; a
   * connection nobody notes (a local client of the internal port) stays as it is.
   */
  async resolve(conn: Deno.Conn<Deno.NetAddr>): Promise<Deno.Conn<Deno.NetAddr>> {
    const port = conn.remoteAddr.port;
    if (!this.#peers.has(port)) {
      const noted = Promise.withResolvers<void>();
      this.#waiting.set(port, noted.resolve);
      const timer = setTimeout(noted.resolve, PEER_NOTE_WAIT_MS);
      await noted.promise;
      clearTimeout(timer);
      this.#waiting.delete(port);
    }
    return this.wrap(conn);
  }

  /** Forget the loopback connection from `port`. */
  delete(port: number): void {
    this.#peers.delete(port);
  }

  /** The real peer of an internal connection from `addr` (or `addr` itself if not a relay's). */
  peerOf(addr: Deno.NetAddr): Deno.NetAddr {
    return this.#peers.get(addr.port) ?? addr;
  }

  /** `conn` as it would be with its real peer as `remoteAddr`. */
  wrap(conn: Deno.Conn<Deno.NetAddr>): Deno.Conn<Deno.NetAddr> {
    const peer = this.#peers.get(conn.remoteAddr.port);
    return peer ? new PeerConn(conn, peer) : conn;
  }
}

/**
 * A listener whose connections come with their real peers (see {@linkcode PeerBook.resolve}).
 */
export class PeerListener implements Deno.Listener<Deno.Conn<Deno.NetAddr>, Deno.NetAddr> {
  #listener: Deno.Listener<Deno.Conn<Deno.NetAddr>, Deno.NetAddr>;
  #peers: PeerBook;

  constructor(listener: Deno.Listener<Deno.Conn<Deno.NetAddr>, Deno.NetAddr>, peers: PeerBook) {
    this.#listener = listener;
    this.#peers = peers;
  }
  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }
  async accept(): Promise<Deno.Conn<Deno.NetAddr>> {
    return this.#peers.resolve(await this.#listener.accept());
  }
  close(): void {
    this.#listener.close();
  }
  ref(): void {
    this.#listener.ref();
  }
  unref(): void {
    this.#listener.unref();
  }
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Deno.Conn<Deno.NetAddr>> {
    for (;;) yield await this.accept();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A connection that reports another remote address; everything else is the wrapped one's. */
class PeerConn implements Deno.Conn<Deno.NetAddr> {
  readonly remoteAddr: Deno.NetAddr;
  #conn: Deno.Conn<Deno.NetAddr>;

  constructor(conn: Deno.Conn<Deno.NetAddr>, peer: Deno.NetAddr) {
    this.#conn = conn;
    this.remoteAddr = peer;
  }
  get localAddr(): Deno.NetAddr {
    return this.#conn.localAddr;
  }
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#conn.readable;
  }
  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#conn.writable;
  }
  read(p: Uint8Array): Promise<number | null> {
    return this.#conn.read(p);
  }
  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }
  close(): void {
    this.#conn.close();
  }
  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }
  ref(): void {
    this.#conn.ref();
  }
  unref(): void {
    this.#conn.unref();
  }
  [Symbol.dispose](): void {
    this.#conn[Symbol.dispose]();
  }
}

/** What every relay of one front shares. */
export interface TlsRelaySettings {
  /** The protocol name for log lines, e.g. `"rtmps"`. */
  readonly protocol: string;
  readonly logger: Logger;
  /** The client must finish the TLS handshake within this time. */
  readonly handshakeTimeoutMs: number;
  readonly peers: PeerBook;
  /** The internal TLS listener's port now. */
  target(): number;
  /** Called for each connection closed because its handshake did not finish in time. */
  onStalledHandshake(): void;
}

/** One client's relay to the internal TLS listener. */
export class TlsRelay implements TcpConnectionRunner {
  #client: Deno.Conn<Deno.NetAddr>;
  #settings: TlsRelaySettings;
  #inner: Deno.TcpConn | undefined;
  #openedAt = performance.now();
  #handshake = new HandshakeWatch();
  #closed = false;

  /** Relay `client` to the settings' target once run. */
  constructor(client: Deno.Conn<Deno.NetAddr>, settings: TlsRelaySettings) {
    this.#client = client;
    this.#settings = settings;
  }

  /** Relay both ways until either side ends; never rejects. */
  async run(): Promise<void> {
    const { peers, logger, protocol } = this.#settings;
    let inner: Deno.TcpConn;
    try {
      inner = await Deno.connect({ hostname: "127.0.0.1", port: this.#settings.target() });
    } catch (error) {
      logger.error(`${protocol}: cannot reach the internal TLS listener: ${error}`);
      return;
    }
    this.#inner = inner;
    if (this.#closed) return void inner.close();
    inner.setNoDelay(true);
    const port = inner.localAddr.port;
    peers.set(port, this.#client.remoteAddr);
    try {
      await Promise.race([this.#pump(this.#client, inner, true), this.#pump(inner, this.#client)]);
    } finally {
      peers.delete(port);
      this.close();
    }
  }

  /** Close the relay if the handshake is not over within its deadline. */
  checkTimeouts(now: number): void {
    const ms = this.#settings.handshakeTimeoutMs;
    if (this.#handshake.done || this.#closed || now - this.#openedAt <= ms) return;
    const peer = `${this.#client.remoteAddr.hostname}:${this.#client.remoteAddr.port}`;
    this.#settings.logger.info(
      `${this.#settings.protocol} ${
        JSON.stringify(peer)
      }: closed: TLS handshake not completed within ${ms} ms`,
    );
    this.#settings.onStalledHandshake();
    this.close();
  }

  /** Close both sockets; idempotent. What runs behind the listener sees its connection end. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of [this.#client, this.#inner]) {
      try {
        conn?.close();
      } catch {
        // already closed
      }
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, fromClient = false): Promise<void> {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) return;
        if (fromClient && !this.#handshake.done) this.#handshake.push(buf.subarray(0, n));
        for (let o = 0; o < n;) o += await to.write(buf.subarray(o, n));
      }
    } catch {
      // either side closed
    }
  }
}

/**
 * Follows a TLS client's record headers (type, version, 16-bit length) and says when the
 * handshake is over: at its first application-data record (in TLS 1.3 its Finished is one;
 * in TLS 1.2 the data after its Finished). Record bodies are skipped unread.
 */
export class HandshakeWatch {
  #done = false;
  /** Bytes left of the current record, and the header being read. */
  #recordLeft = 0;
  #header = new Uint8Array(RECORD_HEADER);
  #headerFilled = 0;

  /** Whether an application-data record has started. */
  get done(): boolean {
    return this.#done;
  }

  /** Follow more of the client's bytes; returns {@linkcode HandshakeWatch.done}. */
  push(bytes: Uint8Array): boolean {
    for (let i = 0; i < bytes.length && !this.#done;) {
      if (this.#recordLeft > 0) {
        const n = Math.min(this.#recordLeft, bytes.length - i);
        this.#recordLeft -= n;
        i += n;
        continue;
      }
      this.#header[this.#headerFilled++] = bytes[i++];
      if (this.#headerFilled < RECORD_HEADER) continue;
      this.#headerFilled = 0;
      if (this.#header[0] === APPLICATION_DATA) this.#done = true;
      this.#recordLeft = this.#header[3] << 8 | this.#header[4];
    }
    return this.#done;
  }
}
