/**
 * TLS for the servers (RTMPS, RTSPS, HTTPS): a certificate and key read from files,
 * checked as a pair, and watched so that a renewed pair takes effect for new connections.
 * Public to the composition (the CLI checks a pair before it starts anything).
 */

import type { Logger } from "../mod.ts";

/**
 * A TLS listener of a protocol server (RTMPS, RTSPS, HTTPS), next to its plain one or
 * instead of it.
 *
 * @example
 * ```ts
 * import type { TlsListenOptions } from "@arcly/stream/rtmp";
 *
 * const rtmps: TlsListenOptions = {
 *   port: 1936,
 *   certFile: "/etc/arcly/cert.pem",
 *   keyFile: "/etc/arcly/key.pem",
 * };
 * ```
 */
export interface TlsListenOptions {
  /** The address to listen on (default: the plain listener's, else `"0.0.0.0"`). */
  hostname?: string;
  /** The TCP port; 0 picks a free one. */
  port: number;
  /**
   * The certificate chain in PEM, leaf first. The file is checked every 2 s; when it or the
   * key changes, new connections get the new pair and open ones go on undisturbed (a pair
   * that does not load is logged and the old one kept).
   */
  certFile: string;
  /** The private key in PEM (PKCS#8, RSA or EC). */
  keyFile: string;
  /**
   * A client must complete the TLS handshake within this time of connecting (default
   * 10,000 ms). It is seen as complete at the client's first application-data record: its
   * Finished in TLS 1.3, its first request or command in TLS 1.2 (every protocol served here
   * has the client speak first).
   */
  handshakeTimeoutMs?: number;
}

/** A certificate chain and its private key, in PEM. */
export interface TlsPair {
  readonly cert: string;
  readonly key: string;
}

/** How often the certificate and key files are checked for a change. */
export const TLS_RELOAD_CHECK_MS = 2000;

/**
 * Read the pair `opts` names and check that Deno's TLS accepts it, so that a missing file,
 * a file without PEM in it or a key of another certificate is one clear error up front.
 */
export function readTlsPair(opts: TlsListenOptions): TlsPair {
  const read = (path: string, what: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (error) {
      throw new Error(`TLS ${what} file ${JSON.stringify(path)} cannot be read: ${reason(error)}`);
    }
  };
  const pair = { cert: read(opts.certFile, "certificate"), key: read(opts.keyFile, "key") };
  checkTlsPair(pair, opts);
  return pair;
}

/** Throw a clear error unless a TLS listener can be made with `pair`. */
function checkTlsPair(pair: TlsPair, opts: TlsListenOptions): void {
  let probe: Deno.TlsListener;
  try {
    // A listener on a free loopback port is the one check that is exactly Deno's own.
    probe = Deno.listenTls({ hostname: "127.0.0.1", port: 0, ...pair });
  } catch (error) {
    const files = `certificate ${JSON.stringify(opts.certFile)} and key ${
      JSON.stringify(opts.keyFile)
    }`;
    const why = reason(error);
    if (/KeyMismatch|not be consistent/i.test(why)) {
      throw new Error(`TLS ${files} do not match: the key is not the certificate's`);
    }
    throw new Error(`TLS ${files} cannot be used: ${why}`);
  }
  probe.close();
}

/**
 * Call `onPair` with the pair `opts` names each time its files change (by modification time
 * and size; renames and symlink swaps as certbot does them count). A pair that does not
 * load is logged and skipped. Returns a function that stops watching.
 */
export function watchTlsPair(
  opts: TlsListenOptions,
  protocol: string,
  logger: Logger,
  onPair: (pair: TlsPair) => void,
): () => void {
  let last: string | undefined;
  let busy = false;
  const stamp = async () => {
    const [cert, key] = await Promise.all([Deno.stat(opts.certFile), Deno.stat(opts.keyFile)]);
    return `${cert.mtime?.getTime()}:${cert.size}:${key.mtime?.getTime()}:${key.size}`;
  };
  void stamp().then((s) => last ??= s, () => {});
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const now = await stamp().catch(() => undefined);
      if (now === undefined || now === last) return;
      last = now;
      try {
        onPair(readTlsPair(opts));
        logger.info(`${protocol}: reloaded the TLS certificate ${JSON.stringify(opts.certFile)}`);
      } catch (error) {
        logger.error(`${protocol}: kept the previous TLS certificate: ${reason(error)}`);
      }
    } finally {
      busy = false;
    }
  }, TLS_RELOAD_CHECK_MS);
  return () => clearInterval(timer);
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
