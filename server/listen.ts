/**
 * Listener addresses as operators write them: a port, `HOST:PORT`, `[V6]:PORT` or `off`.
 *
 * @module
 */

/** Where a listener binds ({@linkcode parseListen} gives `undefined` for `off`). */
export interface Listen {
  /** The address to bind, e.g. `0.0.0.0` or `::1`. */
  hostname: string;
  /** The port; 0 picks a free one. */
  port: number;
}

/**
 * A listener setting: a port number, `"PORT"`, `"HOST:PORT"` (`"[V6]:PORT"` too), `"off"`
 * or `false` (off), or a {@linkcode Listen} object.
 */
export type ListenSetting = number | string | false | Listen;

/**
 * Read a listener setting; `what` names it in the error (e.g. `--rtmp` or `rtmp.listen`).
 *
 * @throws {RangeError} for anything but a port, `HOST:PORT` or off.
 * @example
 * ```ts
 * import { parseListen } from "@arcly/stream/server";
 *
 * parseListen("127.0.0.1:1935", "rtmp"); // { hostname: "127.0.0.1", port: 1935 }
 * parseListen(8888, "http"); // { hostname: "0.0.0.0", port: 8888 }
 * parseListen("off", "rtmp"); // undefined
 * ```
 */
export function parseListen(value: ListenSetting, what: string): Listen | undefined {
  if (value === false || value === "off") return undefined;
  if (typeof value === "object" && value !== null) {
    return checked(value.hostname, value.port, value, what);
  }
  const match = /^(?:\[?([^\]]*?)\]?:)?(\d{1,5})$/.exec(String(value));
  return checked(match?.[1] || "0.0.0.0", match ? Number(match[2]) : NaN, value, what);
}

function checked(hostname: unknown, port: unknown, value: unknown, what: string): Listen {
  if (
    typeof hostname !== "string" || typeof port !== "number" || !Number.isInteger(port) ||
    port < 0 || port > 65535
  ) {
    throw new RangeError(`${what} takes PORT, HOST:PORT or off, not ${JSON.stringify(value)}`);
  }
  return { hostname, port };
}
