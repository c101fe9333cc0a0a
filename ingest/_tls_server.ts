/**
 * TLS listeners: RTMPS and RTSPS ({@linkcode serveTcpTls}) and the front every TLS listener
 * shares, HTTPS's too ({@linkcode serveTlsFront}): a plain public port relaying to a TLS
 * listener on an internal loopback port (see `_tls_relay.ts` for why).
 */

import type { Logger } from "../mod.ts";
import { readTlsPair, type TlsListenOptions, type TlsPair, watchTlsPair } from "./tls.ts";
import { PeerBook, PeerListener, TlsRelay } from "./_tls_relay.ts";
import {
  serveTcp,
  type TcpAcceptStats,
  type TcpConnectionRunner,
  type TcpServeOptions,
  type TcpServer,
} from "./_tcp_server.ts";

/** The TLS handshake's default deadline. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** After a reload the previous internal listener accepts for this long (relays under way). */
const PREVIOUS_LISTENER_GRACE_MS = 1000;

/** Options for {@linkcode serveTlsFront}. */
export interface TlsFrontOptions {
  /** The protocol name for log lines, e.g. `"https"`. */
  protocol: string;
  /** The public address and port, the handshake deadline. */
  tls: TlsListenOptions;
  /** The address to listen on when `tls.hostname` is not set. */
  hostname: string;
  logger: Logger;
  maxConnectionsPerIp?: number;
  /** Who the internal connections come from. */
  peers: PeerBook;
  /** The internal TLS listener's port now. */
  target(): number;
}

/** A running front: its public port and what it met. */
export interface TlsFront {
  readonly server: TcpServer<TlsRelay>;
  /** Connections closed because their TLS handshake did not complete in time. */
  readonly stalledHandshakes: number;
}

/** Listen on the public TLS port and relay each connection to `target()`. */
export function serveTlsFront(opts: TlsFrontOptions): TlsFront {
  const handshakeTimeoutMs = opts.tls.handshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS;
  let stalled = 0;
  const settings = {
    protocol: opts.protocol,
    logger: opts.logger,
    handshakeTimeoutMs,
    peers: opts.peers,
    target: opts.target,
    onStalledHandshake: () => void stalled++,
  };
  const server = serveTcp({
    protocol: opts.protocol,
    hostname: opts.tls.hostname ?? opts.hostname,
    port: opts.tls.port,
    logger: opts.logger,
    sweepEveryMs: Math.max(10, Math.min(1000, handshakeTimeoutMs / 4)),
    maxConnectionsPerIp: opts.maxConnectionsPerIp,
    accept: (conn) => new TlsRelay(conn, settings),
  });
  return {
    server,
    get stalledHandshakes() {
      return stalled;
    },
  };
}

/** What a TLS server adds to a plain one's accept figures. */
export interface TlsAcceptStats extends TcpAcceptStats {
  /** Connections closed because their TLS handshake did not complete in time. */
  stalledTlsHandshakes: number;
}

/**
 * Serve a connection-oriented protocol over TLS: `opts.accept` gets decrypted connections
 * whose `remoteAddr` is the real client. `opts.tls` names the public port and the pair;
 * `opts.hostname` is used when `tls.hostname` is not set, `opts.port` is ignored. Throws at
 * once when the pair does not load or the port is taken.
 */
export function serveTcpTls<C extends TcpConnectionRunner>(
  opts: TcpServeOptions<C> & { tls: TlsListenOptions },
): TcpServer<C> & { readonly acceptStats: Readonly<TlsAcceptStats> } {
  const peers = new PeerBook();
  const inner = (pair: TlsPair) =>
    serveTcp<C>({
      protocol: opts.protocol,
      hostname: "127.0.0.1",
      port: 0,
      logger: opts.logger,
      sweepEveryMs: opts.sweepEveryMs,
      listen: (hostname, port) =>
        new PeerListener(Deno.listenTls({ hostname, port, ...pair }), peers),
      accept: opts.accept,
    });
  const servers = new Set<TcpServer<C>>();
  let current = inner(readTlsPair(opts.tls));
  servers.add(current);
  let front: TlsFront;
  try {
    front = serveTlsFront({
      protocol: opts.protocol,
      tls: opts.tls,
      hostname: opts.hostname,
      logger: opts.logger,
      maxConnectionsPerIp: opts.maxConnectionsPerIp,
      peers,
      target: () => current.addr.port,
    });
  } catch (error) {
    void current.close();
    throw error;
  }
  const graceTimers = new Set<ReturnType<typeof setTimeout>>();
  const stopWatching = watchTlsPair(opts.tls, opts.protocol, opts.logger, (pair) => {
    const previous = current;
    current = inner(pair);
    servers.add(current);
    const timer = setTimeout(() => {
      graceTimers.delete(timer);
      previous.stopAccepting();
      void previous.finished.then(() => servers.delete(previous));
    }, PREVIOUS_LISTENER_GRACE_MS);
    graceTimers.add(timer);
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      stopWatching();
      for (const timer of graceTimers) clearTimeout(timer);
      await front.server.close();
      await Promise.all([...servers].map((server) => server.close()));
    })();
    return closing;
  };
  opts.signal?.addEventListener("abort", () => void close(), { once: true });
  if (opts.signal?.aborted) void close();
  return {
    addr: front.server.addr,
    get connections() {
      return new Set([...servers].flatMap((server) => [...server.connections]));
    },
    get acceptStats() {
      return { ...front.server.acceptStats, stalledTlsHandshakes: front.stalledHandshakes };
    },
    close,
    stopAccepting: () => front.server.stopAccepting(),
    finished: front.server.finished.then(close),
  };
}

/** A plain listener, a TLS one, or both, serving one protocol. */
export interface TcpListeners<C> {
  /** The plain listener's address, else the TLS one's. */
  readonly addr: Deno.NetAddr;
  /** The TLS listener's address, if there is one. */
  readonly tlsAddr: Deno.NetAddr | undefined;
  /** The connections of both. */
  readonly connections: ReadonlySet<C>;
  /** Close both; idempotent. */
  close(): Promise<void>;
  /** Resolves once both have closed. */
  readonly finished: Promise<void>;
}

/** Options for {@linkcode serveTcpListeners}. */
export type TcpListenersOptions<C extends TcpConnectionRunner> =
  & Omit<TcpServeOptions<C>, "port" | "accept">
  & {
    /** The plain TCP port; `null` for none. */
    port: number | null;
    /** The TLS listener, if any. */
    tls?: TlsListenOptions;
    /** Make the protocol's runner for a connection; `secure` for one that came over TLS. */
    accept(conn: Deno.Conn<Deno.NetAddr>, secure: boolean): C;
  };

/**
 * Serve a protocol on plain TCP (`port`; `null` for none) and, with `tls`, over TLS as
 * well. At least one of the two must be asked for.
 */
export function serveTcpListeners<C extends TcpConnectionRunner>(
  opts: TcpListenersOptions<C>,
): TcpListeners<C> {
  const { tls, port } = opts;
  if (port === null && !tls) throw new TypeError(`${opts.protocol}: neither a port nor TLS`);
  const plain = port === null
    ? undefined
    : serveTcp({ ...opts, port, accept: (conn) => opts.accept(conn, false) });
  let secure: TcpServer<C> | undefined;
  try {
    secure = tls && serveTcpTls({
      ...opts,
      port: 0,
      tls,
      protocol: `${opts.protocol}s`,
      accept: (conn) => opts.accept(conn, true),
    });
  } catch (error) {
    void plain?.close();
    throw error;
  }
  const both = [plain, secure].filter((server) => server !== undefined);
  let closing: Promise<void> | undefined;
  const close = () => closing ??= Promise.all(both.map((server) => server.close())).then(() => {});
  return {
    addr: (plain ?? secure)!.addr,
    tlsAddr: secure?.addr,
    get connections() {
      return both.length === 1
        ? both[0].connections
        : new Set(both.flatMap((server) => [...server.connections]));
    },
    close,
    // Either ending (its signal, a fatal listener error) ends both.
    finished: Promise.race(both.map((server) => server.finished)).then(close),
  };
}
