/**
 * `srt://` URLs as callers take them: the listener's address and, in the query, the
 * options srt-live-transmit and ffmpeg read (`streamid`, `passphrase`, `pbkeylen`,
 * `latency` in ms).
 *
 * @module
 */

import { MAX_PASSPHRASE, MIN_PASSPHRASE } from "./_crypto.ts";
import { MAX_STREAM_ID_BYTES } from "./handshake.ts";

/** An `srt://host:port?…` URL split as a caller needs it. */
export interface SrtUrl {
  /** Host name or address (IPv6 without brackets). */
  readonly hostname: string;
  /** UDP port. */
  readonly port: number;
  /** The Stream ID sent in the handshake (`read:live/cam`), if any. */
  readonly streamId?: string;
  /** Encrypt with this passphrase (10 to 79 characters), if any. */
  readonly passphrase?: string;
  /** Key length in bytes with a passphrase: 16 (default), 24 or 32. */
  readonly pbkeylen: 16 | 24 | 32;
  /** The latency asked for in both directions, in ms (default 120, libsrt's). */
  readonly latencyMs: number;
  /** The URL for logs and the API: the query (passphrase, credentials) left out. */
  readonly redacted: string;
}

/**
 * Splits an SRT caller URL: `srt://HOST:PORT?streamid=read:live/cam&passphrase=…&pbkeylen=16&latency=120`.
 * Other query keys (`mode=caller`, `transtype=live`, …) are accepted and ignored.
 *
 * @throws {RangeError} when it is not an `srt://` URL with a host and a port, or an option
 * is out of range (a passphrase of 10 to 79 characters, `pbkeylen` 16/24/32, `latency` 0
 * to 65,535 ms, a Stream ID of at most 512 bytes).
 *
 * @example
 * ```ts
 * import { parseSrtUrl } from "@arcly/stream/srt";
 *
 * const target = parseSrtUrl("srt://127.0.0.1:8890?streamid=read:live/cam&latency=200");
 * target.streamId; // "read:live/cam"
 * target.latencyMs; // 200
 * target.redacted; // "srt://127.0.0.1:8890?…"
 * ```
 */
export function parseSrtUrl(url: string | URL): SrtUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RangeError("not a URL");
  }
  if (parsed.protocol !== "srt:") throw new RangeError(`not an srt:// URL (${parsed.protocol})`);
  const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  if (!hostname || !parsed.port) throw new RangeError("an SRT URL needs srt://HOST:PORT");
  const query = parsed.searchParams;
  const streamId = query.get("streamid") ?? undefined;
  if (streamId !== undefined && new TextEncoder().encode(streamId).length > MAX_STREAM_ID_BYTES) {
    throw new RangeError(`a Stream ID has at most ${MAX_STREAM_ID_BYTES} bytes`);
  }
  const passphrase = query.get("passphrase") || undefined;
  if (
    passphrase !== undefined &&
    (passphrase.length < MIN_PASSPHRASE || passphrase.length > MAX_PASSPHRASE)
  ) {
    throw new RangeError(
      `an SRT passphrase has ${MIN_PASSPHRASE} to ${MAX_PASSPHRASE} characters, not ${passphrase.length}`,
    );
  }
  const pbkeylen = Number(query.get("pbkeylen") ?? 16);
  if (pbkeylen !== 16 && pbkeylen !== 24 && pbkeylen !== 32) {
    throw new RangeError("pbkeylen is 16, 24 or 32");
  }
  const latencyMs = Number(query.get("latency") ?? 120);
  if (!Number.isInteger(latencyMs) || latencyMs < 0 || latencyMs > 0xffff) {
    throw new RangeError("latency is a whole number of ms from 0 to 65535");
  }
  const host = parsed.port ? `${parsed.hostname}:${parsed.port}` : parsed.hostname;
  const redacted = `srt://${host}${parsed.search ? "?…" : ""}`;
  return {
    hostname,
    port: Number(parsed.port),
    streamId,
    passphrase,
    pbkeylen,
    latencyMs,
    redacted,
  };
}
