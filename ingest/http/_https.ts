/**
 * HTTPS for the HTTP server: `Deno.serve` with the certificate and key on an internal
 * loopback port, behind the TLS front every TLS listener shares (a handshake deadline, the
 * real client as `remoteAddr`, a renewed pair for new connections without dropping any).
 */

import type { Logger } from "../../mod.ts";
import { readTlsPair, type TlsListenOptions, type TlsPair, watchTlsPair } from "../tls.ts";
import { PeerBook } from "../_tls_relay.ts";
import { serveTlsFront } from "../_tls_server.ts";

/** After a reload the previous internal server takes new connections for this long. */
const PREVIOUS_SERVER_GRACE_MS = 1000;

/** A running HTTPS listener. */
export interface HttpsListener {
  readonly addr: Deno.NetAddr;
  /** Stop accepting; resolves once open responses ended. */
  close(): Promise<void>;
}

/** Serve `handler` over HTTPS as `tls` says; throws at once if the pair does not load. */
export function serveHttps(
  tls: TlsListenOptions,
  hostname: string,
  logger: Logger,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): HttpsListener {
  const peers = new PeerBook();
  const internal = (pair: TlsPair) =>
    Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: pair.cert, key: pair.key, onListen() {} },
      (request, info) =>
        handler(request, { remoteAddr: peers.peerOf(info.remoteAddr), completed: info.completed }),
    );
  const servers = new Set<Deno.HttpServer<Deno.NetAddr>>();
  let current = internal(readTlsPair(tls));
  servers.add(current);
  const front = serveTlsFront({
    protocol: "https",
    tls,
    hostname,
    logger,
    peers,
    target: () => current.addr.port,
  });
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const stopWatching = watchTlsPair(tls, "https", logger, (pair) => {
    const previous = current;
    current = internal(pair);
    servers.add(current);
    const timer = setTimeout(() => {
      timers.delete(timer);
      servers.delete(previous);
      void previous.shutdown();
    }, PREVIOUS_SERVER_GRACE_MS);
    timers.add(timer);
  });
  let closing: Promise<void> | undefined;
  return {
    addr: front.server.addr,
    close: () =>
      closing ??= (async () => {
        stopWatching();
        for (const timer of timers) clearTimeout(timer);
        await front.server.close();
        await Promise.all([...servers].map((server) => server.shutdown()));
      })(),
  };
}
