/** SYN cookies: the listener answers inductions without keeping any state. */

import { createHmac, randomBytes } from "node:crypto";

/** How long one cookie secret period lasts; a cookie is good for this period and the next. */
const PERIOD_MS = 60_000;

/**
 * Makes and checks the cookie a caller must echo in its conclusion: a keyed hash of the
 * caller's address, port and the current minute, so a conclusion from an address that
 * never received the induction answer is ignored and inductions cost no memory.
 */
export class CookieJar {
  readonly #secret = randomBytes(32);
  readonly #clock: () => number;

  /** `clock` gives monotonic milliseconds (default `performance.now()`). */
  constructor(clock: () => number = () => performance.now()) {
    this.#clock = clock;
  }

  /** The cookie for a caller at `address:port` now. */
  make(address: string, port: number): number {
    return this.#cookie(address, port, Math.floor(this.#clock() / PERIOD_MS));
  }

  /** Whether `cookie` was made for `address:port` in this period or the previous one. */
  check(address: string, port: number, cookie: number): boolean {
    const period = Math.floor(this.#clock() / PERIOD_MS);
    return cookie === this.#cookie(address, port, period) ||
      cookie === this.#cookie(address, port, period - 1);
  }

  #cookie(address: string, port: number, period: number): number {
    const digest = createHmac("sha256", this.#secret).update(`${address}|${port}|${period}`)
      .digest();
    return digest.readUInt32BE(0);
  }
}
